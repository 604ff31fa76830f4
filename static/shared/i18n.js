// English and Brazilian Portuguese for every app.
//
//   import { initI18n, t, onLanguageChange, languagePicker } from "/shared/i18n.js";
//   await initI18n();                         // browser language, or the one remembered
//   t("display.drinksLeft", { count: 3 });    // plural forms are objects {one, other}
//
// Static HTML uses `data-i18n="key"` (text) and `data-i18n-attr="attr:key,attr:key"`.
// Texts live in /shared/i18n/<lang>.json, never in the code.

export const LANGUAGES = ["en", "pt-BR"];
const STORAGE_KEY = "spinpresso.lang";
const listeners = [];
const cache = new Map();
let current = "en";
let texts = {};
let fallback = {};

async function load(lang) {
  if (!cache.has(lang)) {
    const response = await fetch(`/shared/i18n/${lang}.json`, { credentials: "same-origin" });
    cache.set(lang, response.ok ? await response.json() : {});
  }
  return cache.get(lang);
}

/** The remembered language, else the first browser language we speak, else English. */
export function preferredLanguage() {
  const stored = localStorage.getItem(STORAGE_KEY);
  if (LANGUAGES.includes(stored)) return stored;
  for (const lang of navigator.languages ?? [navigator.language]) {
    const lower = String(lang).toLowerCase();
    if (lower.startsWith("pt")) return "pt-BR";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

export async function initI18n() {
  fallback = await load("en");
  await use(preferredLanguage());
}

async function use(lang) {
  current = lang;
  texts = lang === "en" ? fallback : await load(lang);
  document.documentElement.lang = lang;
  translatePage(document);
}

export async function setLanguage(lang) {
  if (!LANGUAGES.includes(lang)) return;
  localStorage.setItem(STORAGE_KEY, lang);
  await use(lang);
  for (const listener of listeners) listener(lang);
}

export function language() {
  return current;
}

export function onLanguageChange(listener) {
  listeners.push(listener);
}

/** The text for `key`, with `{name}` placeholders filled from `vars`; plural by `vars.count`. */
export function t(key, vars = {}) {
  let text = texts[key] ?? fallback[key] ?? key;
  if (typeof text === "object") {
    const form = new Intl.PluralRules(current).select(Number(vars.count ?? 0));
    text = text[form] ?? text.other;
  }
  return String(text).replace(/\{(\w+)\}/g, (match, name) => (name in vars ? String(vars[name]) : match));
}

/** Whether a text exists for `key` (e.g. an error code with its own message). */
export function has(key) {
  return key in texts || key in fallback;
}

/** Fills `data-i18n` and `data-i18n-attr` elements under `root`. */
export function translatePage(root) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const element of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of element.dataset.i18nAttr.split(",")) {
      const [attr, key] = pair.split(":");
      element.setAttribute(attr.trim(), t(key.trim()));
    }
  }
  if (root === document && document.body?.dataset.titleKey) {
    document.title = t(document.body.dataset.titleKey);
  }
}

/** A labelled <select> that switches the language (and remembers it). */
export function languagePicker() {
  const id = `lang-${Math.random().toString(36).slice(2, 8)}`;
  const wrapper = document.createElement("div");
  wrapper.className = "lang-picker";
  const label = document.createElement("label");
  label.htmlFor = id;
  label.dataset.i18n = "common.language";
  label.textContent = t("common.language");
  const select = document.createElement("select");
  select.id = id;
  select.dataset.testid = "language";
  for (const lang of LANGUAGES) {
    const option = document.createElement("option");
    option.value = lang;
    option.textContent = t(`lang.${lang}`);
    option.dataset.i18n = `lang.${lang}`;
    select.append(option);
  }
  select.value = current;
  select.addEventListener("change", () => setLanguage(select.value));
  onLanguageChange((lang) => {
    select.value = lang;
  });
  wrapper.append(label, select);
  return wrapper;
}

/** A short, localized time of day. */
export function timeOfDay(iso) {
  return new Intl.DateTimeFormat(current, { hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
}

/** "1m 05s"-style age for boards (localized units). */
export function age(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const m = Math.floor(s / 60);
  return m > 0
    ? t("common.ageMinutes", { m, s: String(s % 60).padStart(2, "0") })
    : t("common.ageSeconds", { s });
}

/** The message for an API error: our text for its code when we have one, else the server's message. */
export function errorText(error) {
  const code = error?.code;
  if (code && has(`error.${code}`)) return t(`error.${code}`);
  return error?.message || t("error.unknown");
}
