import { writeHead, type HeaderMap } from "../edge/http-types.js";
import type { Exchange } from "../edge/exchange.js";
import { plainRoute, sendError } from "../edge/plain-route.js";
import type { HttpRoute, RouteFamily } from "../edge/routes.js";
import { ServiceError } from "../errors/service-error.js";
import { KEY_REFRESH_MS, type KeyRing, type PublishedKeySet } from "./key-ring.js";

/** The previous release's one key set for the whole service: it verifies the tokens signed before this one. */
export const JWKS_PATH = "/.well-known/jwks.json";
/** Each organization's key set: /.well-known/jwks/{organization_id}.json */
export const ORGANIZATION_JWKS_PREFIX = "/.well-known/jwks/";

/**
 * Renderers may cache a set this long. A renderer that meets a kid it does
 * not know (the first tokens after a rotation) should re-fetch at once, as
 * jose's createRemoteJWKSet does, so the cache never blocks a new key.
 */
const MAX_AGE_SECONDS = 300;
/** An empty set (an organization that has not minted yet) is cached briefly: its first key may come any moment. */
const EMPTY_MAX_AGE_SECONDS = 60;
const ORGANIZATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;
// The longest path a valid organization id makes, percent-encoding included; longer ones are refused unread.
const MAX_PATH_LENGTH = ORGANIZATION_JWKS_PREFIX.length + 3 * 128 + ".json".length;
const METHODS = ["GET", "HEAD", "OPTIONS"];
// Any origin may read a key set, its errors included, and never with credentials.
const CORS: HeaderMap = { "access-control-allow-origin": "*" };

/**
 * GET /.well-known/jwks.json: the previous release's public keys still
 * verifying its tokens (and EMBED_SIGNING_KEY's, when one is set); empty
 * once they have all expired. Never private material.
 */
export function jwksRoute(keys: KeyRing): { path: string; route: HttpRoute } {
  return {
    path: JWKS_PATH,
    route: plainRoute({
      name: `GET ${JWKS_PATH}`,
      methods: METHODS,
      headers: CORS,
      serve: (x) => serveKeySet(x, () => keys.keySet(undefined)),
    }),
  };
}

/**
 * GET /.well-known/jwks/{organization_id}.json: the organization's public keys
 * (its active, next and retired-in-window keys, and EMBED_SIGNING_KEY's).
 * Unauthenticated and readable from any origin, like every JWKS; the id is
 * checked before anything is read, and a read never creates a key: an
 * organization without keys gets an empty set.
 */
export function organizationJwksRoutes(keys: KeyRing): RouteFamily {
  const route = plainRoute({
    name: `GET ${ORGANIZATION_JWKS_PREFIX}{organization_id}.json`,
    methods: METHODS,
    headers: CORS,
    serve(x) {
      const organizationId = organizationIdOf(x.target.path);
      if (organizationId === undefined) {
        throw new ServiceError("ROUTE_NOT_FOUND", `no key set at ${x.target.path.slice(0, 200)}`);
      }
      if (organizationId === null) {
        throw new ServiceError(
          "MALFORMED_REQUEST",
          "the organization id must be 1 to 128 characters of A-Z a-z 0-9 . _ : -",
        );
      }
      return serveKeySet(x, () => keys.keySet(organizationId));
    },
  });
  return { prefix: ORGANIZATION_JWKS_PREFIX, resolve: () => route };
}

/** The organization id of a key-set path; undefined when the path is no key set's, null when the id is malformed. */
function organizationIdOf(path: string): string | null | undefined {
  if (path.length > MAX_PATH_LENGTH) return null;
  const segment = path.slice(ORGANIZATION_JWKS_PREFIX.length);
  if (!segment.endsWith(".json") || segment.includes("/")) return undefined;
  let id: string;
  try {
    id = decodeURIComponent(segment.slice(0, -".json".length));
  } catch {
    return null;
  }
  return ORGANIZATION_ID.test(id) ? id : null;
}

async function serveKeySet(x: Exchange, read: () => Promise<PublishedKeySet>): Promise<void> {
  if (x.req.method === "OPTIONS") {
    // A preflight (a page sending If-None-Match itself): any origin may read key sets, never with credentials.
    writeHead(x.res, 204, {
      ...CORS,
      "access-control-allow-methods": "GET, HEAD",
      "access-control-allow-headers": "if-none-match",
      "access-control-max-age": "86400",
    });
    x.res.end();
    return;
  }
  let set: PublishedKeySet;
  try {
    set = await read();
  } catch (err) {
    sendError(x, new ServiceError("UNAVAILABLE", "signing keys are unavailable; retry", { cause: err }), CORS);
    return;
  }
  const maxAge = set.empty ? EMPTY_MAX_AGE_SECONDS : MAX_AGE_SECONDS;
  const headers: HeaderMap = {
    ...CORS,
    "access-control-expose-headers": "etag",
    "content-type": "application/jwk-set+json",
    "cache-control": `public, max-age=${maxAge}, stale-while-revalidate=${Math.ceil(KEY_REFRESH_MS / 1000)}`,
    etag: set.etag,
  };
  if (x.req.headers["if-none-match"] === set.etag) {
    writeHead(x.res, 304, headers);
    x.res.end();
    return;
  }
  writeHead(x.res, 200, { ...headers, "content-length": String(set.body.byteLength) });
  if (x.req.method === "HEAD") x.res.end();
  else x.res.end(set.body);
}
