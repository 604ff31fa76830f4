// The whole journey across three browsers, without any page reload:
// display shows a code → phone orders a cappuccino with oat milk → barista makes it → ready everywhere.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startHost, openShop, launch, newPage, signIn, markPage, assertNotReloaded } from "./helpers.mjs";

let host;
let browser;

before(async () => {
  host = await startHost();
  await openShop(host.url);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.stop();
});

test("an order goes from the QR code to ready on every screen without a reload", async () => {
  const base = host.url;
  const display = await newPage(browser, { viewport: { width: 1920, height: 1080 } });
  await signIn(display, base, "display", "display");
  const qr = display.locator("img[data-testid=qr-image]");
  await qr.waitFor();
  assert.match(await display.textContent("[data-testid=tokens-left]"), /10 drinks left on this code/);
  const orderUrl = await qr.getAttribute("data-url");
  assert.match(orderUrl, /\/order\/\?shop=main&code=/);
  await markPage(display);

  const barista = await newPage(browser);
  await signIn(barista, base, "barista", "barista");
  await barista.locator("[data-testid=lane-new]").waitFor();
  await markPage(barista);

  const phone = await newPage(browser, { phone: true });
  await phone.goto(orderUrl);
  await phone.fill("#display-name", "Ana");
  await phone.click("[data-testid=start]");
  await phone.locator("[data-screen=menu]").waitFor();
  await markPage(phone);
  assert.equal(await phone.isDisabled("[data-testid=submit]"), true, "nothing chosen yet");
  await phone.click("[data-drink=cappuccino]");
  await phone.check("input[name=opt-milk][value=oat]", { force: true });
  assert.equal(await phone.isDisabled("[data-testid=submit]"), true, "the size is still missing");
  await phone.check("input[name=opt-size][value=large]", { force: true });
  await phone.click("[data-testid=submit]");
  await phone.locator("[data-screen=status][data-state=queued]").waitFor();
  assert.match(await phone.textContent("[data-testid=order-number]"), /#1/);

  // The code lost a drink, live.
  await display.locator("[data-testid=tokens-left]", { hasText: "9 drinks left" }).waitFor();
  await display.locator("[data-testid=preparing] .ticket[data-number='1']", { hasText: "Cappuccino" }).waitFor();
  assert.match(await display.textContent("[data-testid=preparing] .ticket[data-number='1']"), /Ana/);

  const card = barista.locator("[data-testid=lane-new] li[data-number='1']");
  await card.waitFor();
  assert.match(await card.textContent(), /Oat milk/);
  assert.match(await card.textContent(), /Large/);
  assert.match(await card.textContent(), /For Ana/);
  await card.locator("button[data-action=claim]").click();
  const making = barista.locator("[data-testid=lane-making] li[data-number='1']");
  await making.waitFor();
  await phone.locator("[data-screen=status][data-state=in_progress]").waitFor();
  await making.locator("button[data-action=complete]").click();
  await barista.locator("[data-testid=lane-ready] li[data-number='1']").waitFor();

  await phone.locator("[data-screen=status][data-state=completed]").waitFor();
  assert.match(await phone.textContent("[data-testid=status]"), /Ready for collection/);
  await display.locator("[data-testid=ready] .ticket[data-number='1']").waitFor();
  assert.equal(await display.locator("[data-testid=preparing] .ticket").count(), 0);

  for (const page of [display, barista, phone]) await assertNotReloaded(page);
});
