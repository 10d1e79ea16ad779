// Small DOM helpers: elements built with textContent (never innerHTML: every value comes from
// the API and may hold anything), labelled fields, form drafts kept in sessionStorage.

export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

let fieldCount = 0;
// A labelled input: the label names it for screen readers and taps.
export function field(label, props = {}, hint = "") {
  const id = props.id || `f${++fieldCount}`;
  const { tag = "input", options = [], ...attributes } = props;
  const control = h(tag, { ...attributes, id }, ...options);
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
  );
}

// Each render draws on a screen of its own, shown only if no later render began meanwhile:
// a slow answer for a screen the user already left never replaces the one they are on.
let currentScreen = null;
export function newScreen() {
  currentScreen = document.createElement("div");
  return currentScreen;
}

export function show(screen, ...children) {
  screen.replaceChildren(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
  if (screen !== currentScreen) return;
  const view = document.getElementById("view");
  if (view.firstChild !== screen) view.replaceChildren(screen);
  view.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

export function errorBox(error) {
  const box = h("p", { class: "error", role: "alert" }, error.message);
  const details = Object.values(error.fieldErrors || {});
  return details.length ? h("div", {}, box, h("ul", { class: "error" }, details.map((d) => h("li", {}, d)))) : box;
}

// Fill a form from its draft and keep the draft as the user types: a session that expires
// mid-form sends them to sign in, and what they typed is there when they come back.
export function keepDraft(form, key) {
  const storageKey = `m.draft.${key}`;
  let saved = {};
  try {
    saved = JSON.parse(sessionStorage.getItem(storageKey)) || {};
  } catch {
    saved = {};
  }
  for (const control of form.elements) {
    if (control.name && control.type !== "file" && control.type !== "password" && saved[control.name] !== undefined) {
      control.value = saved[control.name];
    }
  }
  form.addEventListener("input", () => {
    const values = {};
    for (const control of form.elements) {
      if (control.name && control.type !== "file" && control.type !== "password") values[control.name] = control.value;
    }
    sessionStorage.setItem(storageKey, JSON.stringify(values));
  });
  return () => sessionStorage.removeItem(storageKey);
}

export function progressBar() {
  const bar = h("progress", { max: 100, value: 0, "aria-label": "上传进度" });
  const text = h("span", { class: "muted", "aria-live": "polite" }, "");
  return {
    element: h("div", { class: "progress", hidden: true }, bar, text),
    set(fraction) {
      this.element.hidden = false;
      bar.value = Math.round(fraction * 100);
      text.textContent = fraction >= 1 ? "已上传，正在检查…" : `正在上传 ${bar.value}%`;
    },
  };
}

export function date(text) {
  return text ? text.slice(0, 10) : "";
}
