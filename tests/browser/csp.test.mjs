// The pages keep to the Content-Security-Policy the web component sends (only their own scripts,
// styles and images; no inline script, style or handler; no framing). Every browser test fails on
// a violation (`hostAndBrowser`); this file walks every app through its screens to be sure.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hostAndBrowser, staff, placeOrder, currentQr, newPage, signIn, takeCspViolations, launch } from "./helpers.mjs";

const suite = hostAndBrowser({
  setup: async ({ host }) => {
    const barista = await staff(host.url, "barista");
    const a = await placeOrder(host.url, { displayName: "Ana" });
    await placeOrder(host.url, { drinkId: "espresso", options: {} });
    await barista.post(`/api/orders/${a.id}/complete`, {});
  },
});

const PAGES = ["/", "/display/", "/barista/", "/order/", "/admin/"];

test("every page is served with a policy that allows no inline code and no framing", async () => {
  for (const path of PAGES) {
    const response = await fetch(suite.host.url + path);
    assert.equal(response.status, 200, path);
    const policy = response.headers.get("content-security-policy") ?? "";
    assert.match(policy, /frame-ancestors 'none'/, path);
    assert.match(policy, /script-src 'self'(;|$)/, path);
    assert.match(policy, /style-src 'self'(;|$)/, path);
    assert.doesNotMatch(policy, /unsafe-inline|unsafe-eval/, path);
  }
});

test("the violation watch sees a blocked inline style", async () => {
  const page = await newPage(suite.browser);
  await page.goto(`${suite.host.url}/`);
  await page.evaluate(() => {
    const style = document.createElement("style");
    style.textContent = "body { outline: 1px solid red; }";
    document.head.append(style);
  });
  const seen = await (async () => {
    for (let tries = 0; tries < 20; tries += 1) {
      const found = takeCspViolations();
      if (found.length) return found;
      await new Promise((r) => setTimeout(r, 100));
    }
    return [];
  })();
  assert.equal(seen.length, 1, seen.join("\n"));
  assert.match(seen[0], /style-src/);
  await page.context().close();
});

test("no screen of any app breaks the policy", async () => {
  const base = suite.host.url;
  const home = await newPage(suite.browser);
  await home.goto(`${base}/`);
  await home.locator("a[href='/display/']").waitFor();
  // The start page's own stylesheet applies (it used to be inline).
  assert.equal(await home.evaluate(() => getComputedStyle(document.querySelector("ul")).display), "grid");
  await home.context().close();

  const display = await newPage(suite.browser, { viewport: { width: 1920, height: 1080 } });
  await display.goto(`${base}/display/`);
  await display.locator("#pin").waitFor();
  await signIn(display, base, "display", "display");
  await display.locator("img[data-testid=qr-image]").waitFor();
  await display.locator("[data-testid=ready] .ticket").first().waitFor();
  await display.waitForFunction(() => document.querySelector("img[data-testid=qr-image]")?.naturalWidth > 0);
  await display.click("#fullscreen");

  const barista = await newPage(suite.browser);
  await signIn(barista, base, "barista", "barista");
  await barista.locator("[data-testid=lane-new] li").first().waitFor();
  await barista.locator("[data-testid=lane-new] li button[data-action=cancel]").first().click();
  await barista.locator("dialog.confirm").waitFor();
  await barista.click("[data-testid=confirm-no]");
  await barista.selectOption("[data-testid=language]", "pt-BR");
  await barista.locator("[data-testid=lane-new] h2", { hasText: "Novos" }).waitFor();

  const phone = await newPage(suite.browser, { phone: true });
  await phone.goto(`${base}/order/`);
  await phone.locator("[data-screen=scan]").waitFor();
  await phone.goto((await currentQr(base)).url);
  await phone.fill("#display-name", "Eva");
  await phone.click("[data-testid=start]");
  await phone.click("[data-drink=latte]");
  await phone.check("input[name=opt-milk][value=oat]", { force: true });
  await phone.check("input[name=opt-size][value=regular]", { force: true });
  await phone.click("[data-testid=submit]");
  await phone.locator("[data-screen=status][data-state=queued]").waitFor();

  const admin = await newPage(suite.browser);
  await signIn(admin, base, "admin", "admin");
  await admin.locator("[data-testid=chart-drinks] rect.bar").first().waitFor();
  await admin.locator("#menu-json").waitFor();
  await admin.selectOption("[data-testid=language]", "pt-BR");
  await admin.locator("[data-testid=chart-drinks] figcaption", { hasText: "Bebidas por tipo" }).waitFor();
  await admin.click("[data-testid=sign-out]");
  await admin.locator("[data-testid=signin-notice]").waitFor();
  await barista.click("[data-testid=sign-out]");
  await barista.locator("[data-testid=signin-notice]").waitFor();

  // Live updates arrive without breaking anything either.
  const order = await placeOrder(base, { displayName: "Lia" });
  await display.locator(`[data-testid=preparing] .ticket[data-number='${order.number}']`).waitFor();
  for (const page of [display, barista, phone, admin]) await page.context().close();
  assert.deepEqual(takeCspViolations(), []);
});

test("no other site can frame an app", async () => {
  // A browser of its own: the refused frame is the point here, not a violation of our pages.
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const refused = [];
    page.on("console", (message) => refused.push(message.text()));
    await page.setContent(`<iframe src="${suite.host.url}/display/"></iframe>`);
    await page.waitForTimeout(1500);
    const frame = page.frames().find((f) => f !== page.mainFrame());
    const shown = frame ? await frame.evaluate(() => Boolean(document.querySelector("#app"))).catch(() => false) : false;
    assert.equal(shown, false, "the display must not render inside a frame");
    assert.ok(refused.some((text) => /frame-ancestors/.test(text)), refused.join("\n"));
  } finally {
    await browser.close();
  }
});
