// Language switching, catching up after a host restart, and screenshots of every app.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { hostAndBrowser, currentQr, placeOrder, staff, newPage, signIn, markPage, assertNotReloaded, artifactsDir } from "./helpers.mjs";

const suite = hostAndBrowser({ fixedPort: true });

test("the language can be switched to Brazilian Portuguese and stays after a reload", async () => {
  const phone = await newPage(suite.browser, { phone: true });
  await phone.goto(`${suite.host.url}/order/`);
  await phone.locator("[data-screen=scan]").waitFor();
  assert.match(await phone.textContent("h2"), /Scan the code on the screen/);
  await phone.selectOption("[data-testid=language]", "pt-BR");
  await phone.locator("h2", { hasText: "Escaneie o código da tela" }).waitFor();
  assert.equal(await phone.getAttribute("html", "lang"), "pt-BR");
  await phone.reload();
  await phone.locator("h2", { hasText: "Escaneie o código da tela" }).waitFor();
  await phone.context().close();

  const brazilian = await newPage(suite.browser, { locale: "pt-BR" });
  await brazilian.goto(`${suite.host.url}/barista/`);
  await brazilian.locator("h2", { hasText: "Entrada do barista" }).waitFor();
  await brazilian.context().close();
});

test("the display catches up after the host restarts, without a reload", async () => {
  const display = await newPage(suite.browser, { viewport: { width: 1920, height: 1080 } });
  await signIn(display, suite.host.url, "display", "display");
  await display.locator("img[data-testid=qr-image]").waitFor();
  await display.locator("#conn.conn-live").waitFor();
  await markPage(display);
  await suite.host.stop();
  await display.locator("#conn", { hasText: "Reconnecting" }).waitFor();
  await suite.host.start();
  const order = await placeOrder(suite.host.url, { displayName: "Bia" });
  await display.locator(`[data-testid=preparing] .ticket[data-number='${order.number}']`, { hasText: "Bia" }).waitFor({ timeout: 30_000 });
  await display.locator("#conn.conn-live").waitFor();
  await assertNotReloaded(display);
  await display.context().close();
});

test("screenshots of each app at phone and TV sizes", async () => {
  const dir = artifactsDir();
  const barista = await staff(suite.host.url, "barista");
  const a = await placeOrder(suite.host.url, { drinkId: "cappuccino", options: { size: "large", milk: "oat" }, displayName: "Carla" });
  await placeOrder(suite.host.url, { drinkId: "mocha", options: { size: "small", milk: "soy", extra: "extra-shot" } });
  const c = await placeOrder(suite.host.url, { drinkId: "flat-white", options: { milk: "whole" }, displayName: "Duda" });
  await barista.post(`/api/orders/${a.id}/claim`, {});
  await barista.post(`/api/orders/${c.id}/complete`, {});
  const sizes = { phone: { width: 360, height: 740 }, tv: { width: 1920, height: 1080 } };
  for (const [size, viewport] of Object.entries(sizes)) {
    // Each round's own code: one taken before the first round may have expired by the second.
    const { url } = await currentQr(suite.host.url);
    const display = await newPage(suite.browser, { viewport });
    await signIn(display, suite.host.url, "display", "display");
    await display.locator("img[data-testid=qr-image]").waitFor();
    // The QR image really renders (an SVG the browser could decode), not just its element.
    await display.waitForFunction(() => {
      const img = document.querySelector("img[data-testid=qr-image]");
      return img && img.complete && img.naturalWidth > 0;
    });
    await display.screenshot({ path: join(dir, `display-${size}.png`), fullPage: size === "phone" });

    const tablet = await newPage(suite.browser, { viewport });
    await signIn(tablet, suite.host.url, "barista", "barista");
    await tablet.locator("[data-testid=lane-new] li").first().waitFor();
    await tablet.screenshot({ path: join(dir, `barista-${size}.png`), fullPage: size === "phone" });

    const phone = await newPage(suite.browser, { viewport, phone: size === "phone" });
    await phone.goto(url);
    await phone.fill("#display-name", "Eva");
    await phone.click("[data-testid=start]");
    await phone.click("[data-drink=latte]");
    await phone.check("input[name=opt-milk][value=oat]", { force: true });
    await phone.screenshot({ path: join(dir, `order-menu-${size}.png`), fullPage: size === "phone" });
    await phone.check("input[name=opt-size][value=regular]", { force: true });
    await phone.click("[data-testid=submit]");
    await phone.locator("[data-screen=status]").waitFor();
    await phone.screenshot({ path: join(dir, `order-status-${size}.png`), fullPage: size === "phone" });

    const admin = await newPage(suite.browser, { viewport });
    await signIn(admin, suite.host.url, "admin", "admin");
    await admin.locator("#menu-json").waitFor();
    await admin.screenshot({ path: join(dir, `admin-${size}.png`), fullPage: size === "phone" });
    for (const page of [display, tablet, phone, admin]) await page.context().close();
  }
});
