// The admin dashboard: a scripted mini-day through the API shows up in the figures and charts,
// stays live, switches days with the picker, links the day's CSV; the order robot starts and stops.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hostAndBrowser, staff, customer, currentQr, placeOrder, newPage, signIn, eventually } from "./helpers.mjs";

const suite = hostAndBrowser();

async function figure(page, key) {
  return (await page.textContent(`[data-testid=fig-${key}] .value`)).trim();
}

/** The day before `day` (YYYY-MM-DD). */
function dayBefore(day) {
  return new Date(Date.parse(`${day}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
}

test("the dashboard shows a scripted mini-day, live, and the day picker switches to an empty day", async () => {
  const barista = await staff(suite.host.url, "barista");
  const latte = await placeOrder(suite.host.url, { drinkId: "latte", options: { size: "regular", milk: "oat" } });
  const cappuccino = await placeOrder(suite.host.url, { drinkId: "cappuccino", options: { size: "large", milk: "whole" } });
  for (const order of [latte, cappuccino]) {
    await barista.post(`/api/orders/${order.id}/claim`, {});
    await barista.post(`/api/orders/${order.id}/complete`, {});
  }
  // The third customer cancels their espresso.
  const me = await customer(suite.host.url);
  const { code } = await currentQr(suite.host.url);
  const started = await me.post("/api/shops/main/orders", { code });
  await me.put(`/api/orders/${started.id}/drink`, { drinkId: "espresso", options: {} });
  await me.post(`/api/orders/${started.id}/cancel`, {});

  const page = await newPage(suite.browser);
  await signIn(page, suite.host.url, "admin", "admin");
  const dashboard = page.locator("[data-testid=dashboard]");
  await dashboard.locator("[data-testid=fig-started] .value", { hasText: "3" }).waitFor();
  assert.equal(await figure(page, "submitted"), "3");
  assert.equal(await figure(page, "completed"), "2");
  assert.equal(await figure(page, "cancelled"), "1");
  assert.match(await page.textContent("[data-testid=fig-cancelled] .help"), /Customers 1 · baristas 0 · organisers 0/);
  assert.equal(await figure(page, "timed-out"), "0");
  assert.match(await figure(page, "wait"), /^\d+:\d\d$/, "a median wait once drinks were completed");

  // One bar per drink, with its count, and the numbers as text for screen readers.
  const bars = page.locator("[data-testid=chart-drinks] g.row");
  assert.equal(await bars.count(), 3);
  assert.equal(await page.locator("[data-testid=chart-drinks] rect.bar").count(), 3);
  for (const drink of ["latte", "cappuccino", "espresso"]) {
    assert.equal(await page.getAttribute(`[data-testid=chart-drinks] g[data-item=${drink}]`, "data-value"), "1");
  }
  assert.match(await page.textContent("[data-testid=chart-drinks] desc"), /Latte: 1/);
  assert.equal(await page.getAttribute("[data-testid=chart-drinks] svg", "role"), "img");
  assert.equal(await page.textContent("[data-testid=chart-drinks] svg title"), "Drinks by type");

  // 24 hours, labelled from the business day's start (05:00 by default), three orders in all.
  const hours = page.locator("[data-testid=chart-per-hour] g.col");
  assert.equal(await hours.count(), 24);
  assert.equal(await hours.first().getAttribute("data-hour"), "05:00");
  assert.equal(await hours.last().getAttribute("data-hour"), "04:00");
  const perHour = await hours.evaluateAll((cols) => cols.reduce((sum, col) => sum + Number(col.dataset.value), 0));
  assert.equal(perHour, 3);
  assert.match(await page.textContent("[data-testid=chart-per-hour] desc"), /05:00–06:00: \d+ orders?/);
  assert.equal(await page.getAttribute("[data-testid=chart-problems] g[data-item=cancelled-customer]", "data-value"), "1");
  assert.equal(await page.locator("[data-testid=chart-wait] g.row").count(), 3);

  // Live: a new order shows up without a reload.
  await page.locator("[data-testid=dash-live]", { hasText: "Live" }).waitFor();
  await placeOrder(suite.host.url, { drinkId: "mocha", options: { size: "small", milk: "soy" } });
  await dashboard.locator("[data-testid=fig-started] .value", { hasText: "4" }).waitFor();
  await page.locator("[data-testid=chart-drinks] g[data-item=mocha]").waitFor();

  // The day's CSV: one row per order of the day.
  const today = await page.inputValue("[data-testid=dash-day]");
  const href = await page.getAttribute("[data-testid=dash-csv]", "href");
  assert.equal(href, `/api/shops/main/orders.csv?day=${today}`);
  const csv = await page.evaluate(async (url) => (await fetch(url)).text(), href);
  assert.match(csv.split("\n")[0], /^number,id,state,drink/);
  assert.equal(csv.trim().split("\n").length, 1 + 4);

  // The day before is empty, and not live.
  const yesterday = dayBefore(today);
  await page.fill("[data-testid=dash-day]", yesterday);
  await page.locator("[data-testid=dash-live]", { hasText: "not live" }).waitFor();
  await dashboard.locator("[data-testid=fig-started] .value", { hasText: "0" }).waitFor();
  assert.equal(await figure(page, "completed"), "0");
  assert.equal(await figure(page, "wait"), "—");
  assert.equal(await page.locator("[data-testid=chart-drinks] rect.bar").count(), 0);
  assert.match(await page.textContent("[data-testid=chart-drinks]"), /No drinks were ordered on this day/);
  assert.equal(await page.getAttribute("[data-testid=dash-csv]", "href"), `/api/shops/main/orders.csv?day=${yesterday}`);
  // Back to today.
  await page.click("button[data-key=dash-today]");
  await dashboard.locator("[data-testid=fig-started] .value", { hasText: "4" }).waitFor();
  await page.context().close();
});

test("the robot panel starts and stops the order robot, and its orders reach the dashboard", async () => {
  const page = await newPage(suite.browser);
  await signIn(page, suite.host.url, "admin", "admin");
  const state = page.locator("[data-testid=robot-state]");
  await state.waitFor();
  assert.equal(await state.getAttribute("data-running"), "false");
  assert.equal(await page.isDisabled("[data-testid=robot-stop]"), true);
  const before = Number(await figure(page, "started"));

  await page.fill("#robot-ordersPerMinute", "120");
  await page.fill("#robot-minutes", "1");
  await page.fill("#robot-delayMin", "1");
  await page.fill("#robot-delayMax", "2");
  await page.fill("#robot-cancelPercent", "0");
  await page.click("[data-testid=robot-start]");
  await page.locator("[data-testid=robot-state][data-running=true]", { hasText: "Running: 120 orders a minute" }).waitFor();
  const robot = await suite.admin.get("/api/shops/main/robot");
  assert.equal(robot.running, true);
  assert.deepEqual(robot.baristaDelaySeconds, [1, 2]);
  assert.equal(robot.untilMs - robot.startedMs, 60_000);

  // It orders on each sweep (every second here); the figures follow live.
  await eventually(async () => Number(await figure(page, "started")) > before, { message: "robot orders on the dashboard" });
  await page.click("[data-testid=robot-stop]");
  await page.locator("[data-testid=robot-state][data-running=false]").waitFor();
  assert.equal((await suite.admin.get("/api/shops/main/robot")).running, false);
  assert.equal(await page.isDisabled("[data-testid=robot-stop]"), true);
  await page.context().close();
});
