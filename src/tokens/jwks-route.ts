import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { PlainRoute } from "../server/http-handler.js";
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
export function jwksRoute(keys: KeyRing, log: Logger): PlainRoute {
  return (req, res) => {
    const path = (req.url ?? "").split("?", 1)[0];
    if (path !== JWKS_PATH) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "application/json" });
      res.end(JSON.stringify({ code: "method_not_allowed", message: "use GET" }));
      return true;
    }
    keys.published().then(
      (published) => {
        const body = JSON.stringify({ keys: published });
        const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
        const headers = {
          "content-type": "application/jwk-set+json",
          "cache-control": `public, max-age=${MAX_AGE_SECONDS}, stale-while-revalidate=${Math.ceil(KEY_REFRESH_MS / 1000)}`,
          etag,
        };
        if (req.headers["if-none-match"] === etag) {
          res.writeHead(304, headers);
          res.end();
          return;
        }
        res.writeHead(200, { ...headers, "content-length": Buffer.byteLength(body) });
        if (req.method === "HEAD") res.end();
        else res.end(body);
      },
      (err: unknown) => {
        log.error({ err }, "cannot read the iframe-token signing keys for the JWKS");
        res.writeHead(503, { "content-type": "application/json", "retry-after": "1", "cache-control": "no-store" });
        res.end(JSON.stringify({ code: "unavailable", message: "signing keys are unavailable; retry" }));
      },
    );
    return true;
  };
}
