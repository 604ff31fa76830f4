// The customer's phone: redeem the QR code, pick a drink and its options, follow the order.
// One `state` object; `render()` draws the screen that follows from it.
import { api, ApiError, shopFromUrl, shopPath } from "/shared/api.js";
import { LiveStream } from "/shared/sse.js";
import { onEveryEvent } from "/shared/events.js";
import { h, patch, $, clock, secondsUntil, confirmDialog } from "/shared/dom.js";
import { initI18n, t, errorText, languagePicker, onLanguageChange, timeOfDay, language } from "/shared/i18n.js";
import { chime, unlockSound } from "/shared/sound.js";

const NAME_KEY = "spinpresso.displayName";
const OPEN_STATES = ["awaiting_drink", "queued", "in_progress"];
const RECENT_SECONDS = 30 * 60; // a finished order stays on screen this long after a reload
const REFUSALS = ["shop_closed", "code_invalid", "code_expired", "code_used_up", "shop_full", "customer_limit", "daily_limit"];

const params = new URLSearchParams(location.search);
const state = {
  shop: shopFromUrl(),
  code: params.get("code"),
  loading: true,
  fatal: null,
  config: null,
  order: null, // the order on screen
  history: [],
  refusal: null, // {code, text}
  busy: false,
  message: null, // an error next to the action that failed
  selection: { drinkId: null, options: {} },
  name: localStorage.getItem(NAME_KEY) ?? "",
  wait: null, // {queued, estimatedWaitSeconds, secondsPerOrder}
  connection: "connecting",
  celebrated: new Set(), // orders we already buzzed for
  journey: null, // {orderId, events: [{id, type, time, data}] | null, error} of the finished order on screen
};
let live = null;

async function main() {
  await initI18n();
  $("#lang").replaceWith(languagePicker());
  onLanguageChange(render);
  try {
    state.config = await api.get(shopPath(state.shop, "/config"));
    await loadHistory();
    const open = state.history.find((o) => OPEN_STATES.includes(o.state));
    const recent = state.history.find((o) => secondsSinceFinished(o) < RECENT_SECONDS);
    if (!state.code) state.order = open ?? recent ?? null;
    if (state.order?.state === "queued") loadWait();
    if (state.order) loadJourney(state.order);
    startLive();
  } catch (error) {
    state.fatal = errorText(error);
  }
  state.loading = false;
  render();
  setInterval(tick, 1000);
}

function secondsSinceFinished(order) {
  if (!order.finishedAt) return Infinity;
  return (Date.now() - Date.parse(order.finishedAt)) / 1000;
}

/** Our orders of today and yesterday in this shop (starts a session the first time). */
async function loadHistory() {
  let list;
  try {
    list = await api.get("/api/me/orders");
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    await api.post("/api/session");
    list = await api.get("/api/me/orders");
  }
  state.history = list.orders.filter((o) => o.shopId === state.shop);
}

async function loadWait() {
  try {
    state.wait = await api.get(shopPath(state.shop, "/wait"));
    render();
  } catch {
    /* the position alone is fine */
  }
}

function startLive() {
  live = new LiveStream(shopPath(state.shop, "/events/me"), {
    onStatus: (status) => {
      const wasDown = state.connection === "reconnecting";
      state.connection = status;
      renderConnection();
      if (status === "live" && wasDown) refreshOrder();
    },
    onReset: refreshOrder,
  });
  onEveryEvent(live, onEvent);
  live.start();
}

function onEvent(event, type) {
  const data = event.data ?? {};
  if (type === "ConfigService.ConfigChanged") {
    state.config = { ...state.config, ...data };
  } else if (type === "queue") {
    if (state.order && data.orderId === state.order.id) {
      state.order = { ...state.order, queuePosition: data.queuePosition };
      loadWait();
    }
  } else if (data.order && state.order && data.order.id === state.order.id) {
    setOrder(data.order);
  } else if (type === "OrderProcessor.orderFinished" && state.order && event.orderId === state.order.id) {
    loadJourney(state.order, { again: true }); // its last step
  }
  render();
}

async function refreshOrder() {
  if (!state.order) return;
  try {
    setOrder(await api.get(`/api/orders/${encodeURIComponent(state.order.id)}`));
  } catch {
    /* keep what we have; the stream will tell us */
  }
  render();
}

function setOrder(order) {
  const before = state.order?.state;
  state.order = order;
  if (before !== order.state) {
    announce(statusTitle(order));
    if (order.state === "queued") loadWait();
    if (order.state === "completed" && !state.celebrated.has(order.id)) {
      state.celebrated.add(order.id);
      navigator.vibrate?.([300, 150, 300, 150, 300]);
      chime();
    }
  }
  const index = state.history.findIndex((o) => o.id === order.id);
  if (index >= 0) state.history[index] = order;
  else state.history.unshift(order);
  loadJourney(order);
}

/** Once an order has ended, its journey: every step with its time (`again` re-reads it). */
async function loadJourney(order, { again = false } = {}) {
  if (OPEN_STATES.includes(order.state)) return;
  const known = state.journey?.orderId === order.id;
  if (known && !again && (state.journey.events || state.journey.loading)) return;
  if (known && state.journey.loading) {
    state.journey.again = true;
    return;
  }
  state.journey = { orderId: order.id, events: known ? state.journey.events : null, error: null, loading: true };
  try {
    const { events } = await api.get(`/api/orders/${encodeURIComponent(order.id)}/journey`);
    if (state.journey?.orderId !== order.id) return;
    state.journey.events = events;
  } catch (error) {
    if (state.journey?.orderId !== order.id) return;
    state.journey.error = errorText(error);
  }
  const repeat = state.journey.again;
  state.journey.loading = false;
  state.journey.again = false;
  render();
  if (repeat) loadJourney(order, { again: true });
}

function announce(text) {
  $("#live").textContent = text;
}

// ---------- actions ----------

async function start(event) {
  event.preventDefault();
  unlockSound();
  const name = event.target.elements.displayName.value.trim().slice(0, 24);
  state.name = name;
  localStorage.setItem(NAME_KEY, name);
  state.busy = true;
  state.refusal = null;
  render();
  try {
    const body = { code: state.code };
    if (name) body.displayName = name;
    const order = await api.post(shopPath(state.shop, "/orders"), body);
    // The code is used: a reload must resume this order, not redeem again.
    forgetCode();
    state.selection = { drinkId: null, options: {} };
    setOrder(order);
  } catch (error) {
    if (REFUSALS.includes(error.code)) {
      state.refusal = { code: error.code, text: errorText(error) };
      if (error.code === "shop_closed") state.config = { ...state.config, open: false };
      announce(state.refusal.text);
    } else {
      state.message = errorText(error);
    }
  } finally {
    state.busy = false;
    render();
  }
}

function forgetCode() {
  state.code = null;
  const url = new URL(location.href);
  url.searchParams.delete("code");
  history.replaceState(null, "", url);
}

async function submitDrink(event) {
  event.preventDefault();
  if (!canOrder()) return;
  state.busy = true;
  state.message = null;
  render();
  try {
    const order = await api.put(`/api/orders/${encodeURIComponent(state.order.id)}/drink`, {
      drinkId: state.selection.drinkId,
      options: state.selection.options,
    });
    setOrder(order);
  } catch (error) {
    state.message = errorText(error);
    if (error.code === "invalid_transition" || error.code === "order_timed_out") refreshOrder();
  } finally {
    state.busy = false;
    render();
    $("#status-title")?.focus();
  }
}

async function cancelOrder() {
  const sure = await confirmDialog({
    title: t("order.cancelTitle"),
    body: t("order.cancelBody"),
    yes: t("order.cancelYes"),
    no: t("order.cancelNo"),
  });
  if (!sure) return;
  state.busy = true;
  render();
  try {
    setOrder(await api.post(`/api/orders/${encodeURIComponent(state.order.id)}/cancel`));
  } catch (error) {
    state.message = errorText(error);
    refreshOrder();
  } finally {
    state.busy = false;
    render();
  }
}

function done() {
  state.order = null;
  state.message = null;
  render();
}

function showOrder(order) {
  state.order = order;
  state.refusal = null;
  forgetCode();
  loadJourney(order);
  render();
}

function chooseDrink(drink) {
  state.selection = { drinkId: drink.id, options: {} };
  state.message = null;
  render();
  $(`#group-${drink.modifierGroups?.[0]?.id}`)?.scrollIntoView?.({ block: "nearest" });
}

function chooseOption(groupId, optionId) {
  if (optionId) state.selection.options[groupId] = optionId;
  else delete state.selection.options[groupId];
  render();
}

function selectedDrink() {
  return state.config?.menu?.find((d) => d.id === state.selection.drinkId) ?? null;
}

function missingGroups() {
  const drink = selectedDrink();
  if (!drink) return [];
  return (drink.modifierGroups ?? []).filter((g) => g.required && !state.selection.options[g.id]);
}

function canOrder() {
  const drink = selectedDrink();
  return Boolean(drink && drink.available !== false && missingGroups().length === 0 && !state.busy);
}

// ---------- rendering ----------

function render() {
  $("#shop-name").textContent = state.config?.name ?? "Spinpresso";
  renderConnection();
  const app = $("#app");
  if (state.loading) return patch(app, h("p", {}, t("common.loading")));
  if (state.fatal) return patch(app, h("p", { class: "notice error", role: "alert" }, state.fatal));
  const order = state.order;
  let screen;
  if (order && order.state === "awaiting_drink") screen = menuScreen(order);
  else if (order) screen = statusScreen(order);
  else if (state.refusal) screen = refusedScreen();
  else if (state.code && !state.config?.open) screen = closedScreen();
  else if (state.code) screen = welcomeScreen();
  else screen = scanScreen();
  patch(app, screen, historySection());
}

function renderConnection() {
  const conn = $("#conn");
  conn.hidden = state.connection === "live" || state.loading;
  conn.className = `conn conn-${state.connection}`;
  conn.textContent = t(`conn.${state.connection}`);
}

function scanScreen() {
  return h(
    "section",
    { class: "screen center", "data-screen": "scan" },
    h("p", { class: "emoji", "aria-hidden": "true" }, "📷"),
    h("h2", {}, t("order.scanTitle")),
    h("p", { class: "big" }, t("order.scanBody")),
    state.config && !state.config.open && h("p", { class: "notice info" }, t("order.closedNow")),
  );
}

function closedScreen() {
  return h(
    "section",
    { class: "screen center", "data-screen": "closed" },
    h("p", { class: "emoji", "aria-hidden": "true" }, "🚪"),
    h("h2", { "data-testid": "refusal" }, t("error.shop_closed")),
    h("p", {}, t("order.closedBody")),
  );
}

function welcomeScreen() {
  const open = state.history.find((o) => OPEN_STATES.includes(o.state));
  return h(
    "form",
    { class: "screen", "data-screen": "welcome", onsubmit: start },
    h("h2", {}, t("order.welcomeTitle", { shop: state.config?.name ?? "Spinpresso" })),
    h("p", {}, t("order.welcomeBody", { minutes: Math.round((state.config?.customerTimeoutSeconds ?? 300) / 60) })),
    open &&
      h(
        "div",
        { class: "notice info" },
        h("p", {}, t("order.haveOpen", { number: open.number ?? "…" })),
        h("button", { type: "button", class: "secondary", onclick: () => showOrder(open) }, t("order.showMine")),
      ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "display-name" }, t("order.nameLabel")),
      h("input", { id: "display-name", name: "displayName", maxlength: 24, autocomplete: "nickname", value: state.name, "aria-describedby": "name-help" }),
      h("small", { id: "name-help" }, t("order.nameHelp")),
    ),
    state.message && h("p", { class: "notice error", role: "alert" }, state.message),
    h("button", { type: "submit", disabled: state.busy, "data-testid": "start" }, state.busy ? t("order.starting") : t("order.start")),
  );
}

function refusedScreen() {
  const { code, text } = state.refusal;
  const open = state.history.find((o) => OPEN_STATES.includes(o.state));
  const retry = ["shop_full", "shop_closed"].includes(code) && state.code;
  return h(
    "section",
    { class: "screen center", "data-screen": "refused", "data-code": code },
    h("p", { class: "emoji", "aria-hidden": "true" }, code === "shop_closed" ? "🚪" : "⏳"),
    h("h2", { role: "alert", "data-testid": "refusal" }, text),
    h("p", {}, t(`order.refusalHint.${code}`)),
    code === "customer_limit" && open && h("button", { onclick: () => showOrder(open) }, t("order.showMine")),
    retry && h("button", { class: "secondary", onclick: () => { state.refusal = null; render(); } }, t("order.tryAgain")),
  );
}

function menuScreen(order) {
  const drink = selectedDrink();
  const menu = state.config?.menu ?? [];
  const missing = missingGroups();
  return h(
    "form",
    { class: "screen", "data-screen": "menu", onsubmit: submitDrink },
    countdown(order),
    h("h2", { id: "menu-title" }, t("order.chooseDrink")),
    h(
      "ul",
      { class: "menu", "aria-labelledby": "menu-title" },
      menu.map((d) => {
        const unavailable = d.available === false;
        return h(
          "li",
          {},
          h(
            "button",
            {
              type: "button", class: "drink-card", "aria-pressed": String(d.id === state.selection.drinkId),
              disabled: unavailable, onclick: () => chooseDrink(d), "data-key": `drink-${d.id}`, "data-drink": d.id,
            },
            h("span", { class: "icon", "aria-hidden": "true" }, d.icon ?? "☕"),
            h("span", {}, d.name),
            unavailable && h("span", { class: "unavailable" }, t("order.unavailable")),
          ),
        );
      }),
    ),
    drink && (drink.modifierGroups ?? []).map((group) => optionGroup(group)),
    h(
      "div",
      { class: "basket card", "aria-live": "polite" },
      drink
        ? h("p", { class: "summary", "data-testid": "summary" }, summary(drink))
        : h("p", {}, t("order.pickFirst")),
      drink && missing.length > 0 && h("p", { class: "req" }, t("order.missing", { groups: missing.map((g) => g.name).join(", ") })),
      order.displayName && h("p", {}, t("order.forName", { name: order.displayName })),
    ),
    state.message && h("p", { class: "notice error", role: "alert", "data-testid": "message" }, state.message),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "secondary", onclick: cancelOrder, disabled: state.busy, "data-key": "cancel" }, t("order.cancel")),
      h("button", { type: "submit", disabled: !canOrder(), "data-key": "submit", "data-testid": "submit" }, state.busy ? t("order.sending") : t("order.submit")),
    ),
  );
}

function summary(drink) {
  const names = [];
  for (const group of drink.modifierGroups ?? []) {
    const option = group.options.find((o) => o.id === state.selection.options[group.id]);
    if (option) names.push(option.name);
  }
  return names.length ? `${drink.name} — ${names.join(", ")}` : drink.name;
}

function optionGroup(group) {
  const chosen = state.selection.options[group.id] ?? "";
  const name = `opt-${group.id}`;
  const choice = (value, label, disabled) =>
    h(
      "label",
      { class: "choice" },
      h("input", {
        type: "radio", name, value, checked: chosen === value, disabled,
        onchange: () => chooseOption(group.id, value), "data-key": `${name}-${value || "none"}`,
      }),
      h("span", {}, label),
    );
  return h(
    "fieldset",
    { id: `group-${group.id}`, "data-group": group.id },
    h("legend", {}, group.name, " ", group.required ? h("span", { class: "req" }, t("order.required")) : null),
    h(
      "div",
      { class: "choices" },
      !group.required && choice("", t("order.none"), false),
      group.options.map((o) =>
        choice(o.id, o.available === false ? `${o.name} (${t("order.unavailableShort")})` : o.name, o.available === false),
      ),
    ),
  );
}

function countdown(order) {
  const total = state.config?.customerTimeoutSeconds ?? 300;
  const left = secondsUntil(order.deadline);
  return h(
    "div",
    { class: `countdown ${left < 60 ? "low" : ""}`, "data-testid": "countdown" },
    h("span", { id: "countdown-label" }, t("order.timeLeft")),
    h("progress", { max: total, value: Math.round(left), "aria-labelledby": "countdown-label", "data-deadline": order.deadline }),
    h("span", { class: "clock", "data-until": order.deadline }, clock(left)),
  );
}

const STEPS = ["queued", "in_progress", "completed"];

function statusTitle(order) {
  switch (order.state) {
    case "awaiting_drink":
      return t("order.chooseDrink");
    case "queued":
      return t("order.status.queued");
    case "in_progress":
      return t("order.status.in_progress");
    case "completed":
      return t("order.status.completed");
    case "cancelled":
      return t(`order.status.cancelled.${order.cancelledBy ?? "customer"}`);
    case "timed_out":
      return t(`order.status.timed_out.${order.timeoutCause ?? "customer"}`);
    default:
      return order.state;
  }
}

function statusScreen(order) {
  const finished = !OPEN_STATES.includes(order.state);
  const bad = order.state === "cancelled" || order.state === "timed_out";
  const step = STEPS.indexOf(order.state);
  const position = order.queuePosition;
  const perOrder = state.wait?.secondsPerOrder;
  return h(
    "section",
    { class: "screen", "data-screen": "status", "data-state": order.state },
    h(
      "div",
      { class: `card status-card ${order.state === "completed" ? "ready" : ""} ${bad ? "bad" : ""}` },
      order.number !== null && h("p", { class: "huge", "data-testid": "order-number" }, t("order.number", { number: order.number })),
      h("h2", { id: "status-title", tabindex: "-1", "data-testid": "status" }, statusTitle(order)),
      order.state === "completed" && h("p", { class: "big" }, t("order.readyBody")),
      order.state === "queued" && position && h("p", { class: "big", "data-testid": "position" }, t("order.position", { count: position })),
      order.state === "queued" && position && perOrder && h("p", {}, t("order.estimate", { minutes: Math.max(1, Math.round((position * perOrder) / 60)) })),
      !finished && h("p", {}, t("order.lookOut")),
      order.drink && h("p", {}, summaryOf(order)),
    ),
    !bad && h(
      "ol",
      { class: "steps", "aria-label": t("order.progress") },
      STEPS.map((s, i) =>
        h("li", { class: i < step ? "done" : i === step ? "now" : "", "aria-current": i === step ? "step" : null }, t(`order.step.${s}`)),
      ),
    ),
    finished && journeySection(order),
    state.message && h("p", { class: "notice error", role: "alert" }, state.message),
    h(
      "div",
      { class: "actions" },
      !finished && h("button", { class: "danger", onclick: cancelOrder, disabled: state.busy, "data-key": "cancel" }, t("order.cancel")),
      finished && h("button", { onclick: done, "data-key": "done" }, t("order.done")),
    ),
  );
}

/** The finished order's journey as a timeline: each step's time and what happened, in words. */
function journeySection(order) {
  const journey = state.journey?.orderId === order.id ? state.journey : null;
  let body;
  if (journey?.events) {
    body = h(
      "ol",
      { class: "journey" },
      journey.events.map((step) =>
        h(
          "li",
          { "data-type": step.type },
          h("time", { datetime: step.time }, stepTime(step.time)),
          h("span", {}, stepText(step, order)),
        ),
      ),
    );
  } else if (journey?.error) {
    body = h("p", { class: "notice error" }, t("order.journey.error"));
  } else {
    body = h("p", {}, t("order.journey.loading"));
  }
  return h(
    "section",
    { class: "card journey-card", "aria-labelledby": "journey-title", "data-testid": "journey" },
    h("h3", { id: "journey-title" }, t("order.journey.title")),
    body,
  );
}

function stepTime(iso) {
  return new Intl.DateTimeFormat(language(), { hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(iso));
}

function stepText(step, order) {
  const data = step.data ?? {};
  const kind = step.type.split(".").pop();
  switch (kind) {
    case "WaitingCompletion":
      return t("order.journey.WaitingCompletion", { drink: order.drink ? summaryOf(order) : "…", number: order.number ?? "…" });
    case "MakeOrder":
      // `baristaId: null` is a release; a step rebuilt from the order's timestamps has no data.
      return "baristaId" in data && data.baristaId === null ? t("order.journey.released") : t("order.journey.MakeOrder");
    case "OrderCancelled":
      return t(`order.journey.cancelled.${data.cancelledBy ?? order.cancelledBy ?? "customer"}`);
    case "OrderTimeOut":
      return t(`order.journey.timedOut.${data.cause ?? order.timeoutCause ?? "customer"}`);
    case "NewOrder":
    case "WorkflowStarted":
    case "OrderCompleted":
    case "orderFinished":
      return t(`order.journey.${kind}`);
    default:
      return t("order.journey.other", { type: step.type });
  }
}

function summaryOf(order) {
  const options = order.drink.options?.map((o) => o.name) ?? [];
  return options.length ? `${order.drink.name} — ${options.join(", ")}` : order.drink.name;
}

function historySection() {
  const past = state.history.filter((o) => o.id !== state.order?.id && o.drink);
  if (past.length === 0) return null;
  return h(
    "details",
    { class: "history card" },
    h("summary", {}, t("order.history", { count: past.length })),
    h(
      "ul",
      {},
      past.map((o) =>
        h(
          "li",
          {},
          h("strong", {}, o.number !== null ? `#${o.number} ` : "", summaryOf(o)),
          h("div", { class: "when" }, timeOfDay(o.createdAt), " · ", statusTitle(o)),
        ),
      ),
    ),
  );
}

/** Every second: the countdown; at zero, ask the server (it times the order out). */
function tick() {
  const order = state.order;
  if (!order || order.state !== "awaiting_drink") return;
  const left = secondsUntil(order.deadline);
  const clockEl = document.querySelector(".countdown .clock");
  if (clockEl) clockEl.textContent = clock(left);
  const bar = document.querySelector(".countdown progress");
  if (bar) bar.value = Math.round(left);
  document.querySelector(".countdown")?.classList.toggle("low", left < 60);
  if (left <= 0 && !state.busy && !state.expiring) {
    state.expiring = true;
    refreshOrder().finally(() => {
      setTimeout(() => (state.expiring = false), 2000);
    });
  }
}

main();
