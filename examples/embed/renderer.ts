import { connectToHost, type EmbedClaims } from "../../sdk/embed/src/renderer.js";

/** What the renderer's own server tells it (see serve.ts). */
interface RendererConfig {
  serviceUrl: string;
  allowedParentOrigins: string[];
}

const config = (await (await fetch("/renderer-config.json")).json()) as RendererConfig;
const status = Number(new URLSearchParams(location.search).get("status") ?? "30000");
const $ = (id: string) => document.getElementById(id)!;
let claims: EmbedClaims | undefined;
let received = 0;

const connection = connectToHost({
  allowedParentOrigins: config.allowedParentOrigins,
  serviceUrl: config.serviceUrl,
  // The key set is the default: the service's /.well-known/jwks/{organization_id}.json, readable from any origin.
  statusIntervalMs: status,
  onClaims(c) {
    claims = c;
    received++;
    $("dashboard").textContent = c.dashboardId;
    $("tenant").textContent = c.tenantId;
    $("filters").textContent = c.filters.map((f) => `${f.field} ${f.op} ${f.values.join(", ")}`).join("; ") || "none";
    $("permissions").textContent = c.permissions.join(", ") || "view only";
    $("viewer").textContent = c.viewer ? `${c.viewer.name ?? ""} (${c.viewer.id})` : "anonymous";
    $("received").textContent = String(received);
    tick();
    connection.rendered();
  },
  onState(s) {
    const el = $("state");
    el.dataset.state = s.status;
    el.textContent = s.status === "invalid" ? s.reason : s.status;
  },
});

function tick() {
  if (!claims) return;
  const left = Math.max(0, Math.round(claims.expiresAt - Date.now() / 1000));
  $("expires").textContent = `${left} s`;
}
setInterval(tick, 1000);
Object.assign(window, { embedConnection: connection });
