// The display signs in as `display`, which may read only the QR code and the public board: it must
// stay live (drinks left, new orders, closed and open again) without ever touching the staff stream.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hostAndBrowser, staff, qrWithTimeLeft, placeOrder, newPage, signIn, markPage, assertNotReloaded } from "./helpers.mjs";

const suite = hostAndBrowser();

test("the display stays live on the public board stream alone", async () => {
  const base = suite.host.url;
  // The code on screen must still be the current one when the order counts against it.
  await qrWithTimeLeft(base, 40_000);
  const display = await newPage(suite.browser, { viewport: { width: 1920, height: 1080 } });
  const requests = [];
  display.on("request", (request) => requests.push(request.url()));
  // No access at all, as for a display credential: a request there would fail.
  await display.route("**/events/staff**", (route) => route.abort());
  const login = display.waitForResponse((r) => r.url().endsWith("/api/staff/login"));
  await signIn(display, base, "display", "display");
  const signedIn = await login;
  assert.equal(JSON.parse(signedIn.request().postData()).role, "display");
  const { token, role } = await signedIn.json();
  assert.equal(role, "display");
  // The server agrees: the display's credential is refused on the staff stream.
  const refused = await fetch(`${base}/api/shops/main/events/staff`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(refused.status, 403);
  await refused.body?.cancel();

  await display.locator("img[data-testid=qr-image]").waitFor();
  await display.locator("#conn.conn-live").waitFor();
  await display.locator("[data-testid=tokens-left]", { hasText: "10 drinks left" }).waitFor();
  await markPage(display);

  const order = await placeOrder(base, { displayName: "Rui" });
  await display.locator("[data-testid=tokens-left]", { hasText: "9 drinks left" }).waitFor();
  await display.locator(`[data-testid=preparing] .ticket[data-number='${order.number}']`, { hasText: "Rui" }).waitFor();
  const tablet = await staff(base, "barista");
  await tablet.post(`/api/orders/${order.id}/claim`, {});
  await display.locator(`[data-testid=preparing] .ticket[data-number='${order.number}'] .making`).waitFor();
  await tablet.post(`/api/orders/${order.id}/complete`, {});
  await display.locator(`[data-testid=ready] .ticket[data-number='${order.number}']`).waitFor();

  // Closed and open again, live; the code comes back with it.
  await tablet.post("/api/shops/main/close", {});
  await display.locator("[data-testid=closed]").waitFor();
  await tablet.post("/api/shops/main/open", {});
  await display.locator("img[data-testid=qr-image]").waitFor();
  await display.locator("[data-testid=tokens-left]").waitFor();

  await assertNotReloaded(display);
  assert.deepEqual(requests.filter((url) => url.includes("/events/staff")), [], "never asks for the staff stream");
  assert.ok(requests.some((url) => new URL(url).pathname === "/api/shops/main/events/board"), "follows the board stream");
  await display.context().close();
});
