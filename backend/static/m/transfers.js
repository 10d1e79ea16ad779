// Status changes (学籍异动) on the phone: a parent applies (a transfer's receiving school found
// in the school directory, a photo of each document the province asks for) and follows it;
// an approver reads one from "待我处理", chooses the class when it is theirs to, and decides.
import { api, upload } from "./api.js";
import { shrink } from "./photo.js";
import { go, route } from "./router.js";
import { date, errorBox, field, h, keepDraft, progressBar, show } from "./ui.js";

// What a parent may apply for (a cancellation is the school's alone).
const KINDS = [
  ["transfer", "转学"],
  ["suspend", "休学"],
  ["resume", "复学"],
  ["leave", "离校"],
  ["skip", "跳级"],
  ["repeat", "留级"],
  ["abroad", "境外就读"],
];
// The kinds that move the child into a class the school chooses when taking the application up.
const INTO_A_CLASS = new Set(["transfer", "skip", "repeat"]);
const DIRECTORY_PAGE = 5;

function fromTo(change) {
  return change.to_school_name && change.to_school_name !== change.from_school_name
    ? `${change.from_school_name} → ${change.to_school_name}`
    : change.from_school_name;
}

function due(step) {
  if (!step?.due_on) return null;
  return h(
    "span",
    { class: step.overdue ? "overdue" : "muted" },
    ` 期限 ${step.due_on}${step.overdue ? "（已超期）" : ""}`,
  );
}

// Every step of every round: what it is, who holds it, its state, due date, reason.
function stepList(steps) {
  return h(
    "ol",
    { class: "steps" },
    steps.map((s) =>
      h(
        "li",
        {},
        `${s.kind_label}（${s.holder}）：${s.state_label}`,
        s.decided_at ? null : due(s),
        s.reason ? h("p", { class: "muted" }, `意见：${s.reason}`) : null,
      ),
    ),
  );
}

function changeFacts(change) {
  return h(
    "dl",
    { class: "record" },
    h("dt", {}, "学生"), h("dd", {}, change.student_name),
    h("dt", {}, "学校"), h("dd", {}, fromTo(change)),
    change.span_label ? [h("dt", {}, "范围"), h("dd", {}, change.span_label)] : null,
    h("dt", {}, "原因"), h("dd", {}, change.reason || "—"),
  );
}

function currentStep(change) {
  const step = change.current_step;
  if (!step) return null;
  return h(
    "section",
    { class: "card" },
    h("h3", {}, "当前环节"),
    h("p", {}, `${step.kind_label}，由${step.holder}办理`),
    h("p", {}, due(step)),
  );
}

// ---- the parent: applying -------------------------------------------------------------

// The school directory: a name (2 characters or more) and/or a region code, paged.
function directory(onChosen) {
  const results = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "search" },
    field("转入学校名称", { name: "name", autocomplete: "off" }, "至少2个字，如“实验小学”"),
    field("所在地区代码（可选）", { name: "region_code", inputmode: "numeric", autocomplete: "off" }, "县（区）、市或省的6位代码，如 330106"),
    h("button", { type: "submit", class: "button secondary" }, "查找学校"),
  );
  async function search(page) {
    const query = new URLSearchParams({ page, page_size: DIRECTORY_PAGE });
    const name = form.elements.name.value.trim();
    const region = form.elements.region_code.value.trim();
    if (name) query.set("name", name);
    if (region) query.set("region_code", region);
    let found;
    try {
      found = await api("GET", `/school-directory?${query}`);
    } catch (error) {
      return results.replaceChildren(errorBox(error));
    }
    const pages = Math.max(1, Math.ceil(found.total / found.page_size));
    return results.replaceChildren(
      h("p", { class: "muted" }, found.total ? `找到 ${found.total} 所学校（第 ${found.page}/${pages} 页）` : "没有找到学校，请换个名称或地区再试。"),
      ...found.items.map((school) =>
        h(
          "button",
          { type: "button", class: "card choice", onclick: () => onChosen(school) },
          h("strong", {}, school.name),
          h("span", { class: "muted" }, ` ${school.region_name} · ${school.kind_label} · ${school.administered_by_label}`),
        ),
      ),
      h(
        "div",
        { class: "actions" },
        found.page > 1 ? h("button", { type: "button", class: "button secondary", onclick: () => search(found.page - 1) }, "上一页") : null,
        found.page < pages ? h("button", { type: "button", class: "button secondary", onclick: () => search(found.page + 1) }, "下一页") : null,
      ),
    );
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    search(1);
  });
  return h("div", {}, form, results);
}

// A photo input for each document asked (named by the first part it may be sent in).
function documentInputs(list) {
  if (!list.documents.length) return [h("p", { class: "muted" }, "本类申请无需上传材料，写明原因即可。")];
  return [
    h("h3", {}, "需要的材料"),
    h("p", { class: "muted" }, `${list.kind_label}${list.span_label ? `（${list.span_label}）` : ""}需拍照上传以下材料，每项一张：`),
    ...list.documents.map((doc) =>
      field(doc.label, { name: `doc.${doc.code}`, type: "file", accept: "image/*", capture: "environment", "data-part": doc.parts[0] }),
    ),
  ];
}

route(/^#\/child\/(\d+)\/change$/, (view, me, childId) => {
  let school = null;
  const message = h("div", { "aria-live": "assertive" });
  const progress = progressBar();
  const chosen = h("div", { "aria-live": "polite" });
  const documents = h("div", {});
  const kind = field("申请类型", {
    tag: "select",
    name: "kind",
    options: KINDS.map(([value, label]) => h("option", { value }, label)),
  });
  const finder = h("div", {}, h("h3", {}, "转入学校"), chosen);
  const form = h(
    "form",
    {},
    documents,
    field("申请原因", { tag: "textarea", name: "reason", required: true, rows: 3 }, "如：随父母工作调动迁居"),
    h("button", { type: "submit" }, "提交申请"),
    progress.element,
  );
  const dropDraft = keepDraft(form, `change.${childId}`);

  async function loadDocuments() {
    documents.replaceChildren();
    message.replaceChildren();
    const value = kind.querySelector("select").value;
    if (value === "transfer" && !school) return;
    const query = new URLSearchParams({ kind: value });
    if (value === "transfer") query.set("to_school_id", school.school_id);
    try {
      const list = await api("GET", `/my/children/${childId}/status-changes/documents?${query}`);
      documents.replaceChildren(...documentInputs(list));
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  }
  function choose(found) {
    school = found;
    chosen.replaceChildren(
      ...(found
        ? [
            h("p", { class: "ok" }, `已选择：${found.name}（${found.region_name}）`),
            h("button", { type: "button", class: "link", onclick: () => choose(null) }, "重新选择学校"),
          ]
        : [directory(choose)]),
    );
    loadDocuments();
  }
  function kindChanged() {
    finder.hidden = kind.querySelector("select").value !== "transfer";
    loadDocuments();
  }
  kind.querySelector("select").addEventListener("change", kindChanged);
  choose(null);
  finder.hidden = kind.querySelector("select").value !== "transfer";

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.replaceChildren();
    const value = kind.querySelector("select").value;
    if (value === "transfer" && !school) {
      return message.replaceChildren(h("p", { class: "error", role: "alert" }, "请先查找并选择转入学校"));
    }
    const body = new FormData();
    body.append("kind", value);
    if (value === "transfer") body.append("to_school_id", school.school_id);
    body.append("reason", form.elements.reason.value.trim());
    for (const input of documents.querySelectorAll("input[type=file]")) {
      const photo = input.files[0];
      if (photo) body.append(input.dataset.part, await shrink(photo), `${input.dataset.part}.jpg`);
    }
    progress.set(0);
    try {
      const made = await upload(`/my/children/${childId}/status-changes`, body, (f) => progress.set(f));
      dropDraft();
      return go(`#/change/${made.id}`);
    } catch (error) {
      progress.element.hidden = true;
      return message.replaceChildren(errorBox(error));
    }
  });
  show(view, h("h2", {}, "申请转学/异动"), kind, finder, form, message);
});

// ---- the parent: following ------------------------------------------------------------

route(/^#\/changes$/, async (view) => {
  const page = await api("GET", "/my/status-changes?page_size=50").catch((error) => error);
  if (page instanceof Error) return show(view, errorBox(page));
  return show(
    view,
    h("h2", {}, "异动申请"),
    page.items.length ? null : h("p", { class: "muted" }, "还没有转学或其他异动申请。"),
    ...page.items.map((c) =>
      h(
        "a",
        { class: "card row", href: `#/change/${c.id}` },
        h("strong", {}, `${c.student_name} · ${c.kind_label}`),
        h("span", {}, `${c.state_label}${c.current_step ? `：${c.current_step.kind_label}` : ""}`),
        c.current_step?.overdue ? h("span", { class: "overdue" }, "已超期") : null,
      ),
    ),
  );
});

route(/^#\/change\/(\d+)$/, async (view, me, id) => {
  const change = await api("GET", `/my/status-changes/${id}`).catch((error) => error);
  if (change instanceof Error) return show(view, errorBox(change));
  return show(
    view,
    h("h2", {}, `${change.kind_label}申请`),
    h("p", { class: change.state === "refused" ? "note" : "state" }, change.state_label),
    change.refusal ? h("p", { class: "note" }, `原因：${change.refusal}`) : null,
    changeFacts(change),
    currentStep(change),
    h("h3", {}, "办理进度"),
    stepList(change.steps),
    change.completed_at ? h("p", { class: "ok" }, `已于 ${date(change.completed_at)} 办结`) : null,
    h("a", { class: "button secondary", href: "#/changes" }, "我的异动申请"),
  );
});

// ---- the approver ---------------------------------------------------------------------

async function documentPhoto(photo) {
  try {
    const response = await api("GET", photo.url, undefined, { raw: true });
    const url = URL.createObjectURL(await response.blob());
    return h("figure", {}, h("img", { src: url, alt: photo.kind_label, class: "evidence" }), h("figcaption", {}, photo.kind_label));
  } catch (error) {
    return errorBox(error);
  }
}

// Taking up a parent's application: the class of my school the child goes to.
async function classChoice(change, message, onChosen) {
  const school = change.kind === "transfer" ? change.to_school_id : change.from_school_id;
  const classes = await api("GET", `/org/classes?school_id=${school}&page_size=200`).catch((error) => error);
  if (classes instanceof Error) return errorBox(classes);
  const form = h(
    "form",
    {},
    field("转入班级", {
      tag: "select",
      name: "class_id",
      required: true,
      options: classes.items.map((c) => h("option", { value: c.id, selected: c.id === change.to_class_id }, `${c.grade}年级 ${c.name}`)),
    }, change.to_class_id ? "已选定，可改选" : "同意前须先选定班级"),
    h("button", { type: "submit", class: "button secondary" }, "确定班级"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", `/status-changes/${change.id}/class`, { class_id: Number(form.elements.class_id.value) });
      onChosen();
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  });
  return form;
}

route(/^#\/transfer\/(\d+)\/(\d+)$/, async (view, me, stepId, changeId) => {
  const change = await api("GET", `/status-changes/${changeId}`).catch((error) => error);
  if (change instanceof Error) return show(view, errorBox(change));
  const step = change.current_step;
  const mine = step && String(step.id) === stepId;
  const message = h("div", { "aria-live": "assertive" });
  const reload = () => go(`#/transfer/${stepId}/${changeId}`);
  const choosing = mine && step.position === 1 && INTO_A_CLASS.has(change.kind);
  const form = h(
    "form",
    {},
    field("意见（不同意时必填）", { tag: "textarea", name: "reason", rows: 2 }),
    h("div", { class: "actions" },
      h("button", { type: "submit", value: "approve" }, "同意"),
      h("button", { type: "submit", value: "reject", class: "danger" }, "不同意")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.replaceChildren();
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
    h("h2", {}, `${change.student_name} · ${change.kind_label}`),
    h("p", { class: "muted" }, `${change.state_label}，第${change.round}轮`),
    step ? h("p", {}, `${step.kind_label}（${step.holder}）`, due(step)) : null,
    changeFacts(change),
    h("h3", {}, "申请材料"),
    change.evidence.length ? await Promise.all(change.evidence.map(documentPhoto)) : h("p", { class: "muted" }, "未附材料"),
    choosing ? await classChoice(change, message, reload) : null,
    mine ? form : h("p", { class: "note" }, "这一环节已不由您办理。"),
    message,
  );
});
