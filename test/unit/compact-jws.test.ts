import fc from "fast-check";
import { generateKeyPair, jwtVerify, SignJWT, type CryptoKey } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { signCompactEd25519 } from "../../src/tokens/compact-jws.js";

let privateKey: CryptoKey;
let publicKey: CryptoKey;

beforeAll(async () => {
  ({ privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" }));
});

/** What the signer wrote before: jose's SignJWT with the same claims, set in the same order. */
function withJose(header: Record<string, string>, custom: Record<string, unknown>, std: Std): Promise<string> {
  return new SignJWT(custom)
    .setProtectedHeader({ alg: "EdDSA", ...header })
    .setIssuer(std.iss)
    .setAudience(std.aud)
    .setSubject(std.sub)
    .setIssuedAt(std.iat)
    .setNotBefore(std.iat)
    .setExpirationTime(std.exp)
    .setJti(std.jti)
    .sign(privateKey);
}

interface Std {
  iss: string;
  aud: string;
  sub: string;
  iat: number;
  exp: number;
  jti: string;
}

const ours = (header: Record<string, string>, custom: Record<string, unknown>, std: Std) =>
  signCompactEd25519(
    { alg: "EdDSA", ...header },
    { ...custom, iss: std.iss, aud: std.aud, sub: std.sub, iat: std.iat, nbf: std.iat, exp: std.exp, jti: std.jti },
    privateKey,
  );

describe("compact Ed25519 JWS", () => {
  it("writes jose's SignJWT token byte for byte, for any claims", async () => {
    const text = fc.string({ unit: "binary", maxLength: 40 });
    await fc.assert(
      fc.asyncProperty(
        fc.record({ kid: text, typ: text }),
        fc.dictionary(
          text.filter((k) => !["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "__proto__"].includes(k)),
          fc.jsonValue({ maxDepth: 3 }),
          { maxKeys: 8 },
        ),
        fc.record({
          iss: text,
          aud: text,
          sub: text,
          iat: fc.integer({ min: 0, max: 2 ** 31 }),
          exp: fc.integer({ min: 0, max: 2 ** 31 }),
          jti: fc.uuid(),
        }),
        async (header, custom, std) => {
          expect(await ours(header, custom, std)).toBe(await withJose(header, custom, std));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("verifies with jose, with the claims it was given", async () => {
    const std = {
      iss: "dashboard-service",
      aud: "renderer",
      sub: "s",
      iat: 1_700_000_000,
      exp: 4_000_000_000,
      jti: "j",
    };
    const token = await ours({ kid: "k1", typ: "dashboard-embed+jwt" }, { tenant_id: "t", filters: [] }, std);
    const { payload, protectedHeader } = await jwtVerify(token, publicKey, {
      issuer: "dashboard-service",
      audience: "renderer",
      currentDate: new Date(1_800_000_000_000),
    });
    expect(protectedHeader).toEqual({ alg: "EdDSA", kid: "k1", typ: "dashboard-embed+jwt" });
    expect(payload).toEqual({ tenant_id: "t", filters: [], ...std, nbf: std.iat });
  });
});
