import { decodeProtectedHeader } from "jose";
import type { Caller } from "../auth/caller.js";
import { ServiceError, unauthenticated } from "../errors/service-error.js";
import { EMBED_TOKEN_TYPE } from "../tokens/embed-signer.js";
import type { EmbedVerifier } from "../tokens/embed-verifier.js";
import { EMBED_ALGORITHM } from "../tokens/key-ring.js";

/**
 * Turns a bearer that is one of our iframe tokens into a Caller; undefined for
 * any other bearer (the caller verifier's to judge). The guard lets such a
 * caller make one call only (auth/policy.ts: assertMayCallWith).
 */
export type IframeTokenCredential = (bearer: string) => Promise<Caller> | undefined;

export function iframeTokenCredential(verify: EmbedVerifier, maxTokenBytes: number): IframeTokenCredential {
  return (bearer) => {
    // An oversized bearer is left to the caller verifier, which refuses it before parsing anything.
    if (bearer.length > maxTokenBytes || !looksLikeIframeToken(bearer)) return undefined;
    return verify(bearer).then(
      (token): Caller => ({
        // Its own subject, so its budget is the token's and never its minter's (sub is the minting backend).
        subject: `iframe-token:${token.jti}`,
        organizationId: token.organizationId,
        isAdmin: false,
        tenantIds: new Set(),
        iframeTokenId: token.jti,
      }),
      (err: unknown) => {
        // Expired stays TOKEN_EXPIRED, so the renderer knows to ask for a fresh token rather than give up.
        if (err instanceof ServiceError && err.reason === "TOKEN_INVALID") {
          throw unauthenticated("the bearer iframe token is not valid");
        }
        throw err;
      },
    );
  };
}

/**
 * Our header (EdDSA, our typ): the only shape worth a signature check as an
 * iframe token. Every call carries a bearer, and their header segments repeat
 * (one per signing key or identity provider key), so the answer is kept per
 * segment: a few, bounded, instead of a base64 and JSON decode on every call.
 */
function looksLikeIframeToken(bearer: string): boolean {
  const dot = bearer.indexOf(".");
  if (dot <= 0 || dot > MAX_REMEMBERED_HEADER_CHARS) return decodesAsIframeToken(bearer);
  const segment = bearer.slice(0, dot);
  let known = headerVerdicts.get(segment);
  if (known === undefined) {
    known = decodesAsIframeToken(bearer);
    if (headerVerdicts.size >= MAX_REMEMBERED_HEADERS) headerVerdicts.clear();
    headerVerdicts.set(segment, known);
  }
  return known;
}

const MAX_REMEMBERED_HEADERS = 256;
const MAX_REMEMBERED_HEADER_CHARS = 512;
const headerVerdicts = new Map<string, boolean>();

function decodesAsIframeToken(bearer: string): boolean {
  try {
    const header = decodeProtectedHeader(bearer);
    return header.typ === EMBED_TOKEN_TYPE && header.alg === EMBED_ALGORITHM;
  } catch {
    return false;
  }
}
