// Refusals that need a code to age: an expired code, and a second order while one is open.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hostAndBrowser, currentQr, newPage } from "./helpers.mjs";

const suite = hostAndBrowser({ config: { codeRotationSeconds: 30, codeGraceSeconds: 0 } });

test("an expired code and the per-customer limit each have their message", async () => {
  let old = await currentQr(suite.host.url);
  // The first order must land while its code is still good (there is no grace
  // here): too close to the slot's end, start from the next code instead.
  const left = Date.parse(old.slotEndsAt) - Date.now();
  if (left < 10_000) {
    await new Promise((r) => setTimeout(r, Math.max(0, left) + 500));
    old = await currentQr(suite.host.url);
  }
  const phone = await newPage(suite.browser, { phone: true });
  await phone.goto(old.url);
  await phone.click("[data-testid=start]");
  await phone.locator("[data-screen=menu]").waitFor();
  // The scenario needs the slot to end (at most 30 s with this config).
  const wait = Date.parse(old.slotEndsAt) - Date.now() + 500;
  await new Promise((r) => setTimeout(r, Math.max(0, wait)));
  const fresh = await currentQr(suite.host.url);
  assert.notEqual(fresh.code, old.code);

  const late = await newPage(suite.browser, { phone: true });
  await late.goto(old.url);
  await late.click("[data-testid=start]");
  await late.locator("[data-screen=refused][data-code=code_expired]").waitFor();
  assert.match(await late.textContent("[data-testid=refusal]"), /expired/);

  await phone.goto(fresh.url);
  await phone.locator("[data-screen=welcome]").waitFor();
  await phone.click("[data-testid=start]");
  await phone.locator("[data-screen=refused][data-code=customer_limit]").waitFor();
  assert.match(await phone.textContent("[data-testid=refusal]"), /already have an order open/);
  await phone.click("text=Show my order");
  await phone.locator("[data-screen=menu]").waitFor();
});
