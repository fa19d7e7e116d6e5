/**
 * The embed SDK, end to end, on a fresh clone:
 *   npm run demo                                   # prints the one URL to open
 *   npm run demo -- --screenshot docs/embed-demo.png   # headless Chromium, then exits
 * The service runs on its embedded defaults (PGlite and the development secret in DATA_DIR), a sample
 * host page on one origin and a sample renderer on another (examples/embed/).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { SignJWT } from "jose";
import { pino } from "pino";
import { startApp } from "../src/app.js";
import { loadOrCreateDevSecret } from "../src/auth/dev-secret.js";
import { loadConfig } from "../src/config/config.js";
import { buildEmbedExample } from "../examples/embed/build.js";
import { serveEmbedExample } from "../examples/embed/serve.js";

const { values } = parseArgs({
  options: {
    screenshot: { type: "string" },
    port: { type: "string", default: "8080" },
    ttl: { type: "string", default: "20" },
  },
});
const ORG = "demo-org";
const TENANT = "tenant-demo";
const screenshot = values.screenshot;

const dir = await mkdtemp(join(tmpdir(), "dashboard-embed-demo-"));
await buildEmbedExample(dir);
let apiBaseUrl = "";
let secret = "";
const callerToken = () =>
  new SignJWT({ organization_id: ORG, roles: ["admin"], tenant_ids: [] })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject("demo-backend")
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(secret));
const site = await serveEmbedExample({
  dir,
  apiBaseUrl: () => apiBaseUrl,
  callerToken,
  hostHost: "127.0.0.1",
  hostPort: screenshot ? 0 : 5180,
  rendererHost: "localhost",
  rendererPort: screenshot ? 0 : 5181,
});
const config = loadConfig({
  ...process.env,
  PORT: screenshot ? "0" : values.port,
  HOST: "127.0.0.1",
  CORS_RENDERER_ORIGINS: site.rendererOrigin,
  LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
});
const app = await startApp(config, pino({ level: config.logLevel }));
apiBaseUrl = `http://127.0.0.1:${app.server.port}`;
if (config.auth.mode === "development") secret = await loadOrCreateDevSecret(config.auth.secretFile);
else if (config.auth.mode === "secret") secret = config.auth.secret;
else throw new Error("the demo signs its backend's caller token with the development secret or AUTH_JWT_SECRET");

// The tenant's dashboard, created once (the embedded database keeps it between runs).
const api = async (method: string, body: unknown) =>
  fetch(`${apiBaseUrl}/dashboard.v1.DashboardService/${method}`, {
    method: "POST",
    headers: { authorization: `Bearer ${await callerToken()}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
if ((await api("GetDashboard", { tenantId: TENANT })).status === 404) {
  await api("CreateDashboard", { tenantId: TENANT, workspaceId: "ws-1", name: "Revenue by region" });
}
const url = `${site.hostOrigin}/?tenant=${TENANT}&ttl=${values.ttl}&status=5000`;

const stop = async () => {
  await site.close();
  await app.stop(1_000);
  await rm(dir, { recursive: true, force: true });
};
if (!screenshot) {
  console.log(
    `\n  Open ${url}\n  (service ${apiBaseUrl}, host ${site.hostOrigin}, renderer ${site.rendererOrigin}; Ctrl-C stops)\n`,
  );
  const onSignal = () => {
    stop()
      .then(() => process.exit(0))
      .catch(() => process.exit(1));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
} else {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 720 } });
    await page.goto(url);
    // Two refreshes in, so the event list shows the embed staying alive.
    await page.waitForFunction(
      "(window.embedEvents ?? []).filter((e) => e.type === 'token-refreshed').length >= 2",
      undefined,
      { timeout: 60_000 },
    );
    await page.frameLocator("iframe").locator('#state[data-state="ok"]').waitFor({ timeout: 15_000 });
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`wrote ${screenshot}`);
  } finally {
    await browser.close();
    await stop();
  }
}
