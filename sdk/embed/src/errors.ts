/** What fetchToken resolves to: the token CreateIframeToken minted and its expires_at (Unix seconds). */
export interface TokenGrant {
  token: string;
  expiresAt: number;
}

/**
 * What fetchToken throws when it cannot mint: `reason` is the service's
 * ErrorInfo reason (TOKEN_REVOKED, EMBEDDING_PAUSED, RATE_LIMITED…) when the
 * backend passed it on, `retryAfterSeconds` its Retry-After.
 */
export class EmbedTokenError extends Error {
  override readonly name = "EmbedTokenError";
  constructor(
    message: string,
    readonly reason?: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** The reason and retry delay of anything thrown, read from the fields the SDK documents. */
export function failureOf(err: unknown): { reason: string | undefined; retryAfterSeconds: number | undefined } {
  const e = (typeof err === "object" && err !== null ? err : {}) as Record<string, unknown>;
  const reason = typeof e.reason === "string" && e.reason !== "" ? e.reason : undefined;
  const retry = Number(e.retryAfterSeconds);
  return { reason, retryAfterSeconds: Number.isFinite(retry) && retry >= 0 ? retry : undefined };
}

/**
 * The ErrorInfo reason and Retry-After of a ConnectError (from
 * @connectrpc/connect), without depending on it: for a backend that answers
 * its page with `{ reason, retryAfterSeconds }`, or a page that calls the
 * service through its backend with a Connect client. Undefined fields when
 * the error carries none.
 */
export function embedTokenErrorFromConnect(err: unknown): EmbedTokenError {
  const e = (typeof err === "object" && err !== null ? err : {}) as {
    rawMessage?: unknown;
    message?: unknown;
    details?: unknown;
    metadata?: { get(name: string): string | null };
  };
  let reason: string | undefined;
  for (const detail of Array.isArray(e.details) ? (e.details as unknown[]) : []) {
    const d = detail as { type?: unknown; value?: unknown; debug?: { reason?: unknown } };
    if (d.type !== "google.rpc.ErrorInfo") continue;
    if (typeof d.debug?.reason === "string") reason = d.debug.reason;
    else if (d.value instanceof Uint8Array) reason = firstStringField(d.value);
    if (reason) break;
  }
  const retryHeader = e.metadata?.get("retry-after");
  const retry = retryHeader ? Number(retryHeader) : NaN;
  const message =
    typeof e.rawMessage === "string" ? e.rawMessage : typeof e.message === "string" ? e.message : "minting failed";
  return new EmbedTokenError(message, reason, Number.isFinite(retry) ? retry : undefined);
}

/** ErrorInfo's field 1 (reason) from its protobuf bytes: tag 0x0a, a varint length, UTF-8. */
export function firstStringField(bytes: Uint8Array): string | undefined {
  if (bytes[0] !== 0x0a) return undefined;
  let length = 0;
  let shift = 0;
  let i = 1;
  for (; i < bytes.length && i < 6; i++) {
    length |= (bytes[i]! & 0x7f) << shift;
    shift += 7;
    if ((bytes[i]! & 0x80) === 0) break;
  }
  const start = i + 1;
  if (start + length > bytes.length) return undefined;
  return new TextDecoder().decode(bytes.subarray(start, start + length));
}
