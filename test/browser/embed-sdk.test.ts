import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuditAction } from "../../gen/dashboard/v1/audit_event_pb.js";
import { chromium, type Browser, type BrowserContext, type Page, type Request } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildEmbedExample } from "../../examples/embed/build.js";
import { serveEmbedExample, type EmbedExample } from "../../examples/embed/serve.js";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";

/**
 * The SDK in Debian's Chromium, on three origins: the host page
 * (127.0.0.1:A), the renderer (localhost:B) and the service (127.0.0.1:C),
 * plus an attacker's page (localhost:D). Waits are for events in the pages,
 * never for a length of time.
 */
const CHROMIUM = "/usr/bin/chromium";
const ORG = "org-embed-sdk";

let api: TestServer;
let site: EmbedExample;
let attacker: { origin: string; close(): Promise<void> };
let browser: Browser;
let bundleDir: string;
let client: DashboardClient;
let admin: ReturnType<typeof bearer>;

/** The page functions run in Chromium; the tsconfig has no DOM lib, so they name the little they use. */
interface BrowserWindow {
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  postMessage(message: unknown, targetOrigin: string): void;
  open(url: string): BrowserWindow | null;
}
declare const window: BrowserWindow;
declare const document: { dispatchEvent(event: unknown): boolean };
declare const Event: new (type: string) => unknown;

/** What the host page records (examples/embed/host.ts). */
type RecordedEvent = { type: string; at: number; reason?: string; final?: boolean; expiresAt?: number };
type HostWindow = { embedEvents: RecordedEvent[]; embedded: { refresh(): Promise<void>; destroy(): void } };

beforeAll(async () => {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`).toBe(true);
  bundleDir = await mkdtemp(join(tmpdir(), "dashboard-embed-sdk-"));
  await buildEmbedExample(bundleDir);
  site = await serveEmbedExample({
    dir: bundleDir,
    apiBaseUrl: () => api.baseUrl,
    callerToken: () => callerToken({ org: ORG, admin: true, sub: "acme-backend" }),
  });
  api = await startTestServer({ CORS_RENDERER_ORIGINS: site.rendererOrigin });
  client = dashboardClient(createConnectTransport({ baseUrl: api.baseUrl, httpVersion: "1.1" }));
  admin = bearer(await callerToken({ org: ORG, admin: true, sub: "test-admin" }));
  attacker = await serveAttacker();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await site?.close();
  await attacker?.close();
  await api?.stop();
  if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
});

async function dashboardFor(tenantId: string): Promise<string> {
  return (await client.createDashboard({ tenantId, workspaceId: "ws-1", name: `Sales ${tenantId}` }, admin)).dashboard!
    .id;
}

/** Mints recorded by the service for this tenant (ListAuditEvents). */
async function mintsOf(tenantId: string): Promise<number> {
  const { events } = await client.listAuditEvents({ pageSize: 1000 }, admin);
  return events.filter((e) => e.tenantId === tenantId && e.action === AuditAction.IFRAME_TOKEN_MINTED).length;
}

const events = (page: Page) => page.evaluate(() => (window as unknown as HostWindow).embedEvents);
const countOf = async (page: Page, type: string) => (await events(page)).filter((e) => e.type === type).length;
const renderer = (page: Page) => page.frameLocator("iframe");

/** Every token the host page's backend handed out, read from its /token answers. */
function recordTokens(page: Page): string[] {
  const tokens: string[] = [];
  page.on("response", (res) => {
    if (new URL(res.url()).pathname !== "/token") return;
    res
      .json()
      .then((body: { token?: string }) => body.token && tokens.push(body.token))
      .catch(() => undefined);
  });
  return tokens;
}

function recordRequests(page: Page): Request[] {
  const requests: Request[] = [];
  page.on("request", (r) => requests.push(r));
  return requests;
}

describe("the embed SDK in headless Chromium", () => {
  it("renders the dashboard with what the token says, on its own origin", async () => {
    const dashboardId = await dashboardFor("t-render");
    const page = await browser.newPage();
    try {
      await page.goto(`${site.hostOrigin}/?tenant=t-render`);
      await expect.poll(() => countOf(page, "ready"), { timeout: 20_000 }).toBe(1);
      const frame = renderer(page);
      expect(await frame.locator("#dashboard").textContent()).toBe(dashboardId);
      expect(await frame.locator("#tenant").textContent()).toBe("t-render");
      expect(await frame.locator("#filters").textContent()).toBe("tenant_id eq t-render; region in EU, UK");
      expect(await frame.locator("#permissions").textContent()).toBe("export_data, fullscreen");
      expect(await frame.locator("#viewer").textContent()).toBe("Grace Hopper (user-42)");
      await expect.poll(() => frame.locator("#state").getAttribute("data-state"), { timeout: 10_000 }).toBe("ok");
      expect(await frame.locator("#expires").textContent()).toMatch(/^\d+ s$/);
      const iframe = page.frames().find((f) => f !== page.mainFrame())!;
      expect(new URL(iframe.url()).origin).toBe(site.rendererOrigin);
      // The renderer's height reached the host (auto-height).
      expect((await events(page)).some((e) => e.type === "resize")).toBe(true);
    } finally {
      await page.close();
    }
  });

  it("refreshes a short-lived token before it expires, again and again, and the token is in no URL", async () => {
    await dashboardFor("t-short");
    const page = await browser.newPage();
    try {
      const tokens = recordTokens(page);
      const requests = recordRequests(page);
      // 8 s tokens, refreshed at 6 s: four tokens take about 18 s.
      await page.goto(`${site.hostOrigin}/?tenant=t-short&ttl=8&status=2000`);
      await expect.poll(() => countOf(page, "token-refreshed"), { timeout: 45_000 }).toBeGreaterThanOrEqual(4);
      const refreshed = (await events(page)).filter((e) => e.type === "token-refreshed");
      // Each token arrived before the one it replaced expired.
      for (let i = 1; i < refreshed.length; i++) {
        expect(refreshed[i]!.at).toBeLessThan(refreshed[i - 1]!.expiresAt! * 1000);
        expect(refreshed[i]!.expiresAt).toBeGreaterThan(refreshed[i - 1]!.expiresAt!);
      }
      const frame = renderer(page);
      expect(Number(await frame.locator("#received").textContent())).toBeGreaterThanOrEqual(4);
      expect(await frame.locator("#state").getAttribute("data-state")).not.toBe("expired");
      await expect.poll(() => mintsOf("t-short"), { timeout: 10_000 }).toBe(tokens.length);

      // No URL carries a token: no request, no frame, no history entry.
      expect(tokens.length).toBeGreaterThanOrEqual(4);
      for (const token of tokens) {
        for (const r of requests) expect(r.url()).not.toContain(token);
        for (const f of page.frames()) expect(f.url()).not.toContain(token);
      }
      expect(page.url()).not.toMatch(/eyJ/);
      // The iframe's requests: its page, script, config and keys carry no token at all; only the
      // status check carries it, in its Authorization header and body, as a POST.
      const fromIframe = requests.filter((r) => r.frame() !== page.mainFrame());
      expect(fromIframe.map((r) => new URL(r.url()).pathname)).toEqual(
        expect.arrayContaining([
          "/renderer.html",
          "/renderer.js",
          expect.stringMatching(/^\/\.well-known\/jwks\/.+\.json$/),
        ]),
      );
      for (const r of fromIframe) {
        const headers = await r.allHeaders();
        const carried = tokens.some((t) => JSON.stringify(headers).includes(t) || (r.postData() ?? "").includes(t));
        const isStatusCheck = new URL(r.url()).pathname === "/dashboard.v1.DashboardService/VerifyIframeToken";
        expect({ url: r.url(), carried }).toEqual({ url: r.url(), carried: isStatusCheck && r.method() !== "OPTIONS" });
        if (isStatusCheck) expect(headers.referer).toBeUndefined();
      }
    } finally {
      await page.close();
    }
  });

  it("shares refreshes between two tabs: one mint per token, both tabs get it", async () => {
    await dashboardFor("t-tabs");
    const context: BrowserContext = await browser.newContext();
    try {
      const [one, two] = [await context.newPage(), await context.newPage()];
      const [tokensOne, tokensTwo] = [recordTokens(one), recordTokens(two)];
      const url = `${site.hostOrigin}/?tenant=t-tabs&ttl=8&status=60000`;
      await one.goto(url);
      await expect.poll(() => countOf(one, "token-refreshed"), { timeout: 20_000 }).toBe(1);
      await two.goto(url);
      await expect.poll(() => countOf(two, "token-refreshed"), { timeout: 45_000 }).toBeGreaterThanOrEqual(3);
      await expect.poll(() => countOf(one, "token-refreshed"), { timeout: 45_000 }).toBeGreaterThanOrEqual(4);
      for (const page of [one, two]) {
        await page.evaluate(() => (window as unknown as HostWindow).embedded.destroy());
      }
      const seen = async (page: Page) =>
        (await events(page)).filter((e) => e.type === "token-refreshed").map((e) => e.expiresAt);
      const [a, b] = [await seen(one), await seen(two)];
      // The second tab got the first tab's current token, then every one after it: the same tokens.
      expect(a.slice(-b.length)).toEqual(b);
      const distinct = new Set([...a, ...b]).size;
      await expect.poll(() => mintsOf("t-tabs"), { timeout: 10_000 }).toBe(distinct);
      expect(distinct).toBeLessThan(a.length + b.length);
      expect(await mintsOf("t-tabs")).toBe(new Set([...tokensOne, ...tokensTwo]).size);
    } finally {
      await context.close();
    }
  });

  it("mints nothing in a hidden tab, even once its token has expired, and refreshes when it is visible again", async () => {
    await dashboardFor("t-hidden");
    const page = await browser.newPage();
    try {
      await page.goto(`${site.hostOrigin}/?tenant=t-hidden&ttl=4&status=60000`);
      await expect.poll(() => countOf(page, "token-refreshed"), { timeout: 20_000 }).toBe(1);
      await page.evaluate(() => {
        Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
        document.dispatchEvent(new Event("visibilitychange"));
      });
      const frame = renderer(page);
      // The renderer saw its token expire and asked for another; the hidden host did not mint.
      await expect.poll(() => frame.locator("#state").getAttribute("data-state"), { timeout: 20_000 }).toBe("expired");
      await expect.poll(() => mintsOf("t-hidden"), { timeout: 10_000 }).toBe(1);
      expect(await countOf(page, "token-refreshed")).toBe(1);
      await page.evaluate(() => {
        Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "visible" });
        document.dispatchEvent(new Event("visibilitychange"));
      });
      await expect.poll(() => countOf(page, "token-refreshed"), { timeout: 20_000 }).toBe(2);
      await expect.poll(() => frame.locator("#state").getAttribute("data-state"), { timeout: 10_000 }).toBe("ok");
      await expect.poll(() => mintsOf("t-hidden"), { timeout: 10_000 }).toBe(2);
    } finally {
      await page.close();
    }
  });

  it("ignores messages from another origin, to the host and to the renderer", async () => {
    await dashboardFor("t-forged");
    const attackerPage = await browser.newPage();
    try {
      await attackerPage.goto(`${attacker.origin}/?target=about:blank`);
      /** Opens url from the attacker's page, so the attacker holds a reference to its window. */
      const open = async (url: string) => {
        const [popup] = await Promise.all([
          attackerPage.waitForEvent("popup"),
          attackerPage.evaluate((u) => void ((window as unknown as { w: unknown }).w = window.open(u)), url),
        ]);
        return popup;
      };
      /** Posts the messages, then a marker: once the marker arrives, the window has handled all before it. */
      const forge = async (victim: Page, messages: unknown[]) => {
        await victim.evaluate(() =>
          window.addEventListener("message", (e) => {
            if (e.data === "marker") (window as unknown as { marked: boolean }).marked = true;
          }),
        );
        await attackerPage.evaluate((all) => {
          const w = (window as unknown as { w: BrowserWindow }).w;
          for (const m of all) w.postMessage(m, "*");
          w.postMessage("marker", "*");
        }, messages);
        await expect.poll(() => victim.evaluate(() => (window as unknown as { marked?: boolean }).marked)).toBe(true);
      };

      const host = await open(`${site.hostOrigin}/?tenant=t-forged`);
      const tokens = recordTokens(host);
      await expect.poll(() => countOf(host, "ready"), { timeout: 20_000 }).toBe(1);
      const forged = { protocol: "dashboard-embed", version: 1 };
      await forge(host, [
        { ...forged, type: "status", reason: "TOKEN_REVOKED" },
        { ...forged, type: "token-request", reason: "expired" },
      ]);
      expect((await events(host)).filter((e) => e.type === "error")).toEqual([]);
      await expect.poll(() => mintsOf("t-forged"), { timeout: 10_000 }).toBe(1);
      await expect.poll(() => tokens.length).toBe(1);

      // The renderer, opened by the attacker and handed a real, valid token: not from an allowed parent.
      const renderer = await open(`${site.rendererOrigin}/renderer.html`);
      await renderer.waitForFunction(() => "embedConnection" in window);
      await forge(renderer, [{ ...forged, type: "token", token: tokens[0], expiresAt: 9e9 }]);
      expect(await renderer.locator("#dashboard").textContent()).toBe("–");
      expect(await renderer.locator("#received").textContent()).toBe("0");
    } finally {
      for (const p of attackerPage.context().pages()) if (p !== attackerPage) await p.close();
      await attackerPage.close();
    }
  });

  it("surfaces TOKEN_REVOKED to onEvent when the tenant's tokens are revoked, and mints no more", async () => {
    await dashboardFor("t-revoke");
    const page = await browser.newPage();
    try {
      await page.goto(`${site.hostOrigin}/?tenant=t-revoke&ttl=600&status=500`);
      await expect.poll(() => countOf(page, "ready"), { timeout: 20_000 }).toBe(1);
      await expect.poll(() => mintsOf("t-revoke"), { timeout: 10_000 }).toBe(1);
      await client.revokeIframeTokens(
        { tenantId: "t-revoke", target: { case: "allTenantTokens", value: true } },
        admin,
      );
      await expect
        .poll(async () => (await events(page)).find((e) => e.type === "error"), { timeout: 20_000 })
        .toMatchObject({ type: "error", reason: "TOKEN_REVOKED", final: true });
      await expect
        .poll(() => renderer(page).locator("#state").getAttribute("data-state"), { timeout: 10_000 })
        .toBe("revoked");
      // Asked for a token now, it does not call fetchToken.
      await page.evaluate(() => (window as unknown as HostWindow).embedded.refresh());
      expect(await mintsOf("t-revoke")).toBe(1);
      expect(await countOf(page, "token-refreshed")).toBe(1);
    } finally {
      await page.close();
    }
  });
});

/** A page on another origin that frames `?target=` and counts its loads. */
async function serveAttacker(): Promise<{ origin: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const target = new URL(req.url ?? "/", "http://x").searchParams.get("target") ?? "about:blank";
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(
      `<!doctype html><iframe src="${target.replace(/"/g, "&quot;")}" onload="window.loads=(window.loads||0)+1"></iframe>`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "localhost", resolve));
  return {
    origin: `http://localhost:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
