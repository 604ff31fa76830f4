// The daily drink limit, which needs settings of its own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hostAndBrowser, staff, currentQr, newPage } from "./helpers.mjs";

const suite = hostAndBrowser();

/** The phone orders `drinkId` (no options) from the current code; returns the queued order's id. */
async function orderOnPhone(phone, drinkId = "espresso") {
  const { url } = await currentQr(suite.host.url);
  await phone.goto(url);
  await phone.click("[data-testid=start]");
  await phone.click(`[data-drink=${drinkId}]`);
  await phone.click("[data-testid=submit]");
  await phone.locator("[data-screen=status][data-state=queued]").waitFor();
  return phone.evaluate(async () => (await (await fetch("/api/me/orders")).json()).orders[0].id);
}

test("a customer over the daily drink limit is told so when scanning the next code", async () => {
  await suite.admin.put("/api/shops/main/config", { maxDrinksPerCustomerPerDay: 1 });
  const phone = await newPage(suite.browser, { phone: true });
  const id = await orderOnPhone(phone);
  const barista = await staff(suite.host.url, "barista");
  await barista.post(`/api/orders/${id}/claim`, {});
  await barista.post(`/api/orders/${id}/complete`, {});
  await phone.locator("[data-screen=status][data-state=completed]").waitFor();

  // The next code: redeeming the same code again would just give the same order back. Codes are
  // per time slot, so a new rotation period means a new slot and a new code, without waiting.
  const before = await currentQr(suite.host.url);
  await suite.admin.put("/api/shops/main/config", { codeRotationSeconds: 30 });
  const next = await currentQr(suite.host.url);
  assert.notEqual(next.code, before.code);
  await phone.goto(next.url);
  await phone.locator("[data-screen=welcome]").waitFor();
  await phone.click("[data-testid=start]");
  await phone.locator("[data-screen=refused][data-code=daily_limit]").waitFor();
  assert.match(await phone.textContent("[data-testid=refusal]"), /You have reached today's drink limit/);
  await phone.context().close();
  await suite.admin.put("/api/shops/main/config", { maxDrinksPerCustomerPerDay: 0, codeRotationSeconds: 300 });
});
