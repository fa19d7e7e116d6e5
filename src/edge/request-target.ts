/**
 * The request target (RFC 9112 §3.2) and authority of a request, parsed once,
 * defensively, as "valid or refused": nothing downstream ever parses req.url
 * or a Host header again, and nothing here throws. `new URL(req.url, base)`
 * on a target like `//` or `http://[/` throws synchronously, which in a
 * request handler ends the process.
 */
export type ParsedTarget = { ok: true; target: RequestTarget } | { ok: false; problem: string };

export interface RequestTarget {
  /** The path as sent (origin form), never percent-decoded: "/api/v1/dashboards/t%201". */
  path: string;
  /** The raw query string without "?" ("" when there is none). */
  query: string;
  /** The authority (Host or :authority), when one was sent and is well formed. */
  authority: string | undefined;
}

/** Longer targets are refused: no route of this service comes close. */
export const MAX_TARGET_LENGTH = 8 * 1024;

// Visible ASCII except space; percent-encoding is allowed, control characters, space and non-ASCII are not.
const TARGET_CHARACTERS = /^[\x21-\x7e]*$/;
// RFC 3986 reg-name or IPv4 (unreserved, pct-encoded, sub-delims), or an IP literal in brackets, then an optional port.
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9\-._~!$&'()*+,;=%]{1,253})(?::\d{0,5})?$/;

export function parseTarget(
  rawTarget: string | undefined,
  rawAuthority: string | string[] | undefined,
  hostLines = 1,
): ParsedTarget {
  const target = rawTarget ?? "";
  if (target.length === 0) return { ok: false, problem: "the request has no target" };
  if (target.length > MAX_TARGET_LENGTH) {
    return { ok: false, problem: `the request target is longer than ${MAX_TARGET_LENGTH} bytes` };
  }
  if (!TARGET_CHARACTERS.test(target))
    return { ok: false, problem: "the request target has characters it may not have" };
  // RFC 9112 §3.2: more than one Host line is refused (Node keeps the first and drops the others).
  if (hostLines > 1) return { ok: false, problem: "the request has more than one Host" };

  let pathAndQuery: string;
  let authority: string | undefined | null;
  if (target.startsWith("/")) {
    // Origin form. "//x" would be read as an authority by URL parsers; no route of ours looks like that.
    if (target.startsWith("//") || target.includes("\\"))
      return { ok: false, problem: "the request target is not a path" };
    pathAndQuery = target;
    authority = parseAuthority(rawAuthority);
    if (authority === null) return { ok: false, problem: "the Host (or :authority) is not a valid authority" };
  } else {
    // Absolute form (what a client talking to a proxy sends): servers must accept it, and its
    // authority wins over Host (RFC 9112 §3.2.2).
    const absolute = /^https?:\/\/([^/?#]*)(\/[^#]*)?$/i.exec(target);
    if (!absolute || !AUTHORITY.test(absolute[1] ?? "")) {
      return { ok: false, problem: "the request target is neither a path nor an absolute http(s) URL" };
    }
    pathAndQuery = absolute[2] ?? "/";
    authority = absolute[1];
    if (pathAndQuery.startsWith("//") || pathAndQuery.includes("\\")) {
      return { ok: false, problem: "the request target is not a path" };
    }
  }
  if (pathAndQuery.includes("#")) return { ok: false, problem: "the request target may not have a fragment" };
  const q = pathAndQuery.indexOf("?");
  return {
    ok: true,
    target: {
      path: q === -1 ? pathAndQuery : pathAndQuery.slice(0, q),
      query: q === -1 ? "" : pathAndQuery.slice(q + 1),
      authority,
    },
  };
}

/** undefined when absent (HTTP/1.0 may omit it), null when present but malformed. */
function parseAuthority(raw: string | string[] | undefined): string | undefined | null {
  if (raw === undefined) return undefined;
  if (Array.isArray(raw) || raw.length === 0) return null;
  return AUTHORITY.test(raw) ? raw : null;
}

/** The value of one query parameter, percent-decoded; undefined when absent, null when its encoding is broken. */
export function queryParameter(query: string, name: string): string | undefined | null {
  if (query === "") return undefined;
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=");
    const key = eq === -1 ? pair : pair.slice(0, eq);
    if (decodeOrNull(key) !== name) continue;
    return decodeOrNull(eq === -1 ? "" : pair.slice(eq + 1));
  }
  return undefined;
}

/** Percent-decoding as in application/x-www-form-urlencoded ("+" is a space); null for malformed escapes or UTF-8. */
export function decodeOrNull(value: string): string | null {
  try {
    return decodeURIComponent(value.replace(/\+/g, " "));
  } catch {
    return null;
  }
}
