// A code that ages out on a phone, and a second order while one is open. Waits for a code's
// slot to end (up to 30 s), so it has a file, and so a host, of its own: the other files run
// beside it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hostAndBrowser, currentQr, qrWithTimeLeft, newPage } from "./helpers.mjs";

const suite = hostAndBrowser({ config: { codeRotationSeconds: 30, codeGraceSeconds: 0 } });

test("an expired code and the per-customer limit each have their message", async () => {
  // The first order must land while its code is still good (there is no grace here).
  const old = await qrWithTimeLeft(suite.host.url, 10_000);
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
