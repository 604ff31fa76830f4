// The barista's tablet: New · Making · Ready lanes, claim/release/complete/cancel with
// optimistic updates (rolled back with a message when the server refuses), open/close, chime.
import { api, shopFromUrl, shopPath, staffLogin, rememberedStaff, forgetStaff, roleCovers, isAuthError } from "/shared/api.js";
import { LiveStream } from "/shared/sse.js";
import { onEveryEvent } from "/shared/events.js";
import { h, patch, $, secondsSince, confirmDialog } from "/shared/dom.js";
import { initI18n, t, age, errorText, languagePicker, onLanguageChange } from "/shared/i18n.js";
import { chime, unlockSound } from "/shared/sound.js";
import { signInForm, signOut } from "/shared/signin.js";

const SOUND_KEY = "spinpresso.barista.sound";
const READY_SECONDS = 15 * 60;

const state = {
  shop: shopFromUrl(),
  screen: "loading", // loading | signin | board
  me: null, // {role, staffId}
  signinError: null,
  signinNotice: null, // an i18n key, e.g. "signin.signedOut"
  signingOut: false,
  config: null,
  orders: new Map(), // id → order
  pending: new Set(), // ids with a request in flight
  switching: false,
  sound: localStorage.getItem(SOUND_KEY) !== "off",
  connection: "connecting",
  message: null, // {kind, text}
};
let live = null;
let messageTimer = null;
let ticking = null;

async function main() {
  await initI18n();
  $("#lang").replaceWith(languagePicker());
  onLanguageChange(render);
  state.me = rememberedStaff();
  if (!state.me || !roleCovers(state.me.role, "barista")) {
    state.screen = "signin";
    return render();
  }
  await start();
}

async function start() {
  try {
    await load();
  } catch (error) {
    if (isAuthError(error)) {
      signInAgain();
      return render();
    }
    say("error", errorText(error));
  }
  ticking ??= setInterval(tick, 1000);
  state.screen = "board";
  render();
  live = new LiveStream(shopPath(state.shop, "/events/staff"), {
    onStatus: (status) => {
      const wasDown = state.connection === "reconnecting";
      state.connection = status;
      renderConnection();
      if (status === "live" && wasDown) reload();
    },
    onReset: reload,
  });
  onEveryEvent(live, onEvent);
  live.start();
}

async function load() {
  const [config, list] = await Promise.all([
    api.get(shopPath(state.shop, "/config")),
    api.get(shopPath(state.shop, "/orders?state=queued,in_progress,completed")),
  ]);
  state.config = config;
  state.orders = new Map(list.orders.map((order) => [order.id, order]));
}

async function reload() {
  try {
    await load();
  } catch (error) {
    if (isAuthError(error)) signInAgain();
    else say("error", errorText(error));
  }
  render();
}

/** The server no longer accepts this sign-in (expired, signed out elsewhere, another shop's). */
function signInAgain() {
  live?.stop();
  live = null;
  forgetStaff();
  state.me = null;
  state.screen = "signin";
  state.signinNotice = "signin.ended";
}

function onEvent(event) {
  const data = event.data ?? {};
  if (event.type === "ConfigService.ConfigChanged") {
    state.config = { ...state.config, ...data };
  }
  if (data.order) {
    const known = state.orders.get(data.order.id);
    upsert(data.order);
    if (event.type === "OrderManager.WaitingCompletion" && !known && state.sound) chime();
  }
  render();
}

function upsert(order) {
  if (order.state === "cancelled" || order.state === "timed_out" || order.state === "awaiting_drink") {
    state.orders.delete(order.id);
  } else {
    state.orders.set(order.id, order);
  }
}

// ---------- actions ----------

const OPTIMISTIC = {
  claim: (o) => ({ ...o, state: "in_progress", baristaId: state.me.staffId, claimedAt: new Date().toISOString() }),
  release: (o) => ({ ...o, state: "queued", baristaId: null, claimedAt: null }),
  complete: (o) => ({ ...o, state: "completed", finishedAt: new Date().toISOString() }),
  cancel: (o) => ({ ...o, state: "cancelled" }),
};

async function act(action, order) {
  if (state.pending.has(order.id)) return;
  if (action === "cancel") {
    const sure = await confirmDialog({
      title: t("barista.cancelTitle", { number: order.number }),
      body: t("barista.cancelBody", { number: order.number, drink: order.drink?.name ?? "" }),
      yes: t("barista.cancelYes"),
      no: t("barista.cancelNo"),
    });
    if (!sure) return;
  }
  const before = state.orders.get(order.id) ?? order;
  state.pending.add(order.id);
  upsert(OPTIMISTIC[action](before));
  render();
  try {
    const after = await api.post(`/api/orders/${encodeURIComponent(order.id)}/${action}`);
    upsert(after);
    if (action === "cancel") say("ok", t("barista.cancelled", { number: order.number }));
  } catch (error) {
    if (isAuthError(error)) signInAgain();
    // Roll back, then ask the server what is true now.
    state.orders.set(before.id, before);
    say("error", t("barista.actionFailed", { number: order.number, reason: errorText(error) }));
    try {
      upsert(await api.get(`/api/orders/${encodeURIComponent(order.id)}`));
    } catch {
      /* keep the rolled-back view */
    }
  } finally {
    state.pending.delete(order.id);
    render();
  }
}

async function toggleOpen() {
  if (state.switching) return;
  const open = !state.config?.open;
  state.switching = true;
  render();
  try {
    state.config = { ...state.config, ...(await api.post(shopPath(state.shop, open ? "/open" : "/close"))) };
  } catch (error) {
    say("error", errorText(error));
  } finally {
    state.switching = false;
    render();
  }
}

function toggleSound() {
  state.sound = !state.sound;
  localStorage.setItem(SOUND_KEY, state.sound ? "on" : "off");
  if (state.sound) {
    unlockSound();
    chime();
  }
  render();
}

async function signOutClicked() {
  const forget = () => {
    live?.stop();
    live = null;
    state.me = null;
    state.orders = new Map();
  };
  if (await signOut(state, { say, redraw: renderControls, forget })) {
    render();
    $("#pin")?.focus();
  }
}

async function signIn(event) {
  event.preventDefault();
  state.signinNotice = null;
  unlockSound();
  try {
    const who = await staffLogin(event.target.elements.pin.value, { role: "barista" });
    if (!roleCovers(who.role, "barista")) {
      state.signinError = t("signin.wrongRole");
      return render();
    }
    state.me = who;
    state.signinError = null;
    await start();
  } catch (error) {
    state.signinError = errorText(error);
    render();
    $("#pin")?.focus();
  }
}

function say(kind, text) {
  state.message = { kind, text };
  clearTimeout(messageTimer);
  messageTimer = setTimeout(() => {
    state.message = null;
    renderMessage();
  }, 8000);
  renderMessage();
}

// ---------- rendering ----------

function render() {
  $("#shop-name").textContent = state.config?.name ?? state.shop;
  renderConnection();
  renderMessage();
  renderControls();
  const app = $("#app");
  if (state.screen === "loading") return patch(app, h("p", { class: "empty" }, t("common.loading")));
  if (state.screen === "signin") {
    const form = signInForm({ title: t("barista.signinTitle"), notice: state.signinNotice && t(state.signinNotice), error: state.signinError, onSubmit: signIn });
    return patch(app, form);
  }
  const all = [...state.orders.values()];
  const byNumber = (a, b) => (a.number ?? 0) - (b.number ?? 0);
  const fresh = all.filter((o) => o.state === "queued").sort(byNumber);
  const making = all
    .filter((o) => o.state === "in_progress")
    .sort((a, b) => Number(b.baristaId === state.me.staffId) - Number(a.baristaId === state.me.staffId) || byNumber(a, b));
  const done = all
    .filter((o) => o.state === "completed" && secondsSince(o.finishedAt) < READY_SECONDS)
    .sort((a, b) => Date.parse(b.finishedAt) - Date.parse(a.finishedAt));
  patch(
    app,
    h(
      "div",
      { class: "lanes" },
      lane("new", t("barista.laneNew"), fresh),
      lane("making", t("barista.laneMaking"), making),
      lane("ready", t("barista.laneReady"), done),
    ),
  );
}

function renderConnection() {
  const conn = $("#conn");
  conn.hidden = state.screen !== "board";
  conn.className = `conn conn-${state.connection}`;
  conn.textContent = t(`conn.${state.connection}`);
}

function renderMessage() {
  const area = $("#message");
  if (!state.message) return area.replaceChildren();
  area.replaceChildren(
    h("p", { class: `notice ${state.message.kind}`, "data-testid": "message" }, state.message.text),
  );
}

function renderControls() {
  const controls = $("#controls");
  if (state.screen !== "board") return patch(controls);
  const open = Boolean(state.config?.open);
  patch(
    controls,
    h(
      "button",
      {
        class: "switch", role: "switch", "aria-checked": String(open), onclick: toggleOpen,
        disabled: state.switching, "data-key": "open-switch", "data-testid": "open-switch",
      },
      open ? t("barista.shopOpen") : t("barista.shopClosed"),
    ),
    h(
      "button",
      { class: "secondary", "aria-pressed": String(state.sound), onclick: toggleSound, "data-key": "sound" },
      state.sound ? t("barista.soundOn") : t("barista.soundOff"),
    ),
    h(
      "button",
      { class: "secondary", onclick: signOutClicked, disabled: state.signingOut, "data-key": "signout", "data-testid": "sign-out" },
      t("signin.signOut"),
    ),
  );
}

function lane(kind, title, orders) {
  return h(
    "section",
    { class: "lane", "aria-labelledby": `lane-${kind}`, "data-testid": `lane-${kind}` },
    h("h2", { id: `lane-${kind}` }, title, h("span", { class: "count" }, t("barista.count", { count: orders.length }))),
    orders.length === 0
      ? h("p", { class: "empty" }, t(`barista.${kind}Empty`))
      : h("ol", {}, orders.map((order) => card(kind, order))),
  );
}

function ageClass(seconds) {
  if (seconds < 120) return "green";
  if (seconds < 300) return "amber";
  return "red";
}

function card(kind, order) {
  const mine = order.baristaId === state.me.staffId;
  const pending = state.pending.has(order.id);
  const since = kind === "ready" ? order.finishedAt : order.submittedAt;
  const seconds = secondsSince(since);
  const colour = ageClass(seconds);
  const classes = ["order", kind === "ready" ? "done" : `age-${colour}`];
  if (kind === "making" && !mine) classes.push("others");
  if (pending) classes.push("pending");
  const key = (action) => `${order.id}:${action}`;
  const button = (action, label, style) =>
    h("button", { class: style, onclick: () => act(action, order), disabled: pending, "data-key": key(action), "data-action": action }, label);
  let actions = null;
  if (kind === "new") {
    actions = [button("cancel", t("barista.cancel"), "danger"), button("claim", t("barista.claim"), "ok")];
  } else if (kind === "making" && mine) {
    actions = [
      button("cancel", t("barista.cancel"), "danger"),
      button("release", t("barista.release"), "secondary"),
      button("complete", t("barista.complete"), "ok"),
    ];
  }
  return h(
    "li",
    { class: classes.join(" "), "data-order-id": order.id, "data-number": order.number, "aria-busy": pending ? "true" : null },
    h(
      "div",
      { class: "head" },
      h("span", { class: "num" }, `#${order.number}`),
      h("span", { class: "drink" }, order.drink?.name ?? ""),
      order.robot && h("span", { class: "tag" }, t("barista.robot")),
    ),
    order.drink?.options?.length > 0 && h("ul", { class: "opts", "aria-label": t("barista.options") }, order.drink.options.map((o) => h("li", {}, o.name))),
    order.displayName && h("div", { class: "who" }, t("barista.for", { name: order.displayName })),
    h(
      "div",
      {},
      h(
        "span",
        { class: "age", "data-since": since, "data-kind": kind },
        ageText(kind, seconds),
      ),
    ),
    kind === "making" && !mine && h("div", { class: "claimed-other" }, t("barista.claimedByOther")),
    actions && h("div", { class: "actions" }, actions),
  );
}

function ageText(kind, seconds) {
  if (kind === "ready") return t("barista.readyAge", { age: age(seconds) });
  return t(`barista.wait.${ageClass(seconds)}`, { age: age(seconds) });
}

/** Every second: ages, their colours, and recent drinks leaving the Ready lane. */
function tick() {
  if (state.screen !== "board") return;
  let stale = false;
  for (const element of document.querySelectorAll("[data-since]")) {
    const seconds = secondsSince(element.dataset.since);
    const kind = element.dataset.kind;
    element.textContent = ageText(kind, seconds);
    const card = element.closest(".order");
    if (kind !== "ready" && card && !card.classList.contains(`age-${ageClass(seconds)}`)) {
      card.classList.remove("age-green", "age-amber", "age-red");
      card.classList.add(`age-${ageClass(seconds)}`);
    }
    if (kind === "ready" && seconds >= READY_SECONDS) stale = true;
  }
  if (stale) render();
}

main();
