// Browser test driver (run by tests/mcp_app_browser.rs): bundles host.js with esbuild,
// serves the host page with an /mcp proxy to a running `referral-mcp serve`, opens it
// in headless Chromium (playwright-core), approves the first held referral in the app,
// checks that an error (a conflict) shows in its row, rejects the third with a hostile
// reason typed into the inline field (markup with an onerror handler and a right-to-left
// override) and checks it is shown as text, saves a screenshot and prints one JSON line:
// {"approved": id, "conflicted": id, "rejected": id, "reason": typed, "calls": [...]}.
//
// env: REFERRAL_BASE (server root), REFERRAL_API_KEY, CHROMIUM (executable),
//      NODE_PATH_DIR (node_modules with the packages), SCREENSHOT (png path).
import http from "node:http";
import path from "node:path";
import fs from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = process.env.NODE_PATH_DIR;
const require = createRequire(path.join(modules, "noop.js"));
const esbuild = require("esbuild");
const { chromium } = require("playwright-core");
const base = process.env.REFERRAL_BASE;
const key = process.env.REFERRAL_API_KEY;

const bundle = await esbuild.build({
  entryPoints: [path.join(here, "host.js")],
  bundle: true,
  format: "esm",
  platform: "browser",
  write: false,
  nodePaths: [modules],
  logLevel: "error",
});
const hostJs = bundle.outputFiles[0].text;
const hostHtml = fs.readFileSync(path.join(here, "host.html"), "utf8");

// The host's backend: serves the page and forwards MCP with the API key.
const server = http.createServer(async (req, res) => {
  try {
    if (req.url === "/" || req.url === "/host.html") {
      res.writeHead(200, { "content-type": "text/html" }).end(hostHtml);
    } else if (req.url === "/favicon.ico") {
      res.writeHead(204).end();
    } else if (req.url === "/host.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(hostJs);
    } else if (req.url.startsWith("/mcp")) {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const headers = { "x-api-key": key };
      for (const h of ["content-type", "accept", "mcp-session-id", "mcp-protocol-version", "last-event-id"]) {
        if (req.headers[h]) headers[h] = req.headers[h];
      }
      const r = await fetch(base + "/mcp", {
        method: req.method,
        headers,
        body: ["GET", "HEAD", "DELETE"].includes(req.method) ? undefined : Buffer.concat(chunks),
      });
      const out = {};
      for (const h of ["content-type", "mcp-session-id"]) if (r.headers.get(h)) out[h] = r.headers.get(h);
      res.writeHead(r.status, out);
      if (r.body) for await (const c of r.body) res.write(c);
      res.end();
    } else {
      res.writeHead(404).end();
    }
  } catch (e) {
    if (!res.headersSent) res.writeHead(502);
    res.end(String(e));
  }
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const hostUrl = `http://127.0.0.1:${server.address().port}/host.html`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
// Script errors in the host or the View. The browser's own "Failed to load resource"
// lines are left out: the MCP client's optional GET /mcp stream gets a 405 from a
// stateless server, as the spec allows.
const scriptErrors = (lines) =>
  lines.filter((l) => (l.startsWith("error") || l.startsWith("pageerror")) && !l.includes("Failed to load resource"));
let page;
const fail = async (msg) => {
  console.error(msg);
  if (page) {
    const shot = process.env.SCREENSHOT.replace(/\.png$/, "-failed.png");
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    console.error("screenshot of the failure: " + shot);
  }
  await browser.close();
  server.close();
  process.exit(1);
};
try {
  page = await browser.newPage({ viewport: { width: 820, height: 900 }, deviceScaleFactor: 1 });
  const consoleLines = [];
  page.on("console", (m) => consoleLines.push(m.type() + ": " + m.text()));
  page.on("pageerror", (e) => consoleLines.push("pageerror: " + e));
  // Any request that leaves the host's own origin is a failure of self-containment.
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(`http://127.0.0.1:${server.address().port}/`) && !r.url().startsWith("about:") && !r.url().startsWith("data:")) foreign.push(r.url()); });
  await page.goto(hostUrl);
  await page.waitForFunction(() => window.__host && (window.__host.ready || window.__host.errors.length), null, { timeout: 20000 });
  const hostErrors = await page.evaluate(() => window.__host.errors);
  if (hostErrors.length) await fail("host failed: " + hostErrors.join("\n"));

  const app = page.frameLocator("iframe#app");
  const rows = app.locator("section.row");
  await rows.first().waitFor({ timeout: 20000 });
  // Review reasons arrive through get_referral calls the app makes via the bridge.
  await app.locator("ul.reasons .reason-code").first().waitFor({ timeout: 20000 });
  const ids = await rows.evaluateAll((rs) => rs.map((r) => Number(r.dataset.id)));
  if (ids.length < 3) await fail("expected at least three held referrals, got " + JSON.stringify(ids));
  const [approveId, conflictId, rejectId] = ids;

  // Someone else decides the second one first (over REST): the app must show the conflict.
  const rest = await fetch(`${base}/admin/referrals/${conflictId}/reject`, {
    method: "POST",
    headers: { "x-api-key": key, "content-type": "application/json" },
    body: JSON.stringify({ reason: "decided elsewhere (browser test)" }),
  });
  if (!rest.ok) await fail("REST reject failed: " + rest.status + " " + (await rest.text()));

  await app.locator(`section.row[data-id="${approveId}"] button.approve`).click();
  await app.locator(`section.row[data-id="${approveId}"] .outcome.done`).waitFor({ timeout: 20000 });
  await app.locator(`section.row[data-id="${conflictId}"] button.approve`).click();
  await app.locator(`section.row[data-id="${conflictId}"] .error`).waitFor({ timeout: 20000 });
  const conflictText = await app.locator(`section.row[data-id="${conflictId}"] .error`).textContent();
  if (!conflictText.startsWith("conflict")) await fail("expected a conflict in the row, got: " + conflictText);

  // Reject through the UI with a hostile reason: markup that would run script if it were
  // ever parsed as HTML, and a right-to-left override that would reorder what follows.
  const marker = '<img src=x onerror="window.__pwned=1">';
  const typed = marker + " same device \u202Eexe.tnemyap";
  const rejectRow = app.locator(`section.row[data-id="${rejectId}"]`);
  await rejectRow.locator("button.reject").click();
  const reasonBox = rejectRow.locator('input[aria-label="Reject reason"]');
  await reasonBox.waitFor({ timeout: 20000 });
  await reasonBox.pressSequentially(typed);
  const inField = await reasonBox.inputValue();
  if (inField !== typed) await fail("the reason field holds " + JSON.stringify(inField));
  await rejectRow.locator("button", { hasText: "Confirm reject" }).click();
  await rejectRow.locator(".outcome.done").waitFor({ timeout: 20000 });
  // The row re-renders with the decision read back from the audit trail.
  const shown = rejectRow.locator(".decision .decision-reason");
  await shown.waitFor({ timeout: 20000 });
  await app.locator(`section.row[data-id="${conflictId}"] .decision .decision-reason`).waitFor({ timeout: 20000 });
  await page.waitForTimeout(500); // time for an error event, had an <img> been made
  const frame = await (await page.$("iframe#app")).contentFrame();
  const hostile = await frame.evaluate((marker) => {
    const q = document.querySelector(".row .decision-reason");
    const rows = [...document.querySelectorAll("section.row")];
    const reasonEls = rows.map((r) => r.querySelector(".decision-reason")).filter(Boolean);
    const mine = reasonEls.find((e) => e.textContent.includes(marker));
    const rect = mine && mine.getBoundingClientRect();
    return {
      pwned: typeof window.__pwned,
      imgs: document.querySelectorAll("img").length,
      text: mine ? mine.textContent : null,
      visible: !!(rect && rect.width > 0 && rect.height > 0 && getComputedStyle(mine).visibility === "visible"),
      bidiInDom: /[\u202A-\u202E\u2066-\u2069]/.test(document.body.textContent),
      any: !!q,
    };
  }, marker);
  hostile.hostPwned = await page.evaluate(() => typeof window.__pwned);
  hostile.hostImgs = await page.evaluate(() => document.querySelectorAll("img").length);
  hostile.rendered = await shown.textContent();
  const rejectOutcome = await rejectRow.locator(".outcome").textContent();
  const rejectDecision = await rejectRow.locator(".decision").textContent();
  const conflictDecision = await app.locator(`section.row[data-id="${conflictId}"] .decision`).textContent();

  fs.mkdirSync(path.dirname(process.env.SCREENSHOT), { recursive: true });
  await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  const calls = await page.evaluate(() => window.__host.calls);
  const csp = await page.evaluate(() => window.__host.csp);
  const conflictPill = await app.locator(`section.row[data-id="${conflictId}"] .status`).textContent();
  const held = await app.locator("#status").textContent();
  const outcome = await app.locator(`section.row[data-id="${approveId}"] .outcome`).textContent();
  console.log(JSON.stringify({ approved: approveId, conflicted: conflictId, rejected: rejectId, reason: typed, hostile, rejectOutcome, rejectDecision, conflictDecision, outcome, conflict: conflictText, conflictPill, held, rows: ids.length, calls, csp, foreign, console: scriptErrors(consoleLines) }));
} catch (e) {
  await fail("browser test failed: " + (e && e.stack || e));
}
await browser.close();
server.close();
