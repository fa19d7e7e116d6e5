import { readFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { firstStringField } from "../../sdk/embed/src/errors.js";

export interface EmbedExampleOptions {
  /** Where the bundles are (buildEmbedExample). */
  dir: string;
  /** The service's base URL; read per request, so the service may start after these servers. */
  apiBaseUrl: () => string;
  /** The backend's caller token (an admin of the organization), as your backend would hold it. */
  callerToken: () => Promise<string>;
  hostHost?: string;
  hostPort?: number;
  rendererHost?: string;
  rendererPort?: number;
}

export interface EmbedExample {
  /** The host page's origin (the embedding page). */
  hostOrigin: string;
  /** The renderer's origin: list it in CORS_RENDERER_ORIGINS. */
  rendererOrigin: string;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json",
};

/**
 * Two sites on two origins: the host page with its own small backend (it
 * mints iframe tokens with CreateIframeToken, as a customer's backend does),
 * and the renderer, which relays the service's key set until the
 * per-organization key sets, readable from any origin, are served.
 */
export async function serveEmbedExample(o: EmbedExampleOptions): Promise<EmbedExample> {
  let hostOrigin = "";
  let rendererOrigin = "";
  const call = async (method: string, body: unknown) => {
    const res = await fetch(`${o.apiBaseUrl()}/dashboard.v1.DashboardService/${method}`, {
      method: "POST",
      headers: { authorization: `Bearer ${await o.callerToken()}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { res, json: (await res.json()) as Record<string, unknown> };
  };
  const dashboardOf = async (tenantId: string) => {
    const { res, json } = await call("GetDashboard", { tenantId });
    if (!res.ok) throw new Error(`GetDashboard: ${res.status}`);
    return json.dashboard as { id: string; organizationId: string; tenantId: string; workspaceId: string };
  };
  const file = async (res: http.ServerResponse, name: string, headers: Record<string, string> = {}) => {
    const type = TYPES[name.slice(name.lastIndexOf("."))] ?? "application/octet-stream";
    res.writeHead(200, { "content-type": type, "cache-control": "no-store", ...headers });
    res.end(await readFile(`${o.dir}/${name}`));
  };
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
  };

  const host = await listen(o.hostHost ?? "127.0.0.1", o.hostPort ?? 0, async (req, res, url) => {
    const tenant = url.searchParams.get("tenant") ?? "tenant-1";
    if (url.pathname === "/") return file(res, "host.html");
    if (url.pathname === "/host.js" || url.pathname === "/host.js.map") return file(res, url.pathname.slice(1));
    if (url.pathname === "/config.json") {
      const d = await dashboardOf(tenant);
      return json(res, 200, {
        rendererUrl: `${rendererOrigin}/renderer.html`,
        organizationId: d.organizationId,
        tenantId: d.tenantId,
        dashboardId: d.id,
      });
    }
    if (url.pathname === "/token" && req.method === "POST") {
      const d = await dashboardOf(tenant);
      const ttl = Math.max(1, Math.min(3600, Number(url.searchParams.get("ttl") ?? 60) || 60));
      const minted = await call("CreateIframeToken", {
        tenantId: d.tenantId,
        workspaceId: d.workspaceId,
        dashboardId: d.id,
        origin: hostOrigin,
        validUntil: String(Math.floor(Date.now() / 1000) + ttl),
        filters: [{ field: "region", operator: "FILTER_OPERATOR_IN", values: ["EU", "UK"] }],
        permissions: { permissions: ["EMBED_PERMISSION_EXPORT_DATA", "EMBED_PERMISSION_FULLSCREEN"] },
        viewer: { id: "user-42", displayName: "Grace Hopper" },
      });
      if (minted.res.ok) return json(res, 200, { token: minted.json.token, expiresAt: Number(minted.json.expiresAt) });
      // What the SDK's fetchToken contract wants from a failure: the ErrorInfo reason and Retry-After.
      const details = (minted.json.details as { type: string; value: string }[] | undefined) ?? [];
      const info = details.find((d) => d.type === "google.rpc.ErrorInfo");
      const retry = minted.res.headers.get("retry-after");
      return json(res, minted.res.status, {
        message: minted.json.message,
        reason: info ? firstStringField(Buffer.from(info.value, "base64")) : undefined,
        retryAfterSeconds: retry ? Number(retry) : undefined,
      });
    }
    res.writeHead(404).end();
  });
  hostOrigin = host.origin;

  const renderer = await listen(o.rendererHost ?? "localhost", o.rendererPort ?? 0, async (_req, res, url) => {
    if (url.pathname === "/renderer.html") {
      // Only the host page may frame the renderer.
      return file(res, "renderer.html", { "content-security-policy": `frame-ancestors ${hostOrigin}` });
    }
    if (url.pathname === "/renderer.js" || url.pathname === "/renderer.js.map") return file(res, url.pathname.slice(1));
    if (url.pathname === "/renderer-config.json") {
      return json(res, 200, {
        serviceUrl: o.apiBaseUrl(),
        allowedParentOrigins: [hostOrigin],
      });
    }
    res.writeHead(404).end();
  });
  rendererOrigin = renderer.origin;

  return {
    hostOrigin,
    rendererOrigin,
    close: async () => {
      await host.close();
      await renderer.close();
    },
  };
}

async function listen(
  hostname: string,
  port: number,
  handle: (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<void>,
): Promise<{ origin: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    handle(req, res, new URL(req.url ?? "/", "http://x")).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, hostname, resolve));
  return {
    origin: `http://${hostname}:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
