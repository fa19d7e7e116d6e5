import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from "jose";
import { firstStringField } from "./errors.js";
import { envelope, readHostMessage, type RendererMessage } from "./protocol.js";

export { PROTOCOL, VERSION } from "./protocol.js";

/** What a verified token says, as the renderer needs it. */
export interface EmbedClaims {
  tokenId: string;
  organizationId: string;
  tenantId: string;
  workspaceId: string;
  dashboardId: string;
  /** Apply every one to every query. */
  filters: { field: string; op: string; values: unknown[] }[];
  /** Offer only these; a missing one is denied. */
  permissions: string[];
  locale: string | undefined;
  timeZone: string | undefined;
  theme: string | undefined;
  viewer: { id: string; name?: string } | undefined;
  /** The page origin the token is bound to, when it is. */
  origin: string | undefined;
  /** Unix seconds. */
  expiresAt: number;
}

/** "ok": verified offline and online. The others are ErrorInfo reasons, or the renderer's own. */
export type EmbedState =
  | { status: "ok" }
  | { status: "paused" }
  | { status: "revoked" }
  | { status: "expired" }
  | { status: "invalid"; reason: string; message: string };

export interface ConnectOptions {
  /** Exact origins of the pages allowed to embed this renderer (and send it tokens). */
  allowedParentOrigins: readonly string[];
  /** The service's base URL, for VerifyIframeToken (and the default key-set URL). */
  serviceUrl: string;
  /**
   * The organization's key set. Default: `${serviceUrl}/.well-known/jwks/{organization_id}.json`.
   * The organization is read from the token before verification; the signature then proves it.
   */
  jwksUrl?: string | ((organizationId: string) => string);
  issuer?: string;
  audience?: string;
  /** How often the token's status is checked online (revocation, pause). Default 60 s. */
  statusIntervalMs?: number;
  /** Ask the host for a new token this long before exp, in case it has not sent one. Default 10 s. */
  askBeforeExpirySeconds?: number;
  onClaims?: (claims: EmbedClaims) => void;
  onState?: (state: EmbedState) => void;
  now?: () => number;
}

export interface HostConnection {
  readonly claims: EmbedClaims | undefined;
  /** The token for the renderer's own calls to its backend (send it in a header, never a URL). */
  readonly token: string | undefined;
  /** Tell the host the dashboard is on screen (its `ready` event). */
  rendered(): void;
  destroy(): void;
}

const TOKEN_TYPE = "dashboard-embed+jwt";
const LEEWAY_SECONDS = 5;

/** Receives tokens from the embedding page, verifies them and keeps their status current. */
export function connectToHost(options: ConnectOptions): HostConnection {
  const now = options.now ?? (() => Date.now());
  const allowed = new Set(options.allowedParentOrigins);
  const serviceUrl = options.serviceUrl.replace(/\/+$/, "");
  const keySetUrl = (org: string) =>
    typeof options.jwksUrl === "function"
      ? options.jwksUrl(org)
      : (options.jwksUrl ?? `${serviceUrl}/.well-known/jwks/${encodeURIComponent(org)}.json`);
  // jose caches each set and fetches it again when a token names a kid it does not hold.
  const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
  const keySet = (url: string) => {
    let set = keySets.get(url);
    if (!set) keySets.set(url, (set = createRemoteJWKSet(new URL(url))));
    return set;
  };

  let current: { token: string; claims: EmbedClaims; parentOrigin: string } | undefined;
  let timers: ReturnType<typeof setTimeout>[] = [];
  let statusTimer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const state = (s: EmbedState) => options.onState?.(s);
  const tell = (message: RendererMessage, origin = current?.parentOrigin) => {
    if (origin) window.parent.postMessage(envelope(message), origin);
  };

  const accept = async (token: string, parentOrigin: string) => {
    let payload: JWTPayload;
    try {
      const org = decodeJwt(token).organization_id;
      if (typeof org !== "string") throw new Error("the token names no organization");
      ({ payload } = await jwtVerify(token, keySet(keySetUrl(org)), {
        algorithms: ["EdDSA"],
        typ: TOKEN_TYPE,
        issuer: options.issuer ?? "dashboard-service",
        audience: options.audience ?? "dashboard-embed",
        clockTolerance: LEEWAY_SECONDS,
        currentDate: new Date(now()),
      }));
    } catch (err) {
      const expired = (err as { code?: string }).code === "ERR_JWT_EXPIRED";
      if (expired) {
        state({ status: "expired" });
        tell({ type: "token-request", reason: "expired" }, parentOrigin);
      } else {
        state({ status: "invalid", reason: "TOKEN_INVALID", message: (err as Error).message });
        tell({ type: "status", reason: "TOKEN_INVALID", message: "the token did not verify" }, parentOrigin);
      }
      return;
    }
    const claims = claimsOf(payload);
    // The token names the page it was minted for; any other page is refused, even an allowed one.
    if (claims.origin !== undefined && claims.origin !== parentOrigin) {
      state({ status: "invalid", reason: "ORIGIN_MISMATCH", message: "the token is bound to another page" });
      tell(
        { type: "status", reason: "ORIGIN_MISMATCH", message: "the token is bound to another origin" },
        parentOrigin,
      );
      return;
    }
    if (stopped) return;
    current = { token, claims, parentOrigin };
    for (const t of timers) clearTimeout(t);
    const untilExp = claims.expiresAt * 1000 - now();
    // Never earlier than the last quarter of the lifetime: the host's own refresh comes first.
    const lifetime = claims.expiresAt - (typeof payload.iat === "number" ? payload.iat : claims.expiresAt);
    const ask = Math.min(options.askBeforeExpirySeconds ?? 10, lifetime / 4);
    timers = [
      setTimeout(() => tell({ type: "token-request", reason: "expiring" }), Math.max(0, untilExp - ask * 1000)),
      setTimeout(
        () => {
          state({ status: "expired" });
          tell({ type: "token-request", reason: "expired" });
        },
        Math.max(0, untilExp),
      ),
    ];
    options.onClaims?.(claims);
    reportHeight();
    await checkStatus();
  };

  /** Revocation and pause are the service's to know: ask it, with the token as its own credential. */
  const checkStatus = async (): Promise<void> => {
    if (statusTimer) clearTimeout(statusTimer);
    const checked = current;
    if (!checked || stopped) return;
    let next = options.statusIntervalMs ?? 60_000;
    try {
      const res = await fetch(`${serviceUrl}/dashboard.v1.DashboardService/VerifyIframeToken`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${checked.token}`,
          "content-type": "application/json",
          "connect-protocol-version": "1",
        },
        body: JSON.stringify({ token: checked.token }),
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
      if (checked !== current) return;
      if (res.ok) {
        state({ status: "ok" });
        tell({ type: "status", reason: "OK" });
      } else {
        const { reason, message } = await connectErrorOf(res);
        if (checked !== current) return;
        if (reason === "RATE_LIMITED") next = Math.max(1, Number(res.headers.get("retry-after") ?? 1)) * 1000;
        else if (reason === "TOKEN_EXPIRED") tell({ type: "token-request", reason: "TOKEN_EXPIRED" });
        else {
          if (reason === "EMBEDDING_PAUSED") state({ status: "paused" });
          else if (reason === "TOKEN_REVOKED") state({ status: "revoked" });
          else state({ status: "invalid", reason, message });
          tell({ type: "status", reason, message });
        }
        if (reason === "TOKEN_REVOKED") return;
      }
    } catch {
      // Offline: the token was verified offline; look again at the next interval.
    }
    if (!stopped) statusTimer = setTimeout(() => checkStatus().catch(() => undefined), next);
  };

  const onMessage = (event: MessageEvent) => {
    if (event.source !== window.parent || !allowed.has(event.origin)) return;
    const message = readHostMessage(event.data);
    if (!message || stopped) return;
    if (message.type === "token") accept(message.token, event.origin).catch(() => undefined);
    else {
      for (const t of timers) clearTimeout(t);
      if (statusTimer) clearTimeout(statusTimer);
      if (message.reason === "TOKEN_REVOKED") state({ status: "revoked" });
    }
  };
  window.addEventListener("message", onMessage);
  const reportHeight = () => tell({ type: "resize", height: document.documentElement.getBoundingClientRect().height });
  const resize = new ResizeObserver(reportHeight);
  resize.observe(document.documentElement);
  // The parent's origin is not known yet: each allowed one is addressed, only the real parent receives it.
  for (const origin of allowed) window.parent.postMessage(envelope({ type: "hello" }), origin);

  return {
    get claims() {
      return current?.claims;
    },
    get token() {
      return current?.token;
    },
    rendered() {
      tell({ type: "rendered" });
    },
    destroy() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      if (statusTimer) clearTimeout(statusTimer);
      resize.disconnect();
      window.removeEventListener("message", onMessage);
    },
  };
}

function claimsOf(p: JWTPayload): EmbedClaims {
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  const viewer = p.viewer as { id?: unknown; name?: unknown } | undefined;
  return {
    tokenId: str(p.jti) ?? "",
    organizationId: str(p.organization_id) ?? "",
    tenantId: str(p.tenant_id) ?? "",
    workspaceId: str(p.workspace_id) ?? "",
    dashboardId: str(p.dashboard_id) ?? "",
    filters: Array.isArray(p.filters) ? (p.filters as EmbedClaims["filters"]) : [],
    permissions: Array.isArray(p.permissions) ? (p.permissions as unknown[]).filter((x) => typeof x === "string") : [],
    locale: str(p.locale),
    timeZone: str(p.time_zone),
    theme: str(p.theme),
    viewer:
      viewer && typeof viewer.id === "string"
        ? { id: viewer.id, ...(typeof viewer.name === "string" ? { name: viewer.name } : {}) }
        : undefined,
    origin: str(p.origin),
    expiresAt: p.exp ?? 0,
  };
}

/** The ErrorInfo reason of a Connect JSON error answer. */
async function connectErrorOf(res: Response): Promise<{ reason: string; message: string }> {
  try {
    const body = (await res.json()) as { message?: string; details?: { type?: string; value?: string }[] };
    for (const d of body.details ?? []) {
      if (d.type !== "google.rpc.ErrorInfo" || typeof d.value !== "string") continue;
      const b64 = d.value.replace(/-/g, "+").replace(/_/g, "/");
      const bytes = Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
      const reason = firstStringField(bytes);
      if (reason) return { reason, message: body.message ?? reason };
    }
    return { reason: `HTTP_${res.status}`, message: body.message ?? res.statusText };
  } catch {
    return { reason: `HTTP_${res.status}`, message: res.statusText };
  }
}
