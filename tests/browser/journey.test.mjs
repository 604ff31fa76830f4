// The whole journey across three browsers, without any page reload:
// display shows a code → phone orders a cappuccino with oat milk → barista makes it → ready everywhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hostAndBrowser, qrWithTimeLeft, newPage, signIn, markPage, assertNotReloaded } from "./helpers.mjs";

const suite = hostAndBrowser();

test("an order goes from the QR code to ready on every screen without a reload", async () => {
  const base = suite.host.url;
  // The display must still show this code when it counts the order (codes rotate every 5 minutes).
  await qrWithTimeLeft(base, 45_000);
  const display = await newPage(suite.browser, { viewport: { width: 1920, height: 1080 } });
  await signIn(display, base, "display", "display");
  const qr = display.locator("img[data-testid=qr-image]");
  await qr.waitFor();
  assert.match(await display.textContent("[data-testid=tokens-left]"), /10 drinks left on this code/);
  const orderUrl = await qr.getAttribute("data-url");
  assert.match(orderUrl, /\/order\/\?shop=main&code=/);
  await markPage(display);

  const barista = await newPage(suite.browser);
  await signIn(barista, base, "barista", "barista");
  await barista.locator("[data-testid=lane-new]").waitFor();
  await markPage(barista);

  const phone = await newPage(suite.browser, { phone: true });
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

  // The phone then tells the order's journey, step by step, with times.
  const steps = phone.locator("[data-testid=journey] li");
  await phone.locator("[data-testid=journey] li[data-type='OrderProcessor.orderFinished']").waitFor();
  assert.deepEqual(await steps.evaluateAll((items) => items.map((li) => li.dataset.type)), [
    "Validator.NewOrder",
    "OrderProcessor.WorkflowStarted",
    "OrderManager.WaitingCompletion",
    "OrderManager.MakeOrder",
    "OrderManager.OrderCompleted",
    "OrderProcessor.orderFinished",
  ]);
  const texts = await steps.allTextContents();
  assert.match(texts[0], /You scanned the code/);
  assert.match(texts[2], /You ordered Cappuccino — Oat milk, Large \(number 1\)|You ordered Cappuccino — Large, Oat milk \(number 1\)/);
  assert.match(texts[3], /A barista started making it/);
  assert.match(texts[4], /Ready for collection/);
  for (const li of await steps.all()) assert.match(await li.locator("time").getAttribute("datetime"), /^\d{4}-\d\d-\d\dT/);
  await phone.selectOption("[data-testid=language]", "pt-BR");
  await phone.locator("[data-testid=journey] h3", { hasText: "O caminho do seu pedido" }).waitFor();
  assert.match(await phone.textContent("[data-testid=journey] li[data-type='OrderManager.OrderCompleted']"), /Pronto para retirar/);

  for (const page of [display, barista, phone]) await assertNotReloaded(page);
});
