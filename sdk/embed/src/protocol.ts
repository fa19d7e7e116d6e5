/**
 * The postMessage protocol between a host page and the renderer in its iframe.
 * Every message is a plain object tagged with PROTOCOL and VERSION; either side
 * ignores messages with another tag or version, from another window, or from an
 * origin it does not expect. The README documents each message.
 */
export const PROTOCOL = "dashboard-embed";
export const VERSION = 1;

/** Host → renderer. */
export type HostMessage =
  | { type: "token"; token: string; expiresAt: number }
  /** The host will send no more tokens (TOKEN_REVOKED, or destroyed). */
  | { type: "stopped"; reason: string };

/** Renderer → host. */
export type RendererMessage =
  /** The renderer is listening; the host answers with the current token. */
  | { type: "hello" }
  /** The renderer needs a fresh token: it expires soon, or the service said TOKEN_EXPIRED. */
  | { type: "token-request"; reason: "expiring" | "expired" | "TOKEN_EXPIRED" }
  /** The dashboard is rendered with the current token. */
  | { type: "rendered" }
  /** The service's verdict on the current token (online check), as its ErrorInfo reason, or "OK". */
  | { type: "status"; reason: string; message?: string }
  /** The renderer's content height in CSS pixels, for auto-height iframes. */
  | { type: "resize"; height: number };

export type Envelope<M> = M & { protocol: typeof PROTOCOL; version: typeof VERSION };

export function envelope<M extends HostMessage | RendererMessage>(message: M): Envelope<M> {
  return { protocol: PROTOCOL, version: VERSION, ...message };
}

const RENDERER_TYPES = new Set(["hello", "token-request", "rendered", "status", "resize"]);
const HOST_TYPES = new Set(["token", "stopped"]);

function tagged(data: unknown): data is { protocol: string; version: number; type: string } {
  if (typeof data !== "object" || data === null) return false;
  const d = data as Record<string, unknown>;
  return d.protocol === PROTOCOL && d.version === VERSION && typeof d.type === "string";
}

/** A renderer message of this protocol version, checked field by field; undefined for anything else. */
export function readRendererMessage(data: unknown): RendererMessage | undefined {
  if (!tagged(data) || !RENDERER_TYPES.has(data.type)) return undefined;
  const d = data as Record<string, unknown>;
  switch (d.type) {
    case "token-request":
      return d.reason === "expiring" || d.reason === "expired" || d.reason === "TOKEN_EXPIRED"
        ? { type: "token-request", reason: d.reason }
        : undefined;
    case "status":
      return typeof d.reason === "string"
        ? { type: "status", reason: d.reason, ...(typeof d.message === "string" ? { message: d.message } : {}) }
        : undefined;
    case "resize":
      return typeof d.height === "number" && Number.isFinite(d.height) && d.height >= 0
        ? { type: "resize", height: d.height }
        : undefined;
    default:
      return { type: d.type as "hello" | "rendered" };
  }
}

/** A host message of this protocol version, checked field by field; undefined for anything else. */
export function readHostMessage(data: unknown): HostMessage | undefined {
  if (!tagged(data) || !HOST_TYPES.has(data.type)) return undefined;
  const d = data as Record<string, unknown>;
  if (d.type === "token") {
    return typeof d.token === "string" && typeof d.expiresAt === "number"
      ? { type: "token", token: d.token, expiresAt: d.expiresAt }
      : undefined;
  }
  return typeof d.reason === "string" ? { type: "stopped", reason: d.reason } : undefined;
}
