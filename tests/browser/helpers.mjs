// Shared helpers for the browser tests: start the real host, drive the API, launch Chromium.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { before, after, afterEach } from "node:test";
import { chromium } from "playwright-core";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const ARTIFACTS = join(ROOT, "target/browser-artifacts");
export const PINS = { admin: "81726354", barista: "36271845", display: "54637281" };
/** The secrets the test host runs with (spin.toml publishes none). */
export const SECRETS = {
  SPIN_VARIABLE_SIGNING_KEY: "test-signing-key-5c1b9e2f7a4d8036b1e9c2a75f4d0e81",
  SPIN_VARIABLE_ADMIN_PIN: PINS.admin,
  SPIN_VARIABLE_BARISTA_PIN: PINS.barista,
  SPIN_VARIABLE_DISPLAY_PIN: PINS.display,
  SPIN_VARIABLE_SWEEPER_TOKEN: "test-sweeper-token-2f8e61c04b7d",
  SPIN_VARIABLE_METRICS_TOKEN: "test-metrics-token-93ad05e7c1f4",
};

/** A TCP port that was free a moment ago. */
export function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.unref();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** The kv directories made for hosts of this test file, removed when it ends. */
const scratchDirs = [];
process.once("exit", () => scratchDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function scratchDir() {
  const dir = mkdtempSync(join(tmpdir(), "spinpresso-browser-"));
  scratchDirs.push(dir);
  return dir;
}

/**
 * Starts `spinpresso-host up` on `port` (0 = any) with a fresh (or the given) kv directory;
 * `env` overrides the test secrets (e.g. an empty PIN switches that sign-in off).
 * Returns {url, kvDir, stop(), restart()}.
 */
export async function startHost({ port = 0, kvDir = scratchDir(), env = {} } = {}) {
  const host = { kvDir, url: null, child: null, log: [] };
  host.start = async () => {
    const child = spawn(
      join(ROOT, "target/release/spinpresso-host"),
      ["up", "--from", join(ROOT, "spin.toml"), "--listen", `127.0.0.1:${port}`, "--kv-file", join(kvDir, "kv.db"), "--sweep-every", "1"],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...SECRETS, ...env } },
    );
    host.child = child;
    child.stderr.on("data", (chunk) => host.log.push(String(chunk)));
    host.url = await new Promise((done, fail) => {
      let buffer = "";
      // As long as the end-to-end tests allow: a host compiles the components it finds no compiled
      // copy of. One that never serves is killed, or its process would keep the test file running.
      const timer = setTimeout(() => {
        child.removeAllListeners("exit");
        child.kill("SIGKILL");
        fail(new Error(`host did not start within 60 s:\n${host.log.join("")}`));
      }, 60_000);
      child.stdout.on("data", (chunk) => {
        buffer += chunk;
        host.log.push(String(chunk));
        const match = buffer.match(/\[host\] serving (http:\/\/\S+)/);
        if (match) {
          clearTimeout(timer);
          done(match[1]);
        }
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        fail(new Error(`host exited with ${code}:\n${host.log.join("")}`));
      });
    });
    child.removeAllListeners("exit");
    return host.url;
  };
  host.stop = async () => {
    const child = host.child;
    if (!child || child.exitCode !== null) return;
    await new Promise((done) => {
      child.once("exit", done);
      child.kill("SIGTERM");
      setTimeout(() => child.exitCode === null && child.kill("SIGKILL"), 5_000).unref();
    });
  };
  host.restart = async () => {
    await host.stop();
    return host.start();
  };
  await host.start();
  return host;
}

/** A tiny API client with a bearer token. */
export function client(base, token = null) {
  const call = async (method, path, body) => {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (method !== "GET") headers["Content-Type"] = "application/json";
    const response = await fetch(base + path, { method, headers, body: method === "GET" ? undefined : JSON.stringify(body ?? {}) });
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new Error(`${method} ${path} → ${response.status} ${JSON.stringify(data)}`);
      error.status = response.status;
      error.code = data?.error?.code;
      throw error;
    }
    return data;
  };
  return {
    get: (path) => call("GET", path),
    post: (path, body) => call("POST", path, body),
    put: (path, body) => call("PUT", path, body),
  };
}

export async function staff(base, role) {
  const { token } = await client(base).post("/api/staff/login", { pin: PINS[role], role });
  return client(base, token);
}

export async function customer(base) {
  const { token } = await client(base).post("/api/session", {});
  return client(base, token);
}

/** Opens the shop (admin) and applies `config` (partial). */
export async function openShop(base, config = {}, shop = "main") {
  const admin = await staff(base, "admin");
  if (Object.keys(config).length) await admin.put(`/api/shops/${shop}/config`, config);
  await admin.post(`/api/shops/${shop}/open`, {});
  return admin;
}

/** The current QR code as the display sees it: {code, url, slot, slotEndsAt, tokensLeft}. */
export async function currentQr(base, shop = "main") {
  return (await staff(base, "display")).get(`/api/shops/${shop}/qr`);
}

/**
 * The current QR code with at least `marginMs` left in its slot, waiting for the next slot when
 * too little is left: a test that follows one code must not see the display move on halfway.
 */
export async function qrWithTimeLeft(base, marginMs, shop = "main") {
  for (let tries = 0; tries < 2; tries += 1) {
    const qr = await currentQr(base, shop);
    const left = Date.parse(qr.slotEndsAt) - Date.now();
    if (left >= marginMs) return qr;
    await new Promise((r) => setTimeout(r, Math.max(0, left) + 500));
  }
  throw new Error(`no code has ${marginMs} ms left: the rotation is shorter than that`);
}

/** A whole order through the API (for boards that need content): returns the queued order. */
export async function placeOrder(base, { drinkId = "latte", options = { size: "regular", milk: "whole" }, displayName } = {}) {
  const me = await customer(base);
  const { code } = await currentQr(base);
  const body = { code };
  if (displayName) body.displayName = displayName;
  const order = await me.post("/api/shops/main/orders", body);
  return me.put(`/api/orders/${order.id}/drink`, { drinkId, options });
}

/**
 * Debian's headless shell of Chromium when it is there (what scripts/test-deps installs), otherwise
 * its full browser; CHROMIUM=… overrides. The shell is the same engine without the desktop browser
 * around it: the suite ran on it in half the time and half the CPU of the full browser.
 */
export function chromiumPath() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  const shell = "/usr/bin/chromium-headless-shell";
  return existsSync(shell) ? shell : "/usr/bin/chromium";
}

export async function launch() {
  return chromium.launch({
    executablePath: chromiumPath(),
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
}

/**
 * For a test file: before its tests, a host with the shop open and `config` applied, and Chromium;
 * after them, both stopped. Returns `{host, admin, browser}` (filled in by the time tests run).
 * `fixedPort`: a port chosen up front, so `host.restart()` comes back at the same address.
 * `setup(suite)`: more preparation once both run (one hook: Node 20 does not order two root hooks).
 */
export function hostAndBrowser({ config = {}, fixedPort = false, setup = null } = {}) {
  const suite = { host: null, admin: null, browser: null };
  before(async () => {
    suite.host = await startHost({ port: fixedPort ? await freePort() : 0 });
    suite.admin = await openShop(suite.host.url, config);
    suite.browser = await launch();
    await setup?.(suite);
  });
  afterEach((t) => {
    // What the host did last: the first thing to read when a test fails on a machine far away.
    if (!t.passed && suite.host) {
      const lines = suite.host.log.join("").trimEnd().split("\n").slice(-40);
      console.error(`[host log, last ${lines.length} lines, for "${t.name}"]\n${lines.join("\n")}`);
    }
    // Every page of every test keeps to the Content-Security-Policy.
    const violations = takeCspViolations();
    if (violations.length) throw new Error(`Content-Security-Policy violations in "${t.name}":\n${violations.join("\n")}`);
  });
  after(async () => {
    await suite.browser?.close();
    await suite.host?.stop();
  });
  return suite;
}

/** A page in a new context (own cookies and storage); `phone` = 360×740 touch. */
export async function newPage(browser, { phone = false, viewport, locale = "en-US" } = {}) {
  const context = await browser.newContext({
    viewport: viewport ?? (phone ? { width: 360, height: 740 } : { width: 1280, height: 800 }),
    hasTouch: phone,
    isMobile: phone,
    locale,
    // As a viewer who asked for less motion: the display's ring then repaints once a second
    // instead of at every frame, which a headless browser would otherwise render on the CPU.
    reducedMotion: "reduce",
  });
  await watchCsp(context);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (error) => console.error(`[page error] ${error.message}`));
  return page;
}

const cspViolations = [];

/**
 * Records every Content-Security-Policy violation of the context's pages (the browser fires
 * `securitypolicyviolation` for each blocked inline script, style, handler or load).
 */
async function watchCsp(context) {
  await context.exposeBinding("__spinpressoCspViolation", ({ page }, text) => cspViolations.push(`${page.url()}: ${text}`));
  await context.addInitScript(() => {
    document.addEventListener(
      "securitypolicyviolation",
      (e) => window.__spinpressoCspViolation(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile || "page"}:${e.lineNumber}) ${e.sample}`),
      true,
    );
  });
}

/** The violations recorded since the last call (and forgets them). */
export function takeCspViolations() {
  return cspViolations.splice(0);
}

/** A phone (a new page) that opened `url`, a QR code's link. */
export async function phoneAt(browser, url) {
  const phone = await newPage(browser, { phone: true });
  await phone.goto(url);
  return phone;
}

/** A phone that opened `url`, a QR code's link, and started an order. */
export async function startOrder(browser, url) {
  const phone = await phoneAt(browser, url);
  await phone.click("[data-testid=start]");
  return phone;
}

export async function signIn(page, base, app, role) {
  await page.goto(`${base}/${app}/`);
  await page.fill("#pin", PINS[role]);
  await page.click("form.signin button[type=submit]");
}

/** Marks the page so a test can check later that it was never reloaded. */
export async function markPage(page) {
  await page.evaluate(() => {
    window.__notReloaded = true;
  });
}

export async function assertNotReloaded(page) {
  if (!(await page.evaluate(() => window.__notReloaded === true))) throw new Error(`${page.url()} was reloaded`);
}

export function artifactsDir() {
  mkdirSync(ARTIFACTS, { recursive: true });
  return ARTIFACTS;
}

/** Polls `check` until it returns a truthy value (or throws after `timeout` ms). */
export async function eventually(check, { timeout = 15_000, interval = 200, message = "condition" } = {}) {
  const until = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${message}${last ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

const AXE = join(ROOT, "tests/browser/node_modules/axe-core/axe.min.js");

/**
 * Runs axe-core on the page (WCAG 2.x A/AA rules and best practices, colour contrast included) and
 * returns the violations of impact serious or critical, as readable lines.
 */
export async function axeProblems(page, { exclude = [] } = {}) {
  // Evaluated from outside the page, not added as a <script>: the pages' CSP allows no inline script.
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.evaluate(readFileSync(AXE, "utf8"));
  const violations = await page.evaluate(async (exclude) => {
    const context = exclude.length ? { exclude: exclude.map((s) => [s]) } : document;
    const result = await window.axe.run(context, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary}`) }));
  }, exclude);
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.impact} ${v.id} (${v.help}):\n    ${v.nodes.join("\n    ")}`);
}
