// Every refusal has its own clear message on the phone; cancels from phone and tablet.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hostAndBrowser, currentQr, newPage, signIn, placeOrder, phoneAt, startOrder } from "./helpers.mjs";

const suite = hostAndBrowser();

async function refusal(phone, code) {
  await phone.locator(`[data-screen=refused][data-code=${code}]`).waitFor();
  return phone.textContent("[data-testid=refusal]");
}

test("an invalid code says so", async () => {
  const phone = await startOrder(suite.browser, `${suite.host.url}/order/?shop=main&code=NOTACODE00`);
  assert.match(await refusal(phone, "code_invalid"), /not valid/);
  await phone.context().close();
});

test("a full shop and a used-up code each have their message", async () => {
  await suite.admin.put("/api/shops/main/config", { maxOpenOrders: 1 });
  const { url } = await currentQr(suite.host.url);
  const first = await startOrder(suite.browser, url);
  await first.locator("[data-screen=menu]").waitFor();
  const second = await startOrder(suite.browser, url);
  assert.match(await refusal(second, "shop_full"), /very busy/);
  await suite.admin.put("/api/shops/main/config", { maxOpenOrders: 20, drinksPerCode: 1 });
  const third = await startOrder(suite.browser, url);
  assert.match(await refusal(third, "code_used_up"), /All drinks on this code are taken/);
  for (const page of [first, second, third]) await page.context().close();
  await suite.admin.put("/api/shops/main/config", { drinksPerCode: 10 });
});

test("a closed shop says so, also when it closes while the customer looks", async () => {
  const { url } = await currentQr(suite.host.url);
  const phone = await phoneAt(suite.browser, url);
  await phone.locator("[data-screen=welcome]").waitFor();
  await suite.admin.post("/api/shops/main/close", {});
  // The welcome screen listens to config changes: refuse before the customer taps.
  await phone.locator("[data-screen=closed]").waitFor();
  assert.match(await phone.textContent("[data-testid=refusal]"), /closed/);
  const later = await phoneAt(suite.browser, url);
  await later.locator("[data-screen=closed]").waitFor();
  await suite.admin.post("/api/shops/main/open", {});
  await phone.locator("[data-screen=welcome]").waitFor();
  for (const page of [phone, later]) await page.context().close();
});

test("the customer cancels from the phone after confirming", async () => {
  const { url } = await currentQr(suite.host.url);
  const phone = await startOrder(suite.browser, url);
  await phone.click("[data-drink=espresso]");
  await phone.click("[data-testid=submit]");
  await phone.locator("[data-screen=status][data-state=queued]").waitFor();
  await phone.click("[data-screen=status] button.danger");
  await phone.click("[data-testid=confirm-no]");
  assert.equal(await phone.locator("[data-screen=status][data-state=queued]").count(), 1, "no keeps the order");
  await phone.click("[data-screen=status] button.danger");
  await phone.click("[data-testid=confirm-yes]");
  await phone.locator("[data-screen=status][data-state=cancelled]").waitFor();
  assert.match(await phone.textContent("[data-testid=status]"), /You cancelled this order/);
  await phone.context().close();
});

test("the barista cancels from the tablet after confirming, and the phone is told", async () => {
  const { url } = await currentQr(suite.host.url);
  const phone = await startOrder(suite.browser, url);
  await phone.click("[data-drink=americano]");
  await phone.check("input[name=opt-size][value=small]", { force: true });
  await phone.click("[data-testid=submit]");
  await phone.locator("[data-screen=status][data-state=queued]").waitFor();
  const number = (await phone.textContent("[data-testid=order-number]")).match(/\d+/)[0];

  const tablet = await newPage(suite.browser);
  await signIn(tablet, suite.host.url, "barista", "barista");
  const card = tablet.locator(`[data-testid=lane-new] li[data-number='${number}']`);
  await card.locator("button[data-action=cancel]").click();
  await tablet.locator("dialog.confirm").waitFor();
  assert.match(await tablet.textContent("dialog.confirm"), new RegExp(`#${number}`));
  await tablet.click("[data-testid=confirm-yes]");
  await card.waitFor({ state: "detached" });
  await phone.locator("[data-screen=status][data-state=cancelled]").waitFor();
  assert.match(await phone.textContent("[data-testid=status]"), /cancelled by the barista/);
  for (const page of [phone, tablet]) await page.context().close();
});

test("a second barista sees a claimed order as taken, and a conflicting claim is rolled back", async () => {
  const order = await placeOrder(suite.host.url);
  const one = await newPage(suite.browser);
  await signIn(one, suite.host.url, "barista", "barista");
  // Tablet two hears nothing live, so it still offers the order when someone else has it.
  const two = await newPage(suite.browser);
  await two.route("**/events/staff**", (route) => route.abort());
  await signIn(two, suite.host.url, "barista", "barista");
  const onTwo = two.locator(`[data-testid=lane-new] li[data-number='${order.number}']`);
  await onTwo.waitFor();
  await one.locator(`[data-testid=lane-new] li[data-number='${order.number}'] button[data-action=claim]`).click();
  await one.locator(`[data-testid=lane-making] li[data-number='${order.number}'] button[data-action=complete]`).waitFor();
  await onTwo.locator("button[data-action=claim]").click();
  const message = two.locator("[data-testid=message]");
  await message.waitFor();
  assert.match(await message.textContent(), /Another barista (already took|is making) this order/);
  const taken = two.locator(`[data-testid=lane-making] li[data-number='${order.number}']`, { hasText: "Claimed by another barista" });
  await taken.waitFor();
  assert.equal(await taken.locator("button").count(), 0, "not actionable");
  for (const page of [one, two]) await page.context().close();
});
