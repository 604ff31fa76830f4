// The display's count when the code before is redeemed in its grace period. Waits for a code's
// slot to end (up to 30 s), so it has a file, and so a host, of its own: the other files run
// beside it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hostAndBrowser, currentQr, qrWithTimeLeft, customer, newPage, signIn } from "./helpers.mjs";

const suite = hostAndBrowser({ config: { codeRotationSeconds: 30, codeGraceSeconds: 20 } });

/** A new customer redeems `code` over the API; returns the order with `tokensLeft`. */
async function redeemAsNewCustomer(code) {
  return (await customer(suite.host.url)).post("/api/shops/main/orders", { code });
}

test("a code redeemed in its grace period counts against itself, not the code on screen", async () => {
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
});
