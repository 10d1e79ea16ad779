// The parent's screens: children, a child's record, the form's photo and its verdict,
// corrections with evidence, their progress, the notifications inbox.
import { api, upload } from "./api.js";
import { shrink } from "./photo.js";
import { go, route } from "./router.js";
import { date, errorBox, field, h, keepDraft, progressBar, show } from "./ui.js";

const POLL_MS = 800;
const POLL_LIMIT = 150; // two minutes: the check usually takes about a second

// What each verdict means and what to do next, in plain words (the API's message follows).
const VERDICTS = {
  matches: ["核对完成", "", "ok"], // the API's message says it all
  corrections_written: ["已收到您写的更正", "班主任会核对您在表上写的更正，学校审核通过后修改学籍，结果会在“消息”里通知您。", "ok"],
  differs: ["表上内容与学籍不一致", "下面列出的项目与学校的记录不同。请确认是否拍的是最新打印的确认表；若学籍有误，请在表上写更正后重拍，或在孩子的学籍页提交更正申请。", "warn"],
  retake: ["需要重新拍照", "这张照片看不清，请按下面的提示重拍整页确认表。", "warn"],
  unsigned: ["确认表还没有签名", "请在表格下方签名并写上日期，再拍照上传。", "warn"],
  undated: ["签名旁缺少日期", "请在签名旁写上日期，再拍照上传。", "warn"],
  not_this_form: ["这不是该孩子的确认表", "请拍这个孩子的确认表（看表上的姓名）。", "warn"],
  record_changed: ["学籍已更新", "这张表打印后学籍信息有了改动，请向班主任要一张新打印的确认表。", "warn"],
  form_superseded: ["这张表已作废", "学校已重新打印了确认表，请拍最新的一张。", "warn"],
};
const RETAKE = {
  unreadable_image: "照片无法识别",
  too_dark: "照片太暗：请到光线充足的地方拍",
  blurry: "照片模糊：拿稳手机，对焦后再拍",
  page_not_visible: "没有拍到整页：请让整张表都在画面里",
  too_small: "表格太小：请靠近一些，让表格占满画面",
  unclear_fields: "表上的文字看不清",
  unclear_handwriting: "手写的更正看不清：请写得工整些",
};
const EVIDENCE = [
  ["id_scan", "身份证件（正反面）"],
  ["household_register", "户口簿"],
  ["enrolment_proof", "入学证明"],
  ["other", "其他材料"],
];

function statusBadge(form) {
  if (!form) return null;
  const good = form.status === "matches";
  return h("p", { class: good ? "ok" : "note" }, form.message || "");
}

route(/^#\/children$/, async (view) => {
  const children = await api("GET", "/my/children").catch((error) => error);
  if (children instanceof Error) return show(view, errorBox(children));
  if (!children.length) {
    return show(view, h("h2", {}, "我的孩子"), h("p", {}, "还没有绑定孩子。请扫描孩子的确认表上的二维码。"));
  }
  return show(
    view,
    h("h2", {}, "我的孩子"),
    ...children.map((child) =>
      h(
        "section",
        { class: "card" },
        h("h3", {}, child.name || "待班主任确认"),
        child.link_status === "pending"
          ? h("p", { class: "note" }, "班主任确认您与孩子的关系后，才能查看学籍。")
          : [
              statusBadge(child.form),
              h("a", { class: "button", href: `#/child/${child.id}` }, "查看学籍并上传确认表"),
            ],
      ),
    ),
  );
});

function recordList(record) {
  return h(
    "dl",
    { class: "record" },
    record.fields.map((f) => [
      h("dt", {}, f.field_label),
      h(
        "dd",
        {},
        f.display ?? f.value ?? "—",
        f.pending ? h("span", { class: "pending" }, ` 申请改为：${f.pending.display ?? f.pending.value ?? ""}（${f.pending.state_label}）`) : null,
      ),
    ]),
  );
}

// The form's photo: shrunk on the phone, sent with a progress bar, then the verdict.
export function photoForm(studentId, { onBehalf = false } = {}) {
  const progress = progressBar();
  const message = h("div", { "aria-live": "assertive" });
  const input = field(onBehalf ? "为该家庭拍确认表" : "拍下签好字的整页确认表", {
    name: "photo",
    type: "file",
    accept: "image/*",
    capture: "environment",
  });
  const form = h("form", { class: "upload" }, input, h("button", { type: "submit" }, "上传照片"), progress.element, message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.elements.photo.files[0];
    message.replaceChildren();
    if (!file) return message.replaceChildren(h("p", { class: "error", role: "alert" }, "请先拍照或选择照片"));
    const body = new FormData();
    body.append("file", await shrink(file), "form.jpg");
    progress.set(0);
    try {
      const made = await upload(`/students/${studentId}/uploads`, body, (f) => progress.set(f));
      go(`#/upload/${made.id}`);
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
    return undefined;
  });
  return form;
}

route(/^#\/child\/(\d+)$/, async (view, me, id) => {
  const record = await api("GET", `/my/children/${id}`).catch((error) => error);
  if (record instanceof Error) return show(view, errorBox(record));
  return show(
    view,
    h("h2", {}, "孩子的学籍"),
    h("p", { class: "muted" }, "敏感信息已部分隐藏。请与确认表核对。"),
    recordList(record),
    h("h3", {}, "上传确认表照片"),
    photoForm(id),
    h("a", { class: "button secondary", href: `#/child/${id}/correct` }, "学籍有误？提交更正申请"),
    h("a", { class: "button secondary", href: `#/ask/${id}` }, "有疑问？向学校提问"),
    h("a", { class: "button secondary", href: `#/child/${id}/change` }, "申请转学/异动"),
    h("a", { class: "button secondary", href: "#/changes" }, "查看异动申请进度"),
  );
});

function verdictView(detail) {
  const [title, next, tone] = VERDICTS[detail.verdict] || ["检查完成", "", "note"];
  const differing = detail.fields.filter((f) => !f.match);
  return h(
    "section",
    { class: `verdict ${tone}`, role: "status" },
    h("h3", {}, title),
    next ? h("p", {}, next) : null,
    detail.retake_reason ? h("p", {}, `原因：${RETAKE[detail.retake_reason] || ""}`) : null,
    detail.verdict === "differs" && differing.length
      ? h("ul", {}, differing.map((f) => h("li", {}, `${f.field_label}：表上为“${f.read ?? "（未读出）"}”`)))
      : null,
    detail.corrections?.length ? h("ul", {}, detail.corrections.map((c) => h("li", {}, c.field_label || String(c)))) : null,
    detail.message ? h("p", { class: "muted" }, detail.message) : null,
  );
}

route(/^#\/upload\/(\d+)$/, async (view, me, id) => {
  const waiting = h("p", { role: "status" }, "正在检查照片，通常几秒钟…");
  show(view, h("h2", {}, "检查结果"), waiting);
  for (let i = 0; i < POLL_LIMIT && location.hash === `#/upload/${id}`; i += 1) {
    let detail;
    try {
      detail = await api("GET", `/uploads/${id}`);
    } catch (error) {
      return waiting.replaceWith(errorBox(error));
    }
    if (detail.verdict) {
      const student = detail.upload.student_id;
      const back = me.role === "parent" ? `#/child/${student}` : "#/families";
      return show(view, h("h2", {}, "检查结果"), verdictView(detail), h("a", { class: "button", href: back }, "返回"));
    }
    if (detail.upload.status === "check_failed") break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return waiting.replaceWith(h("p", { class: "note" }, "检查比平时慢，结果出来后会在“消息”里通知您。"));
});

route(/^#\/child\/(\d+)\/correct$/, async (view, me, id) => {
  const record = await api("GET", `/my/children/${id}`).catch((error) => error);
  if (record instanceof Error) return show(view, errorBox(record));
  const progress = progressBar();
  const message = h("div", { "aria-live": "assertive" });
  const form = h(
    "form",
    {},
    field("要更正的项目", {
      tag: "select",
      name: "field_code",
      required: true,
      options: record.fields.map((f) => h("option", { value: f.field }, f.field_label)),
    }),
    field("正确的内容", { name: "new_value", required: true, autocomplete: "off" }),
    field("更正原因", { tag: "textarea", name: "reason", required: true, rows: 2 }),
    field("证明材料种类", {
      tag: "select",
      name: "evidence_kind",
      options: EVIDENCE.map(([value, label]) => h("option", { value }, label)),
    }, "身份证号、姓名、出生日期等关键信息须附身份证件照片"),
    field("证明材料照片", { name: "evidence", type: "file", accept: "image/*", capture: "environment" }),
    h("button", { type: "submit" }, "提交更正申请"),
    progress.element,
  );
  const dropDraft = keepDraft(form, `correct.${id}`);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.replaceChildren();
    const values = new FormData(form);
    const body = new FormData();
    for (const name of ["field_code", "new_value", "reason"]) body.append(name, values.get(name));
    const photo = form.elements.evidence.files[0];
    if (photo) body.append(values.get("evidence_kind"), await shrink(photo), "evidence.jpg");
    try {
      const made = await upload(`/my/children/${id}/change-requests`, body, (f) => progress.set(f));
      dropDraft();
      go(`#/request/${made.id}`);
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  });
  return show(view, h("h2", {}, "提交更正申请"), form, message);
});

function steps(list) {
  return h(
    "ol",
    { class: "steps" },
    list.map((s) =>
      h(
        "li",
        {},
        `${s.kind_label}：${s.state_label}`,
        s.due_on && !s.decided_at ? h("span", { class: s.overdue ? "overdue" : "muted" }, ` 期限 ${s.due_on}${s.overdue ? "（已超期）" : ""}`) : null,
        s.reason ? h("p", { class: "muted" }, `意见：${s.reason}`) : null,
      ),
    ),
  );
}

route(/^#\/requests$/, async (view) => {
  const page = await api("GET", "/my/change-requests").catch((error) => error);
  if (page instanceof Error) return show(view, errorBox(page));
  return show(
    view,
    h("h2", {}, "更正申请"),
    page.items.length ? null : h("p", { class: "muted" }, "还没有更正申请。"),
    ...page.items.map((r) =>
      h("a", { class: "card row", href: `#/request/${r.id}` }, h("strong", {}, `${r.student_name} · ${r.field_label}`), h("span", {}, r.state_label)),
    ),
  );
});

route(/^#\/request\/(\d+)$/, async (view, me, id) => {
  const request = await api("GET", `/my/change-requests/${id}`).catch((error) => error);
  if (request instanceof Error) return show(view, errorBox(request));
  return show(
    view,
    h("h2", {}, `${request.field_label}的更正`),
    h("p", { class: "state" }, request.state_label),
    h("dl", { class: "record" }, h("dt", {}, "原内容"), h("dd", {}, request.old_display ?? "—"), h("dt", {}, "申请改为"), h("dd", {}, request.new_display ?? "—")),
    h("h3", {}, "审核进度"),
    steps(request.steps),
  );
});

route(/^#\/inbox$/, async (view) => {
  const page = await api("GET", "/notifications").catch((error) => error);
  if (page instanceof Error) return show(view, errorBox(page));
  await api("POST", "/notifications/read-all").catch(() => undefined);
  return show(
    view,
    h("h2", {}, "消息"),
    h("a", { class: "button secondary", href: "#/threads" }, "我向学校的提问"),
    page.items.length ? null : h("p", { class: "muted" }, "暂无消息。"),
    ...page.items.map((n) =>
      h("section", { class: `card${n.read_at ? "" : " unread"}` }, h("h3", {}, n.title), h("p", {}, n.body), h("p", { class: "muted" }, date(n.created_at))),
    ),
  );
});

// Asking the school: a question about the child's record, its answers, writing again.
function messageForm(label, submitLabel, key, path, extra = {}) {
  const message = h("div", { "aria-live": "assertive" });
  const form = h(
    "form",
    {},
    field(label, { tag: "textarea", name: "body", required: true, rows: 3 }),
    h("button", { type: "submit" }, submitLabel),
  );
  const dropDraft = keepDraft(form, key);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = new FormData();
    for (const [name, value] of Object.entries(extra)) body.append(name, value);
    body.append("body", form.elements.body.value.trim());
    try {
      const thread = await upload(path, body, () => {});
      dropDraft();
      go(`#/thread/${thread.id}`);
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  });
  return [form, message];
}

route(/^#\/ask\/(\d+)$/, (view, me, id) => {
  const about = { about_kind: "record", about_id: id }; // the child's record
  const [form, message] = messageForm("您的问题", "发送给学校", `ask.${id}`, "/my/threads", about);
  show(view, h("h2", {}, "向学校提问"), h("p", { class: "muted" }, "学校答复后会在“消息”里通知您。"), form, message);
});

route(/^#\/threads$/, async (view) => {
  const page = await api("GET", "/my/threads").catch((error) => error);
  if (page instanceof Error) return show(view, errorBox(page));
  return show(
    view,
    h("h2", {}, "我的提问"),
    page.items.length ? null : h("p", { class: "muted" }, "还没有提问。"),
    ...page.items.map((t) =>
      h(
        "a",
        { class: "card row", href: `#/thread/${t.id}` },
        h("strong", {}, t.about_label),
        h("span", {}, `${t.state_label}${t.unread ? `（${t.unread}条未读）` : ""}`),
      ),
    ),
  );
});

route(/^#\/thread\/(\d+)$/, async (view, me, id) => {
  const thread = await api("GET", `/my/threads/${id}`).catch((error) => error);
  if (thread instanceof Error) return show(view, errorBox(thread));
  const [form, message] = messageForm("继续提问", "发送", `thread.${id}`, `/my/threads/${id}/messages`);
  return show(
    view,
    h("h2", {}, thread.about_label),
    h("p", { class: "state" }, thread.state_label),
    ...thread.messages.map((m) =>
      h("section", { class: "card" }, h("p", { class: "muted" }, `${m.side_label} ${date(m.created_at)}`), h("p", {}, m.body)),
    ),
    form,
    message,
  );
});
