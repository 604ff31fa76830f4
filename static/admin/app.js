// The operator's page: shops, config, menu, open/close. Metrics come later.
import { api, shopPath, staffLogin, rememberedStaff, forgetStaff, isAuthError } from "/shared/api.js";
import { h, patch, $ } from "/shared/dom.js";
import { initI18n, t, errorText, languagePicker, onLanguageChange } from "/shared/i18n.js";

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
  shops: [],
  selected: new URLSearchParams(location.search).get("shop") ?? "main",
  config: null,
  configError: null, // {field, text}
  menuText: "",
  menuError: null,
  createError: null,
  busy: false,
  message: null,
};

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
  } catch (error) {
    if (isAuthError(error)) {
      forgetStaff();
      state.screen = "signin";
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
  try {
    const who = await staffLogin(event.target.elements.pin.value);
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

function signOut() {
  forgetStaff();
  state.screen = "signin";
  render();
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
  patch($("#controls"), state.screen === "main" && h("button", { class: "secondary", onclick: signOut }, t("signin.signOut")));
  const app = $("#app");
  if (state.screen === "loading") return patch(app, h("p", {}, t("common.loading")));
  if (state.screen === "signin") return patch(app, signInForm());
  patch(app, shopList(), detail());
}

function renderMessage() {
  const area = $("#message");
  if (!state.message) return area.replaceChildren();
  area.replaceChildren(h("p", { class: `notice ${state.message.kind}`, "data-testid": "message" }, state.message.text));
}

function signInForm() {
  return h(
    "form",
    { class: "signin", onsubmit: signIn },
    h("h2", {}, t("admin.signinTitle")),
    h("label", { for: "pin" }, t("signin.pin")),
    h("input", { id: "pin", name: "pin", type: "password", inputmode: "numeric", autocomplete: "current-password", required: true }),
    state.signinError && h("p", { class: "notice error", role: "alert" }, state.signinError),
    h("button", { type: "submit" }, t("signin.submit")),
  );
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
      h(
        "form",
        { onsubmit: saveConfig, "aria-labelledby": "config-form-title", novalidate: true },
        h("h3", { id: "config-form-title" }, t("admin.configTitle")),
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
    h(
      "section",
      { class: "card", "aria-labelledby": "metrics-title" },
      h("h2", { id: "metrics-title" }, t("admin.metricsTitle")),
      h("p", {}, t("admin.metricsSoon")),
    ),
  );
}

main();
