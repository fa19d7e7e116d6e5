import { createHash } from "node:crypto";
import { writeHead } from "../edge/http-types.js";
import { plainRoute } from "../edge/plain-route.js";
import type { HttpRoute } from "../edge/routes.js";
import { ServiceError } from "../errors/service-error.js";
import { KEY_REFRESH_MS, type KeyRing } from "./key-ring.js";

export const JWKS_PATH = "/.well-known/jwks.json";

/**
 * Renderers may cache the set this long. A renderer that meets a kid it does
 * not know (the first tokens after a rotation) should re-fetch at once, as
 * jose's createRemoteJWKSet does, so the cache never blocks a new key.
 */
const MAX_AGE_SECONDS = 300;

/**
 * GET /.well-known/jwks.json: the public keys that may verify an iframe token
 * right now (the active signer and the retired keys still in their window),
 * each with kid, alg and use; never private material. Unauthenticated, like
 * every JWKS, with an ETag so a polling renderer gets 304s.
 */
export function jwksRoute(keys: KeyRing): { path: string; route: HttpRoute } {
  return {
    path: JWKS_PATH,
    route: plainRoute({
      name: `GET ${JWKS_PATH}`,
      methods: ["GET", "HEAD"],
      async serve(x) {
        const published = await keys.published().catch((err: unknown) => {
          throw new ServiceError("UNAVAILABLE", "signing keys are unavailable; retry", { cause: err });
        });
        const body = JSON.stringify({ keys: published });
        const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
        const headers = {
          "content-type": "application/jwk-set+json",
          "cache-control": `public, max-age=${MAX_AGE_SECONDS}, stale-while-revalidate=${Math.ceil(KEY_REFRESH_MS / 1000)}`,
          etag,
        };
        if (x.req.headers["if-none-match"] === etag) {
          writeHead(x.res, 304, headers);
          x.res.end();
          return;
        }
        writeHead(x.res, 200, { ...headers, "content-length": String(Buffer.byteLength(body)) });
        if (x.req.method === "HEAD") x.res.end();
        else x.res.end(body);
      },
    }),
  };
}
