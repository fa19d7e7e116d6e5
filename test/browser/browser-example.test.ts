import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBrowserExample } from "../../examples/browser/build.js";
import { serveBrowserExample, type ExampleServer } from "../../examples/browser/serve.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";

/** Debian's chromium (.ci/run installs it); playwright's own browser download cannot work here. */
const CHROMIUM = "/usr/bin/chromium";
const ORG = "org-browser";

/** The part of a DOM element the page functions use (tsconfig has no DOM lib, so `Element` is unresolved). */
type PageElement = { getAttribute(name: string): string | null };

let api: TestServer;
let allowedSite: ExampleServer;
let refusedSite: ExampleServer;
let browser: Browser;
let bundleDir: string;
const dashboardIds: Record<string, string> = {};

beforeAll(async () => {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`).toBe(true);
  bundleDir = await mkdtemp(join(tmpdir(), "dashboard-browser-example-"));
  await buildBrowserExample(bundleDir);

  // Both pages get a valid caller token: only CORS stands between the refused one and the API.
  const config = async () => ({
    apiBaseUrl: api.baseUrl,
    callerToken: await callerToken({ org: ORG, admin: true, sub: "web-user" }),
  });
  allowedSite = await serveBrowserExample({ dir: bundleDir, config });
  // "localhost" vs "127.0.0.1": another origin on the same machine.
  refusedSite = await serveBrowserExample({ dir: bundleDir, host: "localhost", config });
  api = await startTestServer({ CORS_ALLOWED_ORIGINS: allowedSite.origin });

  const admin = `Bearer ${await callerToken({ org: ORG, admin: true })}`;
  for (const tenant of ["tenant-east", "tenant-west"]) {
    const res = await fetch(`${api.baseUrl}/api/v1/dashboards`, {
      method: "POST",
      headers: { authorization: admin, "content-type": "application/json" },
      body: JSON.stringify({ tenant_id: tenant, workspace_id: "ws-1", name: `Sales ${tenant}` }),
    });
    expect(res.status).toBe(201);
    dashboardIds[tenant] = ((await res.json()) as { data: { id: string } }).data.id;
  }

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await allowedSite?.close();
  await refusedSite?.close();
  await api?.stop();
  if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
});

/** Every request the page sends to the API, as method and RPC path. */
function recordApiRequests(page: Page): string[] {
  const seen: string[] = [];
  page.on("request", (r) => {
    if (r.url().startsWith(api.baseUrl)) seen.push(`${r.method()} ${new URL(r.url()).pathname}`);
  });
  return seen;
}

describe("the example page in headless Chromium", () => {
  it("loads from its own origin, lists the organization's dashboards and mints an iframe token across origins", async () => {
    const page = await browser.newPage();
    try {
      const apiRequests = recordApiRequests(page);
      await page.goto(`${allowedSite.origin}/`);
      expect(new URL(page.url()).origin).not.toBe(new URL(api.baseUrl).origin);

      const items = page.locator("#dashboards li");
      await expect.poll(() => items.count(), { timeout: 15_000 }).toBe(2);
      expect(await page.locator("#status").textContent()).toBe("2 dashboard(s)");
      expect(await items.evaluateAll((els: PageElement[]) => els.map((e) => e.getAttribute("data-tenant-id")))).toEqual(
        ["tenant-east", "tenant-west"],
      );

      await items.nth(1).locator("button").click();
      const url = page.locator("#iframe-url");
      await expect
        .poll(() => url.textContent(), { timeout: 15_000 })
        .toMatch(/^https:\/\/embed\.example\.com\/dashboards\//);
      const iframeUrl = new URL((await url.textContent())!);
      expect(iframeUrl.pathname).toBe(`/dashboards/${dashboardIds["tenant-west"]}`);
      const claims = decodeJwt(iframeUrl.searchParams.get("token")!);
      expect(claims).toMatchObject({
        organization_id: ORG,
        tenant_id: "tenant-west",
        dashboard_id: dashboardIds["tenant-west"],
        sub: "web-user",
      });
      expect(await url.getAttribute("data-expires-at")).toBe(String(claims.exp));

      // The read went as a Connect GET (cacheable), the mint as a POST; both were preflighted.
      expect(apiRequests).toContain("GET /dashboard.v1.DashboardService/ListDashboards");
      expect(apiRequests).toContain("POST /dashboard.v1.DashboardService/CreateIframeToken");
    } finally {
      await page.close();
    }
  });

  it("is refused by CORS when served from an origin that is not allowed", async () => {
    const page = await browser.newPage();
    try {
      const console: string[] = [];
      page.on("console", (m) => console.push(m.text()));
      await page.goto(`${refusedSite.origin}/`);
      const status = page.locator("#status");
      await expect.poll(() => status.textContent(), { timeout: 15_000 }).toMatch(/^Could not list dashboards/);
      expect(await status.getAttribute("class")).toBe("error");
      expect(await page.locator("#dashboards li").count()).toBe(0);
      // Chromium names the reason in the console: the preflight was refused.
      await expect.poll(() => console.join("\n"), { timeout: 5_000 }).toMatch(/blocked by CORS policy/);
    } finally {
      await page.close();
    }
  });
});
