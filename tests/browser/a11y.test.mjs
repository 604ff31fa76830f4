// Automated accessibility check (axe-core, WCAG A/AA including colour contrast) of the main screens of
// the four apps: no violation of impact serious or critical.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hostAndBrowser, staff, currentQr, placeOrder, newPage, signIn, axeProblems } from "./helpers.mjs";

// Something on every board: queued, claimed by someone else, ready, cancelled.
const suite = hostAndBrowser({
  setup: async ({ host, admin }) => {
    const barista = await staff(host.url, "barista");
    const a = await placeOrder(host.url, { displayName: "Ana" });
    const b = await placeOrder(host.url, { drinkId: "espresso", options: {} });
    const c = await placeOrder(host.url, { drinkId: "mocha", options: { size: "small", milk: "soy" } });
    await placeOrder(host.url, { drinkId: "flat-white", options: { milk: "oat" }, displayName: "Bia" });
    await admin.post(`/api/orders/${a.id}/claim`, {});
    await barista.post(`/api/orders/${b.id}/complete`, {});
    await barista.post(`/api/orders/${c.id}/cancel`, {});
  },
});

const problems = [];

async function check(page, screen) {
  for (const line of await axeProblems(page)) problems.push(`${screen}: ${line}`);
}

test("the display, the barista tablet and the admin pass axe, signed out and in", async () => {
  const screens = [
    ["display", "display", "img[data-testid=qr-image]", { width: 1920, height: 1080 }],
    ["barista", "barista", "[data-testid=lane-new] li", { width: 1280, height: 800 }],
    ["admin", "admin", "[data-testid=chart-drinks] rect.bar", { width: 1280, height: 800 }],
  ];
  problems.length = 0;
  for (const [app, role, ready, viewport] of screens) {
    const page = await newPage(suite.browser, { viewport });
    await page.goto(`${suite.host.url}/${app}/`);
    await page.locator("#pin").waitFor();
    await check(page, `${app} sign-in`);
    await signIn(page, suite.host.url, app, role);
    await page.locator(ready).first().waitFor();
    await check(page, app);
    if (app === "barista") {
      // The confirm dialog too.
      await page.locator("[data-testid=lane-new] li button[data-action=cancel]").first().click();
      await page.locator("dialog.confirm").waitFor();
      await check(page, "barista confirm dialog");
      await page.click("[data-testid=confirm-no]");
    }
    if (app === "admin") {
      await page.selectOption("[data-testid=language]", "pt-BR");
      await page.locator("[data-testid=chart-drinks] figcaption", { hasText: "Bebidas por tipo" }).waitFor();
      await check(page, "admin (pt-BR)");
    }
    await page.context().close();
  }
  assert.deepEqual(problems, [], problems.join("\n"));
});

test("the phone passes axe on every step of an order", async () => {
  problems.length = 0;
  const phone = await newPage(suite.browser, { phone: true });
  await phone.goto(`${suite.host.url}/order/`);
  await phone.locator("[data-screen=scan]").waitFor();
  await check(phone, "order scan");
  const { url } = await currentQr(suite.host.url);
  await phone.goto(url);
  await phone.locator("[data-screen=welcome]").waitFor();
  await check(phone, "order welcome");
  await phone.click("[data-testid=start]");
  await phone.click("[data-drink=latte]");
  await phone.check("input[name=opt-milk][value=oat]", { force: true });
  await check(phone, "order menu");
  await phone.check("input[name=opt-size][value=regular]", { force: true });
  await phone.click("[data-testid=submit]");
  await phone.locator("[data-screen=status][data-state=queued]").waitFor();
  await check(phone, "order queued");
  const id = await phone.evaluate(async () => (await (await fetch("/api/me/orders")).json()).orders[0].id);
  const barista = await staff(suite.host.url, "barista");
  await barista.post(`/api/orders/${id}/claim`, {});
  await barista.post(`/api/orders/${id}/complete`, {});
  await phone.locator("[data-testid=journey] li[data-type='OrderProcessor.orderFinished']").waitFor();
  await check(phone, "order ready with its journey");
  // A refusal (an invalid code).
  await phone.goto(`${suite.host.url}/order/?shop=main&code=NOTACODE00`);
  await phone.click("[data-testid=start]");
  await phone.locator("[data-screen=refused]").waitFor();
  await check(phone, "order refused");
  await phone.context().close();
  assert.deepEqual(problems, [], problems.join("\n"));
});
