// The phone pages: a hash router over the views; who is signed in decides the home screen.
import { api, forgetTokens, keepTokens, publicApi, tokens, whenSignedOut } from "./api.js";
import "./parent.js";
import { go, routes } from "./router.js";
import "./staff.js";
import { errorBox, field, h, keepDraft, newScreen, show } from "./ui.js";

const tabs = document.getElementById("tabs");
const signout = document.getElementById("signout");
const FORM_TOKEN = "m.formToken";

// The QR link `/m/f/{token}`: the token is the registration code itself.
const link = location.pathname.match(/\/m\/f\/([^/?#]+)/);
if (link) sessionStorage.setItem(FORM_TOKEN, decodeURIComponent(link[1]));

let me = null;
const STAFF_HOME = { teacher: "#/families" };


// Which tab a screen belongs to, by the first part of its address (#/child/3 → 孩子).
const TAB_OF = {
  children: "#/children", child: "#/children", upload: "#/children", ask: "#/children",
  changes: "#/children", change: "#/children", transfer: "#/queue",
  requests: "#/requests", request: "#/requests",
  inbox: "#/inbox", threads: "#/inbox", thread: "#/inbox",
  families: "#/families", family: "#/families", paper: "#/families", drafts: "#/families",
  queue: "#/queue", step: "#/queue", progress: "#/queue",
};
// The status-change screens load when first opened: none is on the QR link's first screen,
// which a parent opens on whatever network they have.
const LOADED_LATER = /^#\/(changes$|change\/|child\/\d+\/change$|transfer\/)/;
const section = () => (location.hash.match(/^#\/(\w+)/) || [])[1];

function setTabs(items) {
  tabs.hidden = !items.length;
  tabs.replaceChildren(
    ...items.map(([hash, label]) =>
      h("a", { href: hash, "aria-current": TAB_OF[section()] === hash ? "page" : undefined }, label),
    ),
  );
}

async function render() {
  if (!tokens()) {
    me = null;
    signout.hidden = true;
    setTabs([]);
    return signIn();
  }
  try {
    me ||= await api("GET", "/me");
  } catch (error) {
    if (!tokens()) return undefined; // signed out: render() ran again
    return show(newScreen(), errorBox(error));
  }
  signout.hidden = false;
  const hash = location.hash || "";
  if (me.role === "parent") {
    setTabs([["#/children", "孩子"], ["#/requests", "更正申请"], ["#/inbox", "消息"]]);
  } else {
    setTabs(me.role === "teacher" ? [["#/families", "班级"], ["#/queue", "待我处理"]] : [["#/queue", "待我处理"]]);
  }
  if (me.role === "parent" && sessionStorage.getItem(FORM_TOKEN)) return addChild();
  if (LOADED_LATER.test(hash)) {
    try {
      await import("./transfers.js");
    } catch {
      return show(newScreen(), errorBox({ message: "页面加载失败，请检查网络后重试" }));
    }
  }
  for (const [pattern, handler] of routes) {
    const match = hash.match(pattern);
    if (match) return handler(newScreen(), me, ...match.slice(1));
  }
  return go(me.role === "parent" ? "#/children" : STAFF_HOME[me.role] || "#/queue");
}

function phoneAndSecondFact() {
  return [
    field("孩子的出生日期或身份证号后6位", { name: "fact", required: true, autocomplete: "off" }, "如 2018-05-15，或身份证号最后6位"),
    field("家长手机号", { name: "phone", type: "tel", inputmode: "numeric", autocomplete: "tel", required: true }),
  ];
}

function secondFact(value) {
  const text = value.trim();
  return text.length === 6 ? { id_last6: text } : { birth_date: text };
}

// Sign-up from the form (its QR link, or the code typed), or log in with phone and password.
function signIn(mode) {
  const code = sessionStorage.getItem(FORM_TOKEN);
  mode ||= code ? "signup" : "login";
  const message = h("div", { "aria-live": "assertive" });
  const other = h(
    "button",
    { type: "button", class: "link", onclick: () => signIn(mode === "signup" ? "login" : "signup") },
    mode === "signup" ? "已有账号？用手机号登录" : "第一次使用？用确认表注册",
  );
  if (mode === "login") return show(newScreen(), h("h2", {}, "登录"), loginForm(message), message, other);

  const form = h(
    "form",
    {},
    code
      ? h("p", { class: "note" }, "已识别确认表上的二维码。请填写以下信息，我们会给家长手机发送验证码。")
      : field("确认表上的注册码", { name: "code", required: true, autocomplete: "off" }, "在《学籍基础信息确认表》右上角"),
    ...phoneAndSecondFact(),
    h("button", { type: "submit" }, "获取验证码"),
  );
  const dropDraft = keepDraft(form, "signup");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.replaceChildren();
    const values = Object.fromEntries(new FormData(form));
    const body = { registration_code: code || values.code, phone: values.phone.trim(), ...secondFact(values.fact) };
    try {
      const ticket = await publicApi("POST", "/signup/start", body);
      dropDraft();
      confirmSignup(ticket, body);
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
    return undefined;
  });
  return show(newScreen(), h("h2", {}, "家长注册"), form, message, other);
}

// Signed in and the QR link of another child's form opened: link that child too.
function addChild() {
  const message = h("div", { "aria-live": "assertive" });
  const form = h(
    "form",
    {},
    h("p", { class: "note" }, "已识别确认表上的二维码。填写孩子的出生日期或身份证号后6位，即可添加这个孩子。"),
    field("孩子的出生日期或身份证号后6位", { name: "fact", required: true, autocomplete: "off" }, "如 2018-05-15，或身份证号最后6位"),
    h("button", { type: "submit" }, "添加孩子"),
    h("button", { type: "button", class: "link", onclick: () => { sessionStorage.removeItem(FORM_TOKEN); go("#/children"); } }, "不添加"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { registration_code: sessionStorage.getItem(FORM_TOKEN), ...secondFact(form.elements.fact.value) };
    try {
      await api("POST", "/my/children", body);
      sessionStorage.removeItem(FORM_TOKEN);
      go("#/children");
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  });
  show(newScreen(), h("h2", {}, "添加孩子"), form, message);
}

// The phone already has an account (told only once the SMS code proved the phone): log in,
// then the scanned form's child is linked with the same code and second fact.
function logInToAddChild(error, started) {
  sessionStorage.setItem("m.addChild", JSON.stringify(started));
  const message = h("div", { "aria-live": "assertive" });
  show(newScreen(), h("h2", {}, "登录"), h("p", { class: "note" }, error.message), loginForm(message, started.phone), message);
}

function confirmSignup(ticket, started) {
  const message = h("div", { "aria-live": "assertive" });
  const form = h(
    "form",
    {},
    h("p", { class: "note" }, `验证码已发送到 ${ticket.phone}。`),
    field("短信验证码", { name: "sms_code", inputmode: "numeric", autocomplete: "one-time-code", required: true }),
    field("设置登录密码", { name: "password", type: "password", autocomplete: "new-password", required: true }, "至少8位，含字母和数字"),
    h("button", { type: "submit" }, "完成注册"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form));
    try {
      keepTokens(await publicApi("POST", "/signup/confirm", { ticket: ticket.ticket, ...values }));
      sessionStorage.removeItem(FORM_TOKEN);
      go("#/children");
    } catch (error) {
      if (error.code === "account_exists") return logInToAddChild(error, started);
      message.replaceChildren(errorBox(error));
    }
  });
  show(newScreen(), h("h2", {}, "验证手机号"), form, message);
}

function loginForm(message, phone = "") {
  const smsField = field("短信验证码", { name: "sms_code", inputmode: "numeric", autocomplete: "one-time-code" });
  smsField.hidden = true;
  const form = h(
    "form",
    {},
    field("手机号", { name: "phone", type: "tel", inputmode: "numeric", autocomplete: "tel", required: true, value: phone }),
    field("密码", { name: "password", type: "password", autocomplete: "current-password", required: true }),
    smsField,
    h("button", { type: "submit" }, "登录"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.replaceChildren();
    const values = Object.fromEntries(new FormData(form));
    if (!values.sms_code) delete values.sms_code;
    try {
      const answer = await publicApi("POST", "/auth/login", values);
      if (answer.second_factor_required) return secondFactor(answer);
      return signedIn(answer);
    } catch (error) {
      if (error.code === "sms_code_required") smsField.hidden = false;
      return message.replaceChildren(errorBox(error));
    }
  });
  return form;
}

async function signedIn(pair) {
  keepTokens(pair);
  await addChildAfterLogin();
  me = null;
  render();
}

// Staff above a teacher confirm each sign-in: the authenticator's or an SMS code (or a
// recovery code); an account without a factor yet enrols one by SMS here (an authenticator
// app is set up on a computer, where its QR code can be shown).
async function secondFactor(challenge) {
  const message = h("div", { "aria-live": "assertive" });
  const enrol = challenge.step === "enrol";
  const bySms = enrol || challenge.methods[0] === "sms";
  if (bySms) {
    try {
      await publicApi("POST", "/auth/second-factor/sms", { ticket: challenge.ticket });
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  }
  const methods = enrol ? [] : [...new Set([challenge.methods[0], "recovery"])];
  const labels = { sms: "短信验证码", totp: "身份验证器上的6位数字", recovery: "恢复码" };
  const form = h(
    "form",
    {},
    h("p", { class: "note" }, bySms ? `验证码已发送到 ${challenge.phone}。` : "请打开身份验证器应用。"),
    methods.length > 1
      ? field("验证方式", { tag: "select", name: "method", options: methods.map((m) => h("option", { value: m }, labels[m])) })
      : null,
    field("验证码", { name: "code", inputmode: enrol ? "numeric" : undefined, autocomplete: "one-time-code", required: true }),
    h("button", { type: "submit" }, "验证并登录"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = form.elements.code.value.trim();
    try {
      if (enrol) {
        const done = await publicApi("POST", "/auth/second-factor/confirm", { ticket: challenge.ticket, method: "sms", code });
        return recoveryCodes(done);
      }
      const method = form.elements.method?.value || methods[0];
      return signedIn(await publicApi("POST", "/auth/second-factor/verify", { ticket: challenge.ticket, method, code }));
    } catch (error) {
      if (error.code === "second_factor_ticket_invalid") return signIn("login");
      return message.replaceChildren(errorBox(error));
    }
  });
  show(newScreen(), h("h2", {}, enrol ? "设置登录验证" : "登录验证"), form, message);
}

function recoveryCodes(done) {
  show(
    newScreen(),
    h("h2", {}, "请记下恢复码"),
    h("p", { class: "note" }, "手机丢失时，可用其中任意一个登录。每个只能用一次，本页只显示这一次。"),
    h("ol", { class: "codes" }, done.recovery_codes.map((code) => h("li", {}, code))),
    h("button", { type: "button", onclick: () => signedIn(done.tokens) }, "我已记下，继续"),
  );
}

// A parent who already had an account and scanned another child's form: link that child.
async function addChildAfterLogin() {
  const pending = JSON.parse(sessionStorage.getItem("m.addChild") || "null");
  if (!pending) return;
  sessionStorage.removeItem("m.addChild");
  sessionStorage.removeItem(FORM_TOKEN);
  const { phone, ...child } = pending;
  await api("POST", "/my/children", child).catch(() => undefined);
}

// Signed out at once, whatever the network: the session ends on the server when the call lands.
signout.addEventListener("click", () => {
  const session = tokens();
  forgetTokens();
  me = null;
  go("#/");
  if (session) {
    const headers = { Authorization: `Bearer ${session.access_token}` };
    fetch("/auth/logout", { method: "POST", headers }).catch(() => undefined);
  }
});

whenSignedOut(() => {
  me = null;
  render();
});
window.addEventListener("hashchange", render);

render();
