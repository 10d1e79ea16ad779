// The staff's screens: what waits on me (due dates, overdue marks), a request's detail with
// its evidence and the decision; the teacher's class with each family's state.
import { api } from "./api.js";
import { photoForm } from "./parent.js";
import { go, route } from "./router.js";
import { errorBox, field, h, show } from "./ui.js";

const FAMILY_FILTERS = [
  ["", "全部"],
  ["not_uploaded", "未上传"],
  ["retake", "需重拍"],
  ["differs", "不一致"],
  ["corrections_written", "有手写更正"],
  ["unsigned", "未签名"],
  ["matches", "已核对"],
  ["form_outdated", "确认表已过期"],
];

// A family's form state in a word, for the list (the API's message, when there is one, is longer).
const STATE_LABELS = {
  no_campaign: "未开展核查",
  not_issued: "确认表未打印",
  form_outdated: "确认表已过期",
  not_uploaded: "未上传",
  uploaded: "检查中",
  checking: "检查中",
  retake: "需重拍",
  not_this_form: "拍错了表",
  record_changed: "学籍已变动",
  form_superseded: "表已作废",
  differs: "不一致",
  corrections_written: "有手写更正",
  unsigned: "未签名",
  undated: "未写日期",
  matches: "已核对",
  check_failed: "检查失败",
};

// Where a waiting step opens: a correction here, a status change in transfers.js.
const DETAIL = { change_request: "#/step", status_change: "#/transfer" };

route(/^#\/queue$/, async (view) => {
  const page = await api("GET", "/review-steps").catch((error) => error);
  if (page instanceof Error) return show(view, errorBox(page));
  const items = page.items.filter((item) => item.subject_kind in DETAIL && item.step_id);
  return show(
    view,
    h("h2", {}, `待我处理（${page.total}）`),
    progressLink(),
    pushButton(),
    items.length ? null : h("p", { class: "muted" }, "没有待处理的申请。"),
    ...items.map((item) =>
      h(
        "a",
        { class: "card row", href: `${DETAIL[item.subject_kind]}/${item.step_id}/${item.subject_id}` },
        h("strong", {}, `${item.student_name} · ${item.summary?.title ?? ""}`),
        h("span", { class: item.overdue ? "overdue" : "muted" }, item.overdue ? `已超期${item.days_overdue}个工作日` : `期限 ${item.due_on}`),
      ),
    ),
  );
});

async function evidencePhoto(photo) {
  try {
    const response = await api("GET", photo.url, undefined, { raw: true });
    const url = URL.createObjectURL(await response.blob());
    return h("figure", {}, h("img", { src: url, alt: photo.kind_label, class: "evidence" }), h("figcaption", {}, photo.kind_label));
  } catch (error) {
    return errorBox(error);
  }
}

route(/^#\/step\/(\d+)\/(\d+)$/, async (view, me, stepId, requestId) => {
  const request = await api("GET", `/change-requests/${requestId}`).catch((error) => error);
  if (request instanceof Error) return show(view, errorBox(request));
  const step = request.current_step;
  const message = h("div", { "aria-live": "assertive" });
  const form = h(
    "form",
    {},
    field("意见（退回或不同意时必填）", { tag: "textarea", name: "reason", rows: 2 }),
    h("div", { class: "actions" },
      h("button", { type: "submit", value: "approve" }, "同意"),
      h("button", { type: "submit", value: "reject", class: "danger" }, "不同意")),
    askForEvidenceButton(),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const decision = event.submitter?.value || "approve";
    try {
      await api("POST", `/review-steps/${stepId}/decision`, { decision, reason: form.elements.reason.value.trim() });
      go("#/queue");
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  });
  return show(
    view,
    h("h2", {}, `${request.student_name} · ${request.field_label}`),
    h("p", { class: "muted" }, `${request.source_label} · ${request.chain_label}`),
    step ? h("p", { class: step.overdue ? "overdue" : "muted" }, `${step.kind_label}，期限 ${step.due_on ?? ""}${step.overdue ? "（已超期）" : ""}`) : null,
    h("dl", { class: "record" },
      h("dt", {}, "现在的内容"), h("dd", {}, request.old_display ?? "—"),
      h("dt", {}, "申请改为"), h("dd", {}, request.new_display ?? "—"),
      h("dt", {}, "原因"), h("dd", {}, request.reason || "—")),
    h("h3", {}, "证明材料"),
    request.evidence.length ? await Promise.all(request.evidence.map(evidencePhoto)) : h("p", { class: "muted" }, "未附材料"),
    form,
    message,
  );
});

route(/^#\/families(?:\?status=(\w*))?$/, async (view, me, status = "") => {
  const query = status ? `?status=${status}&page_size=200` : "?page_size=200";
  const page = await api("GET", `/families${query}`).catch((error) => error);
  if (page instanceof Error) return show(view, errorBox(page));
  const filter = field("按状态筛选", {
    tag: "select",
    name: "status",
    options: FAMILY_FILTERS.map(([value, label]) => h("option", { value, selected: value === status }, label)),
  });
  filter.querySelector("select").addEventListener("change", (event) => go(`#/families?status=${event.target.value}`));
  return show(
    view,
    h("h2", {}, `班级家庭（${page.total}）`),
    teacherTools(page.items),
    filter,
    ...page.items.map((family) =>
      h(
        "a",
        { class: "card row", href: `#/family/${family.student_id}` },
        h("strong", {}, family.name),
        h("span", {}, STATE_LABELS[family.form.status] || family.form.status),
      ),
    ),
  );
});

route(/^#\/family\/(\d+)$/, async (view, me, id) => {
  const page = await api("GET", "/families?page_size=200").catch((error) => error);
  if (page instanceof Error) return show(view, errorBox(page));
  const family = page.items.find((f) => String(f.student_id) === id);
  return show(
    view,
    h("h2", {}, family ? family.name : "家庭"),
    family ? h("p", { class: "note" }, family.form.message || "") : null,
    h("p", { class: "muted" }, "家长无法自己上传时，可由您代为拍照上传。"),
    photoForm(id, { onBehalf: true }),
  );
});

// --- The teacher's desk: the paper forms back at school, the handwritten corrections read. ---

// Links from the class's families to the paper checklist and the corrections to read.
function teacherTools(families) {
  const withForm = families.find((family) => family.form.campaign_id);
  return h("div", { class: "actions" },
    withForm ? h("a", { class: "button secondary", href: `#/paper/${withForm.form.campaign_id}/${withForm.class_id}` }, "纸质表回收") : null,
    h("a", { class: "button secondary", href: "#/drafts" }, "核对手写更正"));
}

// The class's checklist (回收): one checkbox per child; each tick is saved at once.
route(/^#\/paper\/(\d+)\/(\d+)$/, async (view, me, campaignId, classId) => {
  const page = await api("GET", `/campaigns/${campaignId}/classes/${classId}/paper-returns?page_size=100`).catch((error) => error);
  if (page instanceof Error) return show(view, errorBox(page));
  const message = h("div", { "aria-live": "polite" });
  const count = h("p", { class: "muted" });
  const ticked = () => page.items.filter((item) => item.form?.paper_returned).length;
  const recount = () => { count.textContent = `已收回 ${ticked()} / ${page.items.filter((item) => item.form).length} 份`; };
  recount();
  const row = (item) => {
    if (!item.form) return h("p", { class: "card muted" }, `${item.name}：确认表未打印`);
    const box = field(item.name, { type: "checkbox", name: `paper-${item.student_id}`, checked: item.form.paper_returned, class: "tick" });
    const input = box.querySelector("input");
    input.addEventListener("change", async () => {
      const path = `/forms/${item.form.form_id}/${input.checked ? "paper-returned" : "paper-not-returned"}`;
      try {
        item.form = await api("POST", path);
        message.replaceChildren(h("p", { class: "ok" }, `${item.name}：${item.form.paper_returned ? "已收回" : "已取消收回"}`));
        recount();
      } catch (error) {
        input.checked = !input.checked;
        message.replaceChildren(errorBox(error));
      }
    });
    return h("div", { class: "card tick-row" }, box);
  };
  return show(view, h("h2", {}, "纸质确认表回收"), count, message, ...page.items.map(row));
});

async function cropImage(draft) {
  try {
    const response = await api("GET", draft.crop_url, undefined, { raw: true });
    const url = URL.createObjectURL(await response.blob());
    return h("img", { src: url, alt: `${draft.field_label}的手写更正`, class: "evidence" });
  } catch (error) {
    return errorBox(error);
  }
}

// Corrections written on paper, waiting to be read: the crop of the handwriting, then 字迹清楚
// (ready to transcribe) or 看不清 (the family is asked to write it again and retake the photo).
route(/^#\/drafts$/, async (view) => {
  const [drafts, families] = await Promise.all([
    api("GET", "/correction-drafts?state=draft&page_size=100"),
    api("GET", "/families?page_size=200"),
  ]).catch((error) => [error]);
  if (drafts instanceof Error) return show(view, errorBox(drafts));
  const names = new Map(families.items.map((family) => [family.student_id, family.name]));
  const card = async (draft) => {
    const answer = h("div", { "aria-live": "polite" });
    const decide = (action) => async () => {
      try {
        const decided = await api("POST", `/correction-drafts/${draft.id}/${action}`);
        buttons.remove();
        answer.replaceChildren(h("p", { class: decided.state === "legible" ? "ok" : "note" }, decided.state === "legible" ? "已确认字迹清楚" : "已请家长重新填写并拍照"));
      } catch (error) {
        answer.replaceChildren(errorBox(error));
      }
    };
    const who = `${names.get(draft.student_id) ?? "学生"} · ${draft.field_label}`;
    const buttons = h("div", { class: "actions" },
      h("button", { type: "button", onclick: decide("legible"), "aria-label": `${who}：字迹清楚` }, "字迹清楚"),
      h("button", { type: "button", class: "danger", onclick: decide("illegible"), "aria-label": `${who}：看不清` }, "看不清"));
    return h("section", { class: "card" },
      h("h3", {}, who),
      h("p", { class: "muted" }, `表上印的：${draft.printed_read ?? "—"}`),
      await cropImage(draft),
      buttons,
      answer);
  };
  return show(
    view,
    h("h2", {}, `待核对的手写更正（${drafts.total}）`),
    drafts.items.length ? null : h("p", { class: "muted" }, "没有待核对的手写更正。"),
    await Promise.all(drafts.items.map(card)),
  );
});

// --- The reviewer's extras: asking for evidence, the campaign's progress. ---

// Sends the request back to its author for more evidence (the reason says what is missing).
function askForEvidenceButton() {
  return h("button", { type: "submit", value: "send_back", class: "button secondary" }, "退回补充材料");
}

function progressLink() {
  return h("a", { class: "button secondary", href: "#/progress" }, "核查进度");
}

const PROGRESS_COUNTS = [
  ["students", "应核查学生"],
  ["forms_issued", "已下发确认表"],
  ["paper_returned", "纸质表已收回"],
  ["photos_uploaded", "已上传照片"],
  ["corrections_entered", "已录入更正"],
  ["steps_overdue", "超期待办"],
  ["problems_open", "未解决问题学籍"],
];

const percent = (part, whole) => (whole ? `${Math.round((part / whole) * 100)}%` : "—");

// The caller's own node (its school, county…) for the newest active campaign, and each node
// one level down with its upload rate.
route(/^#\/progress$/, async (view) => {
  const campaigns = await api("GET", "/campaigns").catch((error) => error); // newest first
  if (campaigns instanceof Error) return show(view, errorBox(campaigns));
  const campaign = campaigns.find((c) => c.active) || campaigns[0];
  if (!campaign) return show(view, h("h2", {}, "核查进度"), h("p", { class: "muted" }, "还没有核查活动。"));
  const progress = await api("GET", `/campaigns/${campaign.id}/progress?page_size=100`).catch((error) => error);
  if (progress instanceof Error) return show(view, errorBox(progress));
  const counts = progress.counts;
  return show(
    view,
    h("h2", {}, `核查进度 · ${progress.node.name}`),
    h("p", { class: "muted" }, `${campaign.name} · 截至 ${progress.as_of.slice(0, 16).replace("T", " ")}`),
    progress.refreshed_at && !progress.schools_waiting ? null : h("p", { class: "note" }, "部分学校的数字正在重新统计，几分钟后再看会更准确。"),
    h("dl", { class: "record" },
      PROGRESS_COUNTS.map(([key, label]) => [
        h("dt", {}, label),
        h("dd", {}, key === "students" || key === "steps_overdue" || key === "problems_open" || key === "corrections_entered"
          ? String(counts[key]) : `${counts[key]}（${percent(counts[key], counts.students)}）`),
      ])),
    progress.children.items.length ? h("h3", {}, "下级") : null,
    progress.children.items.map((child) =>
      h("div", { class: "card row" },
        h("strong", {}, child.node.name),
        h("span", { class: "muted" }, `上传 ${child.counts.photos_uploaded}/${child.counts.students}（${percent(child.counts.photos_uploaded, child.counts.students)}）· 回收 ${child.counts.paper_returned}`))),
  );
});

// --- Web Push for staff: "开启提醒" subscribes this browser and registers it with the API. ---

const canPush = () => "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

function keyBytes(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4)), (c) => c.charCodeAt(0));
}

async function subscribeToPush() {
  if ((await Notification.requestPermission()) !== "granted") {
    throw new Error("浏览器未允许通知：请在浏览器设置中允许本网站发送通知后再试");
  }
  const { public_key: key } = await api("GET", "/devices/webpush-key");
  await navigator.serviceWorker.register("/m/sw.js", { scope: "/m/" });
  const registration = await navigator.serviceWorker.ready;
  const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
  const { endpoint, keys } = subscription.toJSON();
  await api("POST", "/devices", { channel: "webpush", token: endpoint, keys, locale: navigator.language || "zh-CN" });
}

// Shown only where the browser can receive pushes; a subscription already registered stays.
function pushButton() {
  if (!canPush()) return null;
  const answer = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "button", class: "button secondary" }, "开启提醒");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await subscribeToPush();
      button.remove();
      answer.replaceChildren(h("p", { class: "ok" }, "已开启提醒：有新的待办时，这台手机会收到通知。"));
    } catch (error) {
      button.disabled = false;
      answer.replaceChildren(errorBox(error));
    }
  });
  return h("div", {}, button, answer);
}
