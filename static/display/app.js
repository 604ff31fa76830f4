// The big screen: QR code with drinks left and a countdown ring, "Preparing" and "Ready" boards.
// State lives in `state`; `render()` draws it; `tick()` moves clocks every second.
import { api, shopFromUrl, shopPath, staffLogin, isAuthError } from "/shared/api.js";
import { LiveStream } from "/shared/sse.js";
import { onEveryEvent } from "/shared/events.js";
import { h, patch, $, clock, secondsSince, secondsUntil } from "/shared/dom.js";
import { initI18n, t, age, errorText, languagePicker, onLanguageChange } from "/shared/i18n.js";

const READY_SECONDS = 600; // ready drinks leave the board after 10 minutes
const MAX_PREPARING = 12;
const MAX_READY = 8;

const state = {
  shop: shopFromUrl(),
  screen: "loading", // loading | signin | board
  signinError: null,
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
    if (isAuthError(error)) {
      live?.stop();
      state.screen = "signin";
    } else {
      state.error = errorText(error);
    }
  }
  render();
}

function startBoard() {
  state.screen = "board";
  render();
  catchUp();
  live = new LiveStream(shopPath(state.shop, "/events/staff"), {
    onStatus: (status) => {
      const wasDown = state.connection === "reconnecting";
      state.connection = status;
      renderConnection();
      if (status === "live" && wasDown) catchUp();
    },
    onReset: catchUp,
  });
  onEveryEvent(live, onEvent);
  live.start();
}

function onEvent(event) {
  const data = event.data ?? {};
  if (event.type === "ConfigService.ConfigChanged") {
    const reopened = state.config && !state.config.open && data.open;
    state.config = { ...state.config, ...data };
    if (reopened || data.drinksPerCode !== state.qr?.drinksPerCode) loadQr().then(render, () => {});
  }
  // A code stays redeemable for a grace period after the next one is on screen: count only this one's.
  if (event.type === "Validator.NewOrder" && typeof data.tokensLeft === "number" && data.slot === state.qr?.slot) {
    state.qr.tokensLeft = Math.min(state.qr.tokensLeft, data.tokensLeft);
  }
  if (data.order) applyOrder(data.order);
  render();
}

function applyOrder(order) {
  if (order.number === null || order.number === undefined) return;
  if (order.state === "queued" || order.state === "in_progress") {
    state.orders.set(order.number, {
      number: order.number,
      drink: order.drink?.name ?? null,
      displayName: order.displayName,
      state: order.state,
      since: order.submittedAt,
    });
  } else if (order.state === "completed") {
    state.orders.set(order.number, {
      number: order.number,
      drink: order.drink?.name ?? null,
      displayName: order.displayName,
      state: "completed",
      since: order.finishedAt ?? new Date().toISOString(),
    });
  } else {
    state.orders.delete(order.number);
  }
}

async function signIn(event) {
  event.preventDefault();
  const pin = event.target.elements.pin.value;
  try {
    await staffLogin(pin);
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
  if (state.screen === "signin") return patch(app, signInForm());
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

function signInForm() {
  return h(
    "form",
    { class: "signin", onsubmit: signIn },
    h("h2", {}, t("display.signinTitle")),
    h("label", { for: "pin" }, t("signin.pin")),
    h("input", { id: "pin", name: "pin", type: "password", inputmode: "numeric", autocomplete: "current-password", required: true }),
    state.signinError && h("p", { class: "notice error", role: "alert" }, state.signinError),
    h("button", { type: "submit" }, t("signin.submit")),
  );
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
  const circumference = 2 * Math.PI * 47;
  const ring = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  ring.setAttribute("viewBox", "0 0 100 100");
  ring.setAttribute("class", "ring");
  ring.setAttribute("aria-hidden", "true");
  ring.innerHTML = `<circle class="track" cx="50" cy="50" r="47"/><circle class="left" cx="50" cy="50" r="47" stroke-dasharray="${circumference}" stroke-dashoffset="0"/>`;
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
    const circumference = 2 * Math.PI * 47;
    left.setAttribute("stroke-dashoffset", String(circumference * (1 - fraction)));
    left.classList.toggle("soon", fraction < 0.1);
  }
  if (qr && now >= Date.parse(qr.slotEndsAt) && !state.qrLoading && now - state.qrTriedAt > 2000) {
    loadQr().then(render, () => {});
  }
  const readyCount = document.querySelectorAll(".ready .ticket").length;
  if (readyCount !== Math.min(MAX_READY, ready().length)) render();
}

main();
