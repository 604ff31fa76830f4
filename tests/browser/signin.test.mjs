// Staff sign-in and sign-out on the tablet and the admin: each app signs in for its role, "Sign out"
// revokes the token on the server, and wrong PINs, too many of them and a switched-off sign-in each
// have their message.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hostAndBrowser, startHost, client, placeOrder, newPage, PINS } from "./helpers.mjs";

const suite = hostAndBrowser({ setup: async ({ host }) => placeOrder(host.url, { displayName: "Ana" }) });

/** Signs in through the app's form; returns the token and the role it asked for. */
async function signInCapturing(page, app, role) {
  await page.goto(`${suite.host.url}/${app}/`);
  await page.fill("#pin", PINS[role]);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/api/staff/login")),
    page.click("form.signin button[type=submit]"),
  ]);
  assert.equal(response.status(), 200);
  return { token: (await response.json()).token, asked: JSON.parse(response.request().postData()).role };
}

async function staffCookie(page) {
  return (await page.context().cookies()).find((c) => c.name === "sp_staff" && c.value !== "");
}

for (const [app, role, ready, staffApi] of [
  ["barista", "barista", "[data-testid=lane-new] li", "/api/shops/main/orders?state=queued"],
  ["admin", "admin", "#menu-json", "/api/shops"],
]) {
  test(`signing out of the ${app} app revokes its token on the server`, async () => {
    const page = await newPage(suite.browser);
    const { token, asked } = await signInCapturing(page, app, role);
    assert.equal(asked, role, "the app signs in for its own role");
    await page.locator(ready).first().waitFor();
    assert.ok(await staffCookie(page), "signed in with a cookie");
    const before = await client(suite.host.url, token).get(staffApi);
    assert.ok(before);

    await page.click("[data-testid=sign-out]");
    const notice = page.locator("[data-testid=signin-notice]");
    await notice.waitFor();
    assert.match(await notice.textContent(), /You are signed out/);
    await page.locator("#pin").waitFor();
    assert.equal(await staffCookie(page), undefined, "the cookie is cleared");
    const after = await client(suite.host.url, token).get(staffApi).catch((error) => error);
    assert.equal(after.status, 401, `the old token is refused: ${after.message}`);
    // A reload stays signed out: nothing is left on this device.
    await page.reload();
    await page.locator("#pin").waitFor();
    assert.equal(await page.locator(ready).count(), 0);
    await page.context().close();
  });
}

test("when sign-out cannot reach the server, the tablet says so and stays signed in", async () => {
  const page = await newPage(suite.browser);
  const { token } = await signInCapturing(page, "barista", "barista");
  await page.locator("[data-testid=lane-new] li").first().waitFor();
  await page.route("**/api/staff/logout", (route) => route.abort());
  await page.click("[data-testid=sign-out]");
  await page.locator("[data-testid=message]", { hasText: "Could not sign out" }).waitFor();
  assert.equal(await page.locator("#pin").count(), 0, "still on the board");
  assert.ok(await client(suite.host.url, token).get("/api/shops/main/orders?state=queued"), "the token still works");
  // Once the server answers again, signing out works.
  await page.unroute("**/api/staff/logout");
  await page.click("[data-testid=sign-out]");
  await page.locator("[data-testid=signin-notice]").waitFor();
  const after = await client(suite.host.url, token).get("/api/shops/main/orders?state=queued").catch((error) => error);
  assert.equal(after.status, 401);
  await page.context().close();
});

test("the sign-in message says so when a role's sign-in is switched off", async () => {
  // No admin PIN: nobody can sign in as admin (lower roles' PINs never grant it).
  const host = await startHost({ env: { SPIN_VARIABLE_ADMIN_PIN: "" } });
  try {
    const page = await newPage(suite.browser);
    await page.goto(`${host.url}/admin/`);
    await page.fill("#pin", PINS.admin);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith("/api/staff/login")),
      page.click("form.signin button[type=submit]"),
    ]);
    assert.equal(response.status(), 503);
    await page.locator("[data-testid=signin-error]", { hasText: "switched off for this role" }).waitFor();
    await page.selectOption("[data-testid=language]", "pt-BR");
    await page.locator("form.signin button[type=submit]", { hasText: "Entrar" }).waitFor();
    await page.fill("#pin", PINS.admin);
    await page.click("form.signin button[type=submit]");
    await page.locator("[data-testid=signin-error]", { hasText: "desligada" }).waitFor();
    await page.context().close();
  } finally {
    await host.stop();
  }
});

// Last in this file: it pauses sign-in from this address for a minute.
test("a wrong PIN, then too many, each have their message", async () => {
  const page = await newPage(suite.browser);
  await page.goto(`${suite.host.url}/admin/`);
  const statuses = [];
  for (let tries = 0; tries < 8 && !statuses.includes(429); tries += 1) {
    await page.fill("#pin", `9${String(tries).padStart(7, "0")}`);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith("/api/staff/login")),
      page.click("form.signin button[type=submit]"),
    ]);
    statuses.push(response.status());
    const expected = response.status() === 429 ? "Too many wrong PINs" : "Wrong PIN";
    await page.locator("[data-testid=signin-error]", { hasText: expected }).waitFor();
  }
  assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429], "five wrong PINs a minute, then a pause");
  await page.context().close();
});
