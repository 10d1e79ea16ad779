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
