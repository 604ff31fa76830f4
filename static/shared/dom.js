// Tiny DOM helpers shared by the apps.
//
//   h("button", { class: "primary", onclick: go, disabled: !ready }, t("order.submit"))
//
// Attributes: `class`, `text`, `on<event>` handlers, booleans (true → present, false/null → absent),
// `dataset: {…}`, anything else via setAttribute. Children: nodes, strings, numbers, arrays, null.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (name === "text") {
      element.textContent = value;
    } else if (name === "value") {
      element.value = value;
    } else if (name === "checked") {
      element.checked = true;
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Like `h()` for SVG elements (charts): `svg("rect", {x: 0, width: 10, class: "bar"})`. */
export function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") element.textContent = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

/**
 * Replaces the children of `container`, keeping keyboard focus on the element with the same
 * `data-key` (so a live re-render does not throw a keyboard or screen-reader user out).
 */
export function patch(container, ...children) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset?.key : null;
  container.replaceChildren();
  append(container, children);
  if (key) {
    const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again && !again.disabled) again.focus();
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** "m:ss" for a number of seconds (never negative). */
export function clock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Seconds since an RFC 3339 time (never negative). */
export function secondsSince(iso, now = Date.now()) {
  if (!iso) return 0;
  return Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
}

/** Seconds until an RFC 3339 time (never negative). */
export function secondsUntil(iso, now = Date.now()) {
  if (!iso) return 0;
  return Math.max(0, (Date.parse(iso) - now) / 1000);
}

/**
 * Asks a yes/no question in a real modal <dialog> (focus is trapped and returned, Esc = no).
 * Resolves to true for yes.
 */
export function confirmDialog({ title, body, yes, no }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title", "aria-describedby": "confirm-body" },
      h("h2", { id: "confirm-title" }, title),
      h("p", { id: "confirm-body" }, body),
      h(
        "form",
        { method: "dialog", class: "confirm-actions" },
        h("button", { value: "no", class: "secondary", autofocus: true, "data-testid": "confirm-no" }, no),
        h("button", { value: "yes", class: "danger", "data-testid": "confirm-yes" }, yes),
      ),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && document.contains(opener)) opener.focus();
      resolve(dialog.returnValue === "yes");
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
