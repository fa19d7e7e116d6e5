import { EmbedTokenError, mountDashboard, type EmbedEvent } from "../../sdk/embed/src/host.js";

/** What the host page's own server says about the dashboard to show (see serve.ts). */
interface HostConfig {
  rendererUrl: string;
  organizationId: string;
  tenantId: string;
  dashboardId: string;
}

const query = new URLSearchParams(location.search);
const tenant = query.get("tenant") ?? "tenant-1";
const config = (await (await fetch(`/config.json?tenant=${encodeURIComponent(tenant)}`)).json()) as HostConfig;

const events: (EmbedEvent & { at: number })[] = [];
const list = document.getElementById("events")!;
const renderer = new URL(config.rendererUrl);
// Only renderer settings travel in its URL; the token never does.
if (query.has("status")) renderer.searchParams.set("status", query.get("status")!);

const mounted = mountDashboard({
  container: document.getElementById("frame")!,
  rendererUrl: renderer.href,
  organizationId: config.organizationId,
  tenantId: config.tenantId,
  dashboardId: config.dashboardId,
  // Your backend mints with CreateIframeToken; this one does it in serve.ts.
  async fetchToken() {
    const res = await fetch(`/token?tenant=${encodeURIComponent(tenant)}&ttl=${query.get("ttl") ?? "60"}`, {
      method: "POST",
    });
    const body = (await res.json()) as {
      token?: string;
      expiresAt?: number;
      reason?: string;
      retryAfterSeconds?: number;
      message?: string;
    };
    if (!res.ok || !body.token)
      throw new EmbedTokenError(body.message ?? "mint failed", body.reason, body.retryAfterSeconds);
    return { token: body.token, expiresAt: body.expiresAt! };
  },
  onEvent(event) {
    events.push({ ...event, at: Date.now() });
    const item = document.createElement("li");
    const { type, ...rest } = event;
    item.textContent = `${new Date().toLocaleTimeString()}  ${type}  ${Object.keys(rest).length ? JSON.stringify(rest) : ""}`;
    list.prepend(item);
  },
});

// For the tests and the curious: what happened, and the handle.
Object.assign(window, { embedEvents: events, embedded: mounted });
