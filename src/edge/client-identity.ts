import { isIP } from "node:net";
import proxyaddr from "proxy-addr";

export interface ClientIdentityOptions {
  /** CIDRs (or proxy-addr's names: loopback, linklocal, uniquelocal) of proxies whose forwarding headers are believed. */
  trustedProxies: readonly string[];
  /** Which header the trusted proxies write: X-Forwarded-For (the usual), or RFC 7239 Forwarded. */
  forwardedHeader: "x-forwarded-for" | "forwarded";
}

/** Answers "who is this client" for per-address decisions and logs, from the peer and what trusted proxies forwarded. */
export type ClientIdentity = (peerAddress: string, headers: Record<string, string | string[] | undefined>) => string;

/**
 * The client address as proxy-addr (Express's and Fastify's) computes it: the
 * peer, unless the peer is a trusted proxy, in which case the right-most
 * address its forwarding header names that is not itself a trusted proxy.
 * From an untrusted peer the header is ignored, so it cannot be used to pick
 * an address. Only the configured header counts: a proxy that sets only
 * X-Forwarded-For passes a client's forged Forwarded straight through.
 */
export function createClientIdentity(options: ClientIdentityOptions): ClientIdentity {
  const trust = proxyaddr.compile([...options.trustedProxies]);
  const none = options.trustedProxies.length === 0;
  return (peerAddress, headers) => {
    const peer = normalize(peerAddress);
    if (none) return peer;
    const forwarded =
      options.forwardedHeader === "forwarded" ? forwardedFor(headers.forwarded) : joined(headers["x-forwarded-for"]);
    const resolved = proxyaddr(
      { headers: { "x-forwarded-for": forwarded }, socket: { remoteAddress: peer } } as never,
      trust,
    );
    // Whatever a trusted proxy passed on that is not an address (a name, garbage) never becomes a key.
    return isIP(resolved) ? normalize(resolved) : peer;
  };
}

/** "::ffff:10.0.0.1" (an IPv4 peer on a dual-stack socket) is 10.0.0.1. */
function normalize(address: string): string {
  return address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

function joined(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(", ") : (value ?? "");
}

/**
 * The for= addresses of RFC 7239 Forwarded elements, left to right, as an
 * X-Forwarded-For list: `for=192.0.2.43, for="[2001:db8::17]:4711"` is
 * "192.0.2.43, 2001:db8::17". Obfuscated identifiers (_hidden, unknown) are
 * kept, so they stop the walk instead of being skipped.
 */
export function forwardedFor(value: string | string[] | undefined): string {
  const addresses: string[] = [];
  for (const element of joined(value).split(",")) {
    for (const pair of element.split(";")) {
      const eq = pair.indexOf("=");
      if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== "for") continue;
      let node = pair.slice(eq + 1).trim();
      if (node.startsWith('"') && node.endsWith('"')) node = node.slice(1, -1);
      const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(node);
      if (bracketed) node = bracketed[1]!;
      else if (/^[\d.]+:\d+$/.test(node)) node = node.slice(0, node.lastIndexOf(":"));
      addresses.push(node);
    }
  }
  return addresses.join(", ");
}
