// Codes that age: an expired code, a second order while one is open, and the display's count
// when the code before is redeemed in its grace period.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hostAndBrowser, currentQr, qrWithTimeLeft, customer, newPage, signIn } from "./helpers.mjs";

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

/** A new customer redeems `code` over the API; returns the order with `tokensLeft`. */
async function redeemAsNewCustomer(code) {
  return (await customer(suite.host.url)).post("/api/shops/main/orders", { code });
}

test("a code redeemed in its grace period counts against itself, not the code on screen", async () => {
  await suite.admin.put("/api/shops/main/config", { codeGraceSeconds: 20 });
  // The display must sign in while this code is still the current one.
  const old = await qrWithTimeLeft(suite.host.url, 12_000);
  const display = await newPage(suite.browser, { viewport: { width: 1920, height: 1080 } });
  await signIn(display, suite.host.url, "display", "display");
  await display.locator(`img[data-testid=qr-image][data-code='${old.code}']`).waitFor();
  const early = await redeemAsNewCustomer(old.code);
  assert.equal(early.tokensLeft, 9);

  // The display moves on to the next code by itself when the slot ends (at most 30 s here).
  await display.locator(`img[data-testid=qr-image]:not([data-code='${old.code}'])`).waitFor({ timeout: 40_000 });
  const fresh = await currentQr(suite.host.url);
  assert.equal(await display.getAttribute("img[data-testid=qr-image]", "data-code"), fresh.code);
  await display.locator("[data-testid=tokens-left]", { hasText: "10 drinks left" }).waitFor();

  const late = await redeemAsNewCustomer(old.code);
  assert.equal(late.tokensLeft, 8, "the old code's own count");
  const onScreen = await redeemAsNewCustomer(fresh.code);
  assert.equal(onScreen.tokensLeft, 9);
  // Events arrive in order: showing 9 means the late one was seen and left the count alone.
  await display.locator("[data-testid=tokens-left]", { hasText: "9 drinks left" }).waitFor();
  await display.context().close();
  await suite.admin.put("/api/shops/main/config", { codeGraceSeconds: 0 });
});
