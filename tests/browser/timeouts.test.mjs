// Timeouts, as the phone shows them: a customer who does not finish ordering, and a drink no
// barista makes. Each waits about 10 s for the sweeper, so they have a file (and a host) of their
// own that runs beside the others.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hostAndBrowser, currentQr, startOrder } from "./helpers.mjs";

const suite = hostAndBrowser();

/** A phone that scanned the current code and started an order. */
async function phoneOrdering() {
  const { url } = await currentQr(suite.host.url);
  return startOrder(suite.browser, url);
}

test("a customer who runs out of time sees why", async () => {
  await suite.admin.put("/api/shops/main/config", { customerTimeoutSeconds: 10 });
  const phone = await phoneOrdering();
  await phone.locator("[data-testid=countdown]").waitFor();
  await phone.locator("[data-screen=status][data-state=timed_out]").waitFor({ timeout: 20_000 });
  assert.match(await phone.textContent("[data-testid=status]"), /Having trouble deciding/);
  await phone.context().close();
  await suite.admin.put("/api/shops/main/config", { customerTimeoutSeconds: 300 });
});

test("a drink the baristas never make times out, and the phone apologises", async () => {
  await suite.admin.put("/api/shops/main/config", { baristaTimeoutSeconds: 10 });
  const phone = await phoneOrdering();
  await phone.click("[data-drink=double-espresso]");
  await phone.click("[data-testid=submit]");
  await phone.locator("[data-screen=status][data-state=queued]").waitFor();
  await phone.locator("[data-screen=status][data-state=timed_out]").waitFor({ timeout: 20_000 });
  assert.match(await phone.textContent("[data-testid=status]"), /our baristas might have missed your coffee/);
  await phone.locator("[data-testid=journey] li[data-type='OrderProcessor.OrderTimeOut']", { hasText: "It was not made in time" }).waitFor();
  await phone.context().close();
  await suite.admin.put("/api/shops/main/config", { baristaTimeoutSeconds: 900 });
});
