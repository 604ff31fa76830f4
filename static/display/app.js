// The big screen: QR code with drinks left and a countdown ring, "Preparing" and "Ready" boards.
// State lives in `state`; `render()` draws it; `tick()` moves clocks every second.
// It signs in as `display`, which only reads the QR code: everything live comes from the public
// board stream (board items, the drinks left on a code's slot, open/closed), never the staff one.
import { api, shopFromUrl, shopPath, staffLogin, isAuthError } from "/shared/api.js";
import { LiveStream } from "/shared/sse.js";
import { onBoardEvents } from "/shared/events.js";
import { h, svg, patch, $, clock, secondsSince, secondsUntil } from "/shared/dom.js";
import { initI18n, t, age, errorText, languagePicker, onLanguageChange } from "/shared/i18n.js";
import { signInForm } from "/shared/signin.js";

const READY_SECONDS = 600; // ready drinks leave the board after 10 minutes
const MAX_PREPARING = 12;
const MAX_READY = 8;
const RING_RADIUS = 47;
const RING_LENGTH = 2 * Math.PI * RING_RADIUS;

const state = {
  shop: shopFromUrl(),
  screen: "loading", // loading | signin | board
  signinError: null,
  signinNotice: null, // an i18n key, e.g. "signin.ended"
  config: null, // public config: name, open, codeRotationSeconds, drinksPerCode
  qr: null, // {code, url, slot, slotEndsAt, tokensLeft, drinksPerCode}
  qrLoading: false,
  qrTriedAt: 0,
  orders: new Map(), // number → {number, drink, displayName, state, since}
  connection: "connecting",
  error: null,
};
let live = null;
let qrImage = null; // kept across renders so the picture never flickers

async function main() {
  await initI18n();
  $("#lang").replaceWith(languagePicker());
  $("#fullscreen").addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else document.documentElement.requestFullscreen?.().catch(() => {});
  });
  onLanguageChange(render);
  await loadConfig();
  try {
    await loadQr();
    startBoard();
  } catch (error) {
    if (isAuthError(error)) state.screen = "signin";
    else state.error = errorText(error);
    render();
  }
  setInterval(tick, 1000);
}

/** The display's sign-in is no longer accepted (expired or signed out elsewhere): ask for the PIN. */
function signInAgain() {
  live?.stop();
  live = null;
  state.screen = "signin";
  state.signinNotice = "signin.ended";
}

async function loadConfig() {
  try {
    state.config = await api.get(shopPath(state.shop, "/config"));
  } catch (error) {
    state.error = errorText(error);
  }
}

async function loadQr() {
  state.qrLoading = true;
  state.qrTriedAt = Date.now();
  try {
    state.qr = await api.get(shopPath(state.shop, "/qr"));
  } finally {
    state.qrLoading = false;
  }
}

async function loadBoard() {
  const board = await api.get(shopPath(state.shop, "/board"));
  state.orders = new Map();
  for (const item of [...board.preparing, ...board.ready]) {
    if (item.number !== null) state.orders.set(item.number, item);
  }
}

/** Reloads everything from REST: at start, after a reconnect and on `reset`. */
async function catchUp() {
  try {
    await Promise.all([loadConfig(), loadQr(), loadBoard()]);
    state.error = null;
  } catch (error) {
    if (isAuthError(error)) signInAgain();
    else state.error = errorText(error);
  }
  render();
}

/** A new QR code (rotation, reopening, a new quota); a refused sign-in goes back to the PIN. */
function refreshQr() {
  loadQr().then(render, (error) => {
    if (isAuthError(error) && state.screen === "board") {
      signInAgain();
      render();
    }
  });
}

function startBoard() {
  live?.stop();
  state.screen = "board";
  state.signinNotice = null;
  render();
  catchUp();
  live = new LiveStream(shopPath(state.shop, "/events/board"), {
    onStatus: (status) => {
      const wasDown = state.connection === "reconnecting";
      state.connection = status;
      renderConnection();
      if (status === "live" && wasDown) catchUp();
    },
    onReset: catchUp,
  });
  onBoardEvents(live, onEvent);
  live.start();
}

/** One board stream event: `{slot, tokensLeft}`, the public config, or a board item. */
function onEvent(event) {
  const data = event.data ?? {};
  if (event.type === "ConfigService.ConfigChanged") {
    const before = state.config;
    state.config = { ...before, ...data };
    const reopened = before && !before.open && data.open;
    // A new rotation starts a new slot (a new code); a new quota changes the count on it.
    const newCode = data.codeRotationSeconds !== before?.codeRotationSeconds || data.drinksPerCode !== state.qr?.drinksPerCode;
    if (data.open && (reopened || newCode)) refreshQr();
  } else if (event.type === "Validator.NewOrder") {
    // A code stays redeemable for a grace period after the next one is on screen: count only this one's.
    if (typeof data.tokensLeft === "number" && state.qr && data.slot === state.qr.slot) {
      state.qr.tokensLeft = Math.min(state.qr.tokensLeft, data.tokensLeft);
    }
  } else {
    applyItem(data);
  }
  render();
}

/** A board item `{number, drink, displayName, state, since}`: onto its column, or off the board. */
function applyItem(item) {
  if (item.number === null || item.number === undefined) return;
  if (item.state === "queued" || item.state === "in_progress" || item.state === "completed") {
    state.orders.set(item.number, { ...item, since: item.since ?? new Date().toISOString() });
  } else {
    state.orders.delete(item.number);
  }
}

async function signIn(event) {
  event.preventDefault();
  state.signinNotice = null;
  const pin = event.target.elements.pin.value;
  try {
    await staffLogin(pin, { role: "display", shop: state.shop });
    state.signinError = null;
    await loadQr();
    startBoard();
  } catch (error) {
    state.signinError = errorText(error);
    render();
    $("#pin")?.focus();
  }
}

// ---------- rendering ----------

function render() {
  $("#shop-name").textContent = state.config?.name ?? "Spinpresso";
  renderConnection();
  const app = $("#app");
  if (state.screen === "loading") return patch(app, h("p", { class: "empty" }, t("common.loading")));
  if (state.screen === "signin") {
    const form = signInForm({ title: t("display.signinTitle"), notice: state.signinNotice && t(state.signinNotice), error: state.signinError, onSubmit: signIn });
    return patch(app, form);
  }
  patch(
    app,
    h(
      "div",
      { class: "board" },
      qrPanel(),
      ordersPanel("preparing", t("display.preparing"), preparing(), MAX_PREPARING),
      ordersPanel("ready", t("display.ready"), ready(), MAX_READY),
    ),
  );
  tick();
}

function renderConnection() {
  const conn = $("#conn");
  const shown = state.screen === "board";
  conn.hidden = !shown;
  conn.className = `conn conn-${state.connection}`;
  conn.textContent = t(`conn.${state.connection}`);
}

function qrPanel() {
  const panel = h("section", { class: "panel qr-panel", "aria-labelledby": "qr-title", "data-testid": "qr-panel" });
  const open = state.config?.open;
  if (state.error) panel.append(h("p", { class: "notice error", role: "alert" }, state.error));
  if (!open) {
    panel.append(
      h("h2", { id: "qr-title", class: "visually-hidden" }, t("display.closedTitle")),
      h("p", { class: "closed-sign", "data-testid": "closed" }, t("display.closed")),
      h("p", { class: "big-line" }, t("display.closedBody")),
    );
    return panel;
  }
  const qr = state.qr;
  if (!qr) {
    panel.append(h("h2", { id: "qr-title" }, t("common.loading")));
    return panel;
  }
  if (qr.tokensLeft <= 0) {
    panel.append(
      h("h2", { id: "qr-title" }, t("display.makingDrinks")),
      h("p", { class: "big-line", "data-testid": "used-up" }, t("display.newOrdersIn"), " ",
        h("span", { class: "countdown", "data-until": qr.slotEndsAt }, clock(secondsUntil(qr.slotEndsAt)))),
    );
    return panel;
  }
  const src = `${shopPath(state.shop, "/qr.svg")}?slot=${qr.slot}`;
  if (!qrImage || qrImage.dataset.src !== src) {
    qrImage = h("img", { src, alt: t("display.qrAlt"), "data-testid": "qr-image", dataset: { src, code: qr.code, url: qr.url } });
  }
  qrImage.alt = t("display.qrAlt");
  const ring = svg(
    "svg",
    { viewBox: "0 0 100 100", class: "ring", "aria-hidden": "true" },
    svg("circle", { class: "track", cx: 50, cy: 50, r: RING_RADIUS }),
    svg("circle", { class: "left", cx: 50, cy: 50, r: RING_RADIUS, "stroke-dasharray": RING_LENGTH, "stroke-dashoffset": 0 }),
  );
  panel.append(
    h("h2", { id: "qr-title" }, t("display.scanToOrder")),
    h("div", { class: "qr-wrap" }, ring, qrImage),
    h("p", { class: "big-line", "data-testid": "tokens-left" }, t("display.drinksLeft", { count: qr.tokensLeft })),
    h("p", { class: "small-line" }, t("display.nextCodeIn"), " ",
      h("span", { class: "countdown", "data-until": qr.slotEndsAt }, clock(secondsUntil(qr.slotEndsAt)))),
  );
  return panel;
}

function preparing() {
  return [...state.orders.values()].filter((o) => o.state !== "completed").sort((a, b) => a.number - b.number);
}

function ready() {
  const now = Date.now();
  return [...state.orders.values()]
    .filter((o) => o.state === "completed" && secondsSince(o.since, now) < READY_SECONDS)
    .sort((a, b) => Date.parse(b.since) - Date.parse(a.since));
}

function ordersPanel(kind, title, items, max) {
  const shown = items.slice(0, max);
  return h(
    "section",
    { class: `panel ${kind}`, "aria-labelledby": `${kind}-title`, "data-testid": kind },
    h("h2", { id: `${kind}-title` }, title),
    shown.length === 0
      ? h("p", { class: "empty" }, t(`display.${kind}Empty`))
      : h(
          "ol",
          { class: "tickets" },
          shown.map((item) =>
            h(
              "li",
              { class: "ticket", "data-number": item.number },
              h("span", { class: "num", "aria-label": t("common.orderNumber", { number: item.number }) }, item.number),
              h("span", { class: "drink" }, item.drink ?? ""),
              item.displayName ? h("span", { class: "who" }, item.displayName) : h("span", { class: "who" }, ""),
              h(
                "span",
                { class: "meta" },
                item.state === "in_progress" && h("span", { class: "making" }, t("display.making")),
                h("span", { "data-since": item.since }, age(secondsSince(item.since))),
              ),
            ),
          ),
        ),
    items.length > max && h("p", { class: "more" }, t("display.more", { count: items.length - max })),
  );
}

/** Every second: clocks, the ring, ready drinks leaving, and a new code when the slot ends. */
function tick() {
  if (state.screen !== "board") return;
  const now = Date.now();
  for (const element of document.querySelectorAll("[data-since]")) {
    element.textContent = age(secondsSince(element.dataset.since, now));
  }
  for (const element of document.querySelectorAll("[data-until]")) {
    element.textContent = clock(secondsUntil(element.dataset.until, now));
  }
  const qr = state.qr;
  const left = document.querySelector(".ring .left");
  if (qr && left) {
    const total = state.config?.codeRotationSeconds ?? 300;
    const fraction = Math.min(1, secondsUntil(qr.slotEndsAt, now) / total);
    left.setAttribute("stroke-dashoffset", String(RING_LENGTH * (1 - fraction)));
    left.classList.toggle("soon", fraction < 0.1);
  }
  if (qr && now >= Date.parse(qr.slotEndsAt) && !state.qrLoading && now - state.qrTriedAt > 2000) refreshQr();
  const readyCount = document.querySelectorAll(".ready .ticket").length;
  if (readyCount !== Math.min(MAX_READY, ready().length)) render();
}

main();
