// The operator's page: shops, open/close, today's figures and charts (live), the order robot,
// settings and menu. One `state` object; `render()` draws everything, `renderDashboard()` only the
// live parts (so a live update never throws away what the operator is typing in a form).
import { api, shopPath, staffLogin, rememberedStaff, forgetStaff, isAuthError } from "/shared/api.js";
import { LiveStream } from "/shared/sse.js";
import { onEveryEvent } from "/shared/events.js";
import { h, svg, patch, $, clock } from "/shared/dom.js";
import { initI18n, t, errorText, languagePicker, onLanguageChange, language } from "/shared/i18n.js";
import { signInForm, signOut } from "/shared/signin.js";

/** The dashboard re-reads the figures at most this often while events stream in. */
const REFRESH_MS = 1000;

const FIELDS = [
  ["name", "text"],
  ["drinksPerCode", "number"],
  ["codeRotationSeconds", "number"],
  ["codeGraceSeconds", "number"],
  ["maxOpenOrders", "number"],
  ["maxOpenOrdersPerCustomer", "number"],
  ["maxDrinksPerCustomerPerDay", "number"],
  ["customerTimeoutSeconds", "number"],
  ["baristaTimeoutSeconds", "number"],
  ["utcOffsetMinutes", "number"],
  ["dayStartsAt", "text"],
  ["languages", "text"],
];

const state = {
  screen: "loading", // loading | signin | main
  signinError: null,
  signinNotice: null, // an i18n key, e.g. "signin.signedOut"
  signingOut: false,
  shops: [],
  selected: new URLSearchParams(location.search).get("shop") ?? "main",
  config: null,
  configError: null, // {field, text}
  menuText: "",
  menuError: null,
  createError: null,
  busy: false,
  message: null,
  connection: "idle", // of the staff stream that keeps the dashboard live
  dash: {
    today: null, // the shop's business day, as the server counts it
    day: null, // the day on screen (YYYY-MM-DD)
    metrics: null,
    error: null,
    seq: 0, // answers to older requests are dropped
  },
  robot: null, // {running, ordersPerMinute, baristaDelaySeconds, cancelProbability, startedMs, untilMs, startedOrders}
  robotError: null,
  robotForm: { ordersPerMinute: "30", minutes: "10", delayMin: "5", delayMax: "20", cancelPercent: "10" },
};
let live = null;
let refreshTimer = null;
let ticking = null;

async function main() {
  await initI18n();
  $("#lang").replaceWith(languagePicker());
  onLanguageChange(render);
  const me = rememberedStaff();
  if (!me || me.role !== "admin") {
    state.screen = "signin";
    return render();
  }
  await loadAll();
}

async function loadAll() {
  try {
    state.shops = (await api.get("/api/shops")).shops;
    if (!state.shops.some((s) => s.shopId === state.selected)) state.selected = state.shops[0]?.shopId ?? null;
    await loadShop();
    state.screen = "main";
    ticking ??= setInterval(tick, 1000);
  } catch (error) {
    if (isAuthError(error)) {
      signInAgain();
    } else {
      say("error", errorText(error));
    }
  }
  render();
}

async function loadShop() {
  if (!state.selected) return;
  state.config = await api.get(shopPath(state.selected, "/config"));
  state.menuText = JSON.stringify(state.config.menu, null, 2);
  state.configError = null;
  state.menuError = null;
  state.dash = { today: null, day: null, metrics: null, error: null, seq: state.dash.seq + 1 };
  state.robot = null;
  state.robotError = null;
  await Promise.all([loadMetrics(null), loadRobot()]);
  startLive();
}

// ---------- dashboard ----------

/** The figures of `day`, or of today when `day` is null (which also tells us what today is). */
async function loadMetrics(day) {
  const shop = state.selected;
  const seq = ++state.dash.seq;
  try {
    const metrics = await api.get(shopPath(shop, day ? `/metrics?day=${encodeURIComponent(day)}` : "/metrics"));
    if (seq !== state.dash.seq || shop !== state.selected) return; // the operator moved on
    if (!day) state.dash.today = metrics.day;
    state.dash.day = metrics.day;
    state.dash.metrics = metrics;
    state.dash.error = null;
  } catch (error) {
    if (seq !== state.dash.seq) return;
    if (isAuthError(error) && state.screen === "main") return signInAgain();
    state.dash.error = errorText(error);
  }
}

async function loadRobot() {
  const shop = state.selected;
  try {
    const robot = await api.get(shopPath(shop, "/robot"));
    if (shop === state.selected) {
      state.robot = robot;
      state.robotError = null;
    }
  } catch (error) {
    if (isAuthError(error) && state.screen === "main") return signInAgain();
    state.robotError = errorText(error);
  }
}

function showingToday() {
  return state.dash.day !== null && state.dash.day === state.dash.today;
}

async function chooseDay(value) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return;
  state.dash.day = value;
  await loadMetrics(value === state.dash.today ? null : value);
  renderDashboard({ controls: true });
}

/** Keeps the dashboard live: every order event re-reads the figures (at most once a second). */
function startLive() {
  live?.stop();
  state.connection = "connecting";
  live = new LiveStream(shopPath(state.selected, "/events/staff"), {
    onStatus: (status) => {
      const wasDown = state.connection === "reconnecting";
      state.connection = status;
      renderLiveStatus();
      if (status === "live" && wasDown) scheduleRefresh();
    },
    onReset: scheduleRefresh,
  });
  onEveryEvent(live, (event, type) => {
    if (type === "ConfigService.ConfigChanged") {
      // New hour labels or drink names; the settings form keeps what the operator is typing.
      state.config = { ...state.config, ...event.data };
      renderDashboard();
    } else {
      scheduleRefresh();
    }
  });
  live.start();
}

function stopLive() {
  live?.stop();
  live = null;
  state.connection = "idle";
}

function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    const day = state.dash.day;
    await Promise.all([showingToday() ? loadMetrics(null) : null, loadRobot()]);
    // At the end of the business day "today" moves on, and the day picker with it.
    if (state.screen === "main") renderDashboard({ controls: state.dash.day !== day });
  }, REFRESH_MS);
}

/** Every second: notice the robot's run ending even when no event says so. */
function tick() {
  const robot = state.robot;
  if (state.screen === "main" && robot?.running && Date.now() > robot.untilMs + 1500 && !state.robotChecking) {
    state.robotChecking = true;
    loadRobot().finally(() => {
      state.robotChecking = false;
      renderDashboard();
    });
  }
}

async function startRobot(event) {
  event.preventDefault();
  const form = state.robotForm;
  const numbers = [form.ordersPerMinute, form.minutes, form.delayMin, form.delayMax, form.cancelPercent].map((v) => Number(String(v).trim() || NaN));
  if (numbers.some((n) => !Number.isFinite(n))) {
    state.robotError = t("admin.notANumber");
    return renderDashboard();
  }
  const [ordersPerMinute, minutes, delayMin, delayMax, cancelPercent] = numbers;
  try {
    state.robot = await api.post(shopPath(state.selected, "/robot"), {
      ordersPerMinute: Math.round(ordersPerMinute),
      durationSeconds: Math.round(minutes * 60),
      baristaDelaySeconds: [Math.round(delayMin), Math.round(delayMax)],
      cancelProbability: cancelPercent / 100,
    });
    state.robotError = null;
    say("ok", t("admin.robot.started"));
  } catch (error) {
    state.robotError = errorText(error);
  }
  renderDashboard();
}

async function stopRobot() {
  try {
    state.robot = await api.delete(shopPath(state.selected, "/robot"));
    state.robotError = null;
    say("ok", t("admin.robot.stopped"));
  } catch (error) {
    state.robotError = errorText(error);
  }
  renderDashboard();
  $("[data-key=robot-start]")?.focus(); // the stop button is disabled now
}

async function selectShop(shopId) {
  state.selected = shopId;
  const url = new URL(location.href);
  url.searchParams.set("shop", shopId);
  history.replaceState(null, "", url);
  try {
    await loadShop();
  } catch (error) {
    say("error", errorText(error));
  }
  render();
  $("#config-title")?.focus();
}

async function signIn(event) {
  event.preventDefault();
  state.signinNotice = null;
  try {
    const who = await staffLogin(event.target.elements.pin.value, { role: "admin" });
    if (who.role !== "admin") {
      state.signinError = t("signin.wrongRole");
      return render();
    }
    state.signinError = null;
    await loadAll();
  } catch (error) {
    state.signinError = errorText(error);
    render();
    $("#pin")?.focus();
  }
}

/** The server no longer accepts this sign-in (expired, or signed out elsewhere): ask for the PIN. */
function signInAgain() {
  forgetStaff();
  stopLive();
  state.screen = "signin";
  state.signinNotice = "signin.ended";
  render();
}

async function signOutClicked() {
  if (await signOut(state, { say, redraw: render, forget: stopLive })) {
    render();
    $("#pin")?.focus();
  }
}

async function createShop(event) {
  event.preventDefault();
  const form = event.target;
  const shopId = form.elements.shopId.value.trim();
  const name = form.elements.shopName.value.trim();
  try {
    await api.post("/api/shops", { shopId, name });
    state.createError = null;
    state.shops = (await api.get("/api/shops")).shops;
    say("ok", t("admin.created", { shop: shopId }));
    await selectShop(shopId);
  } catch (error) {
    state.createError = errorText(error);
    render();
  }
}

async function saveConfig(event) {
  event.preventDefault();
  const form = event.target;
  const update = {};
  for (const [field, kind] of FIELDS) {
    const raw = form.elements[field].value.trim();
    let value = kind === "number" ? Number(raw) : raw;
    if (field === "languages") value = raw.split(",").map((s) => s.trim()).filter(Boolean);
    if (kind === "number" && (raw === "" || !Number.isFinite(value))) {
      state.configError = { field, text: t("admin.notANumber") };
      return render();
    }
    if (JSON.stringify(value) !== JSON.stringify(state.config[field])) update[field] = value;
  }
  if (Object.keys(update).length === 0) return say("info", t("admin.nothingChanged"));
  try {
    const config = await api.put(shopPath(state.selected, "/config"), update);
    state.config = { ...state.config, ...config };
    state.configError = null;
    say("ok", t("admin.saved"));
  } catch (error) {
    const field = FIELDS.map(([f]) => f).find((f) => error.message?.includes(f)) ?? null;
    state.configError = { field, text: errorText(error) };
  }
  render();
}

async function saveMenu(event) {
  event.preventDefault();
  const text = event.target.elements.menu.value;
  state.menuText = text;
  let menu;
  try {
    menu = JSON.parse(text);
  } catch (error) {
    state.menuError = t("admin.menuNotJson", { reason: error.message });
    return render();
  }
  try {
    const config = await api.put(shopPath(state.selected, "/menu"), { menu });
    state.config = { ...state.config, ...config };
    state.menuText = JSON.stringify(state.config.menu ?? menu, null, 2);
    state.menuError = null;
    say("ok", t("admin.menuSaved"));
  } catch (error) {
    state.menuError = errorText(error);
  }
  render();
}

async function toggleOpen() {
  const open = !state.config.open;
  try {
    const config = await api.post(shopPath(state.selected, open ? "/open" : "/close"));
    state.config = { ...state.config, ...config };
    const shop = state.shops.find((s) => s.shopId === state.selected);
    if (shop) shop.open = state.config.open;
  } catch (error) {
    say("error", errorText(error));
  }
  render();
}

function say(kind, text) {
  state.message = { kind, text };
  renderMessage();
}

// ---------- rendering ----------

function render() {
  renderMessage();
  const signOutButton = h(
    "button",
    { class: "secondary", onclick: signOutClicked, disabled: state.signingOut, "data-testid": "sign-out" },
    t("signin.signOut"),
  );
  patch($("#controls"), state.screen === "main" && signOutButton);
  const app = $("#app");
  if (state.screen === "loading") return patch(app, h("p", {}, t("common.loading")));
  if (state.screen === "signin") {
    const form = signInForm({ title: t("admin.signinTitle"), notice: state.signinNotice && t(state.signinNotice), error: state.signinError, onSubmit: signIn });
    return patch(app, form);
  }
  patch(app, shopList(), detail());
}

function renderMessage() {
  const area = $("#message");
  if (!state.message) return area.replaceChildren();
  area.replaceChildren(h("p", { class: `notice ${state.message.kind}`, "data-testid": "message" }, state.message.text));
}

function shopList() {
  return h(
    "nav",
    { class: "card", "aria-labelledby": "shops-title" },
    h("h2", { id: "shops-title" }, t("admin.shops")),
    h(
      "ul",
      { class: "shops" },
      state.shops.map((shop) =>
        h(
          "li",
          {},
          h(
            "button",
            { onclick: () => selectShop(shop.shopId), "aria-current": String(shop.shopId === state.selected), "data-key": `shop-${shop.shopId}` },
            h("span", {}, shop.name, " ", h("small", {}, `(${shop.shopId})`)),
            h("span", { class: `pill ${shop.open ? "open" : "closed"}` }, shop.open ? t("admin.open") : t("admin.closed")),
          ),
        ),
      ),
    ),
    h(
      "form",
      { onsubmit: createShop, class: "detail", "aria-labelledby": "create-title" },
      h("h3", { id: "create-title" }, t("admin.createTitle")),
      h("div", { class: "field" }, h("label", { for: "new-id" }, t("admin.shopId")),
        h("input", { id: "new-id", name: "shopId", required: true, pattern: "[a-z0-9][a-z0-9-]{0,30}[a-z0-9]?", "aria-describedby": "new-id-help" }),
        h("small", { id: "new-id-help" }, t("admin.shopIdHelp"))),
      h("div", { class: "field" }, h("label", { for: "new-name" }, t("admin.shopName")), h("input", { id: "new-name", name: "shopName", required: true })),
      state.createError && h("p", { class: "notice error", role: "alert" }, state.createError),
      h("button", { type: "submit" }, t("admin.create")),
    ),
  );
}

function detail() {
  const config = state.config;
  if (!config) return h("p", {}, t("admin.noShop"));
  const shop = encodeURIComponent(config.shopId);
  return h(
    "div",
    { class: "detail" },
    h(
      "section",
      { class: "card", "aria-labelledby": "config-title" },
      h("h2", { id: "config-title", tabindex: "-1" }, t("admin.shopTitle", { name: config.name })),
      h(
        "div",
        { class: "row" },
        h("button", { class: "switch", role: "switch", "aria-checked": String(Boolean(config.open)), onclick: toggleOpen, "data-key": "open", "data-testid": "open-switch" },
          config.open ? t("barista.shopOpen") : t("barista.shopClosed")),
        h("a", { href: `/display/?shop=${shop}` }, t("admin.linkDisplay")),
        h("a", { href: `/barista/?shop=${shop}` }, t("admin.linkBarista")),
      ),
    ),
    dashboardSection(),
    robotSection(),
    h(
      "section",
      { class: "card", "aria-labelledby": "config-form-title" },
      h(
        "form",
        { onsubmit: saveConfig, "aria-labelledby": "config-form-title", novalidate: true },
        h("h2", { id: "config-form-title" }, t("admin.configTitle")),
        h(
          "div",
          { class: "grid-form" },
          FIELDS.map(([field, kind]) => {
            const invalid = state.configError?.field === field;
            const value = field === "languages" ? (config.languages ?? []).join(", ") : config[field];
            return h(
              "div",
              { class: `field ${invalid ? "invalid" : ""}` },
              h("label", { for: `f-${field}` }, t(`admin.field.${field}`)),
              h("input", {
                id: `f-${field}`, name: field, type: kind, value: value ?? "", inputmode: kind === "number" ? "numeric" : null,
                "aria-invalid": invalid ? "true" : null, "aria-describedby": invalid ? "config-error" : null,
              }),
              invalid && h("span", { class: "field-error", id: "config-error" }, state.configError.text),
            );
          }),
        ),
        state.configError && !state.configError.field && h("p", { class: "notice error", role: "alert", id: "config-error" }, state.configError.text),
        state.configError?.field && h("p", { class: "notice error", role: "alert" }, state.configError.text),
        h("div", { class: "row" }, h("button", { type: "submit" }, t("admin.saveConfig"))),
      ),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "menu-title" },
      h("h2", { id: "menu-title" }, t("admin.menuTitle")),
      h(
        "form",
        { onsubmit: saveMenu },
        h("label", { for: "menu-json" }, t("admin.menuLabel")),
        h("p", { id: "menu-help" }, t("admin.menuHelp")),
        h("textarea", { id: "menu-json", name: "menu", spellcheck: "false", "aria-describedby": state.menuError ? "menu-help menu-error" : "menu-help", "aria-invalid": state.menuError ? "true" : null }, state.menuText),
        state.menuError && h("p", { class: "notice error", role: "alert", id: "menu-error", "data-testid": "menu-error" }, state.menuError),
        h("div", { class: "row" }, h("button", { type: "submit" }, t("admin.saveMenu"))),
      ),
    ),
  );
}

// ---------- dashboard rendering ----------

function dashboardSection() {
  return h(
    "section",
    { class: "card dashboard", "aria-labelledby": "metrics-title", "data-testid": "dashboard" },
    h("div", { class: "dash-head" }, h("h2", { id: "metrics-title" }, t("admin.metricsTitle")), h("span", { id: "dash-live" }, liveStatus())),
    h("div", { id: "dash-controls", class: "row" }, dashControls()),
    h("div", { id: "dash-body" }, dashBody()),
  );
}

function robotSection() {
  return h(
    "section",
    { class: "card", "aria-labelledby": "robot-title", "data-testid": "robot" },
    h("h2", { id: "robot-title" }, t("admin.robot.title")),
    h("p", {}, t("admin.robot.help")),
    h("div", { id: "robot-state" }, robotState()),
    robotForm(),
  );
}

/** Redraws the live parts of the dashboard only (`controls` too when the day changed). */
function renderDashboard({ controls = false } = {}) {
  if (state.screen !== "main" || !$("#dash-body")) return;
  renderLiveStatus();
  if (controls) patch($("#dash-controls"), dashControls());
  patch($("#dash-body"), dashBody());
  patch($("#robot-state"), robotState());
  patch($("#robot-actions"), robotActions());
}

function renderLiveStatus() {
  const slot = $("#dash-live");
  if (slot) patch(slot, liveStatus());
}

function liveStatus() {
  if (state.dash.day && !showingToday()) {
    return h("span", { class: "conn conn-connecting", "data-testid": "dash-live" }, t("admin.dash.pastDay", { day: dayText(state.dash.day) }));
  }
  return h("span", { class: `conn conn-${state.connection}`, "data-testid": "dash-live" }, t(`conn.${state.connection}`));
}

function dashControls() {
  const { day, today } = state.dash;
  if (!day) return null;
  const csv = `${shopPath(state.selected, "/orders.csv")}?day=${encodeURIComponent(day)}`;
  return [
    h("label", { for: "dash-day" }, t("admin.dash.day")),
    h("input", { id: "dash-day", type: "date", value: day, max: today, required: true, onchange: (e) => chooseDay(e.target.value), "data-key": "dash-day", "data-testid": "dash-day" }),
    day !== today && h("button", { type: "button", class: "secondary", onclick: () => chooseDay(today), "data-key": "dash-today" }, t("admin.dash.today")),
    h("a", { class: "button", href: csv, download: `${state.selected}-${day}.csv`, "data-testid": "dash-csv" }, t("admin.dash.csv", { day: dayText(day) })),
  ];
}

function dayText(day) {
  return new Intl.DateTimeFormat(language(), { dateStyle: "medium", timeZone: "UTC" }).format(new Date(`${day}T00:00:00Z`));
}

function num(n) {
  return new Intl.NumberFormat(language()).format(n ?? 0);
}

function seconds(s) {
  return clock(s ?? 0);
}

function dashBody() {
  if (state.dash.error) return h("p", { class: "notice error", role: "alert", "data-testid": "dash-error" }, state.dash.error);
  const m = state.dash.metrics;
  if (!m) return h("p", {}, t("admin.dash.loading"));
  const o = m.orders;
  const cancelled = o.cancelled.customer + o.cancelled.barista + o.cancelled.admin;
  const timedOut = o.timedOut.customer + o.timedOut.barista;
  const wait = m.waitSeconds;
  const making = m.claimToCompleteSeconds;
  const none = t("admin.dash.none");
  const figure = (key, label, value, help) =>
    h("div", { class: "figure", "data-testid": `fig-${key}` }, h("dt", {}, label), h("dd", { class: "value" }, value), help && h("dd", { class: "help" }, help));
  return [
    h(
      "dl",
      { class: "figures" },
      figure("started", t("admin.dash.started"), num(o.started), t("admin.dash.startedHelp")),
      figure("submitted", t("admin.dash.submitted"), num(o.submitted), t("admin.dash.submittedHelp")),
      figure("completed", t("admin.dash.completed"), num(o.completed), t("admin.dash.completedHelp")),
      figure("cancelled", t("admin.dash.cancelled"), num(cancelled), t("admin.dash.cancelledHelp", { customer: num(o.cancelled.customer), barista: num(o.cancelled.barista), admin: num(o.cancelled.admin) })),
      figure("timed-out", t("admin.dash.timedOut"), num(timedOut), t("admin.dash.timedOutHelp", { customer: num(o.timedOut.customer), barista: num(o.timedOut.barista) })),
      figure("wait", t("admin.dash.wait"), wait.count ? seconds(wait.p50) : none, wait.count ? t("admin.dash.waitHelp", { p90: seconds(wait.p90), max: seconds(wait.max) }) : null),
      figure("making", t("admin.dash.making"), making.count ? seconds(making.p50) : none, making.count ? t("admin.dash.makingHelp", { p90: seconds(making.p90), max: seconds(making.max) }) : null),
    ),
    h("div", { class: "charts" }, perHourChart(m), drinksChart(m), problemsChart(m), waitChart(m)),
  ];
}

function drinkName(id) {
  return state.config?.menu?.find((d) => d.id === id)?.name ?? id;
}

function drinksChart(m) {
  const rows = Object.entries(m.drinks ?? {})
    .filter(([, n]) => n > 0)
    .map(([id, n]) => ({ key: id, label: drinkName(id), value: n }))
    .sort((a, b) => b.value - a.value || a.label.localeCompare(b.label));
  const title = t("admin.chart.drinks");
  return chartFigure("drinks", title, rows.length ? barChart("drinks", title, rows, (n) => num(n)) : h("p", { class: "empty" }, t("admin.chart.drinksEmpty")));
}

/** The clock times of the business day's hours (it starts at the shop's `dayStartsAt`), and one past. */
function hourLabels() {
  const [hh, mm] = String(state.config?.dayStartsAt ?? "05:00").split(":").map(Number);
  const two = (n) => String(n).padStart(2, "0");
  return Array.from({ length: 25 }, (_, i) => ({ hour: two(((hh || 0) + i) % 24), time: `${two(((hh || 0) + i) % 24)}:${two(mm || 0)}` }));
}

function perHourChart(m) {
  const labels = hourLabels();
  const onTheHour = labels[0].time.endsWith(":00");
  const items = (m.perHour ?? []).map((n, i) => ({
    key: String(i),
    label: labels[i].time,
    short: onTheHour ? labels[i].hour : labels[i].time,
    long: t("admin.chart.hour", { from: labels[i].time, to: labels[i + 1].time }),
    value: n,
  }));
  const title = t("admin.chart.perHour");
  const chart = columnChart("per-hour", title, items, (n) => t("admin.chart.orders", { count: n }), onTheHour ? 1 : 3);
  return chartFigure("per-hour", title, chart, t("admin.chart.perHourHelp", { start: labels[0].time }));
}

function waitChart(m) {
  const wait = m.waitSeconds;
  const title = t("admin.chart.wait");
  if (!wait.count) return chartFigure("wait", title, h("p", { class: "empty" }, t("admin.chart.waitEmpty")));
  const rows = [
    { key: "p50", label: t("admin.chart.waitP50"), value: wait.p50 },
    { key: "p90", label: t("admin.chart.waitP90"), value: wait.p90 },
    { key: "max", label: t("admin.chart.waitMax"), value: wait.max, tone: "warn" },
  ];
  return chartFigure("wait", title, barChart("wait", title, rows, seconds), t("admin.chart.waitCount", { count: wait.count }));
}

function problemsChart(m) {
  const o = m.orders;
  const rows = [
    ...["customer", "barista", "admin"].map((who) => ({ key: `cancelled-${who}`, label: t(`admin.chart.cancelled.${who}`), value: o.cancelled[who], tone: "bad" })),
    ...["customer", "barista"].map((cause) => ({ key: `timed-out-${cause}`, label: t(`admin.chart.timedOut.${cause}`), value: o.timedOut[cause], tone: "warn" })),
  ];
  const title = t("admin.chart.problems");
  const any = rows.some((r) => r.value > 0);
  return chartFigure("problems", title, barChart("problems", title, rows, (n) => num(n)), any ? null : t("admin.chart.problemsEmpty"));
}

function chartFigure(id, title, content, note = null) {
  return h(
    "figure",
    { class: "chart", "data-testid": `chart-${id}`, "aria-labelledby": `${id}-caption` },
    h("figcaption", { id: `${id}-caption` }, title),
    content,
    note && h("p", { class: "chart-note" }, note),
  );
}

/**
 * A horizontal bar chart as inline SVG: one row per `{key, label, value, tone?}`, its label above its bar
 * (so long names in either language fit). Screen readers get the title and, in `<desc>`, every row as text.
 */
function barChart(id, title, rows, format) {
  const width = 400;
  const rowHeight = 46;
  const valueWidth = 64;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const scale = (width - valueWidth) / max;
  return svg(
    "svg",
    { class: "chart-svg", viewBox: `0 0 ${width} ${rows.length * rowHeight}`, role: "img", "aria-labelledby": `${id}-title`, "aria-describedby": `${id}-desc` },
    svg("title", { id: `${id}-title` }, title),
    svg("desc", { id: `${id}-desc` }, rows.map((r) => `${r.label}: ${format(r.value)}`).join("; ")),
    rows.map((row, i) => {
      const y = i * rowHeight;
      const barWidth = row.value > 0 ? Math.max(3, row.value * scale) : 0;
      return svg(
        "g",
        { class: "row", "data-item": row.key, "data-value": row.value },
        svg("text", { class: "label", x: 0, y: y + 15 }, row.label),
        svg("rect", { class: `bar ${row.tone ?? ""}`, x: 0, y: y + 21, width: barWidth, height: 18, rx: 3 }),
        svg("text", { class: "value", x: barWidth + 6, y: y + 35 }, format(row.value)),
      );
    }),
  );
}

/** A column chart as inline SVG: one column per `{key, label, long, value}`, labelled below with `label`. */
function columnChart(id, title, items, format, labelEvery = 1) {
  const width = 600;
  const height = 190;
  const top = 20;
  const bottom = 24;
  const column = width / items.length;
  const max = Math.max(1, ...items.map((item) => item.value));
  const scale = (height - top - bottom) / max;
  return svg(
    "svg",
    { class: "chart-svg", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${id}-title`, "aria-describedby": `${id}-desc` },
    svg("title", { id: `${id}-title` }, title),
    svg("desc", { id: `${id}-desc` }, items.map((item) => `${item.long}: ${format(item.value)}`).join("; ")),
    svg("line", { class: "axis", x1: 0, x2: width, y1: height - bottom + 0.5, y2: height - bottom + 0.5 }),
    items.map((item, i) => {
      const barHeight = item.value * scale;
      const middle = i * column + column / 2;
      return svg(
        "g",
        { class: "col", "data-item": item.key, "data-value": item.value, "data-hour": item.label },
        svg("rect", { class: "bar", x: i * column + 3, y: height - bottom - barHeight, width: column - 6, height: barHeight, rx: 2 }, svg("title", {}, `${item.long}: ${format(item.value)}`)),
        item.value > 0 && svg("text", { class: "value", x: middle, y: height - bottom - barHeight - 5, "text-anchor": "middle" }, num(item.value)),
        i % labelEvery === 0 && svg("text", { class: "label", x: middle, y: height - 6, "text-anchor": "middle" }, item.short),
      );
    }),
  );
}

// ---------- robot rendering ----------

function robotState() {
  const robot = state.robot;
  let text = t("admin.robot.idle");
  if (robot?.running) {
    const until = new Intl.DateTimeFormat(language(), { hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(robot.untilMs));
    text = t("admin.robot.running", { rate: num(robot.ordersPerMinute), until, count: num(robot.startedOrders) });
  } else if (robot?.startedOrders > 0) {
    text = t("admin.robot.finished", { count: num(robot.startedOrders) });
  }
  return [
    h("p", { class: `robot-state ${robot?.running ? "running" : ""}`, "data-testid": "robot-state", "data-running": String(Boolean(robot?.running)) }, text),
    state.robotError && h("p", { class: "notice error", role: "alert", "data-testid": "robot-error" }, state.robotError),
  ];
}

const ROBOT_FIELDS = [
  ["ordersPerMinute", "admin.robot.rate", 1, 600, "1"],
  ["minutes", "admin.robot.minutes", 1, 1440, "1"],
  ["delayMin", "admin.robot.delayMin", 0, 3600, "1"],
  ["delayMax", "admin.robot.delayMax", 0, 3600, "1"],
  ["cancelPercent", "admin.robot.cancel", 0, 100, "1"],
];

function robotForm() {
  return h(
    "form",
    { onsubmit: startRobot, novalidate: true, "aria-labelledby": "robot-title" },
    h(
      "div",
      { class: "grid-form" },
      ROBOT_FIELDS.map(([field, label, min, max, step]) =>
        h(
          "div",
          { class: "field" },
          h("label", { for: `robot-${field}` }, t(label)),
          h("input", {
            id: `robot-${field}`, name: field, type: "number", min, max, step, inputmode: "numeric", value: state.robotForm[field],
            oninput: (e) => (state.robotForm[field] = e.target.value),
          }),
        ),
      ),
    ),
    h("div", { id: "robot-actions", class: "row" }, robotActions()),
  );
}

function robotActions() {
  const running = Boolean(state.robot?.running);
  return [
    h("button", { type: "submit", "data-key": "robot-start", "data-testid": "robot-start" }, t("admin.robot.start")),
    h("button", { type: "button", class: "danger", onclick: stopRobot, disabled: !running, "data-key": "robot-stop", "data-testid": "robot-stop" }, t("admin.robot.stop")),
  ];
}

main();
