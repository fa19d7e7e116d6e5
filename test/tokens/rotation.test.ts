import { Code } from "@connectrpc/connect";
import { createRemoteJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KEY_REFRESH_MS } from "../../src/tokens/key-ring.js";
import { ManualClock } from "../helpers/clock.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { as, client, dashboardWithToken, failure, signWith, storedPrivateKeys } from "./support.js";

// Short lifetimes keep the numbers small: a retired key verifies for
// max TTL (3 s) + leeway (5 s) + key refresh (5 s) + 1 s = 14 s.
const SHORT_TTL = { EMBED_TOKEN_MAX_TTL_SECONDS: "3", EMBED_TOKEN_DEFAULT_TTL_SECONDS: "3" };
const RETIRED_KEY_GRACE_MS = 14_000;

// Both replicas read this clock: the test steps over expiries and key windows instead of sleeping.
const clock = new ManualClock();
let replicaA: TestServer;
let replicaB: TestServer;
beforeAll(async () => {
  replicaA = await startTestServer(SHORT_TTL, undefined, { clock: clock.now });
  replicaB = await startTestServer(SHORT_TTL, replicaA.db, { clock: clock.now });
});
afterAll(async () => {
  await replicaB?.stop();
  await replicaA?.stop();
});

const ORG = "org-rotate";

/** The organization's key set, where a renderer finds it. */
const jwksUrl = (baseUrl: string, org = ORG) => `${baseUrl}/.well-known/jwks/${org}.json`;

async function publishedKids(baseUrl: string, url = jwksUrl(baseUrl)): Promise<string[]> {
  const res = await fetch(url);
  return ((await res.json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
}

function rendererVerify(baseUrl: string, token: string) {
  return jwtVerify(token, createRemoteJWKSet(new URL(jwksUrl(baseUrl))), {
    algorithms: ["EdDSA"],
    issuer: "dashboard-service",
    audience: "dashboard-embed",
    clockTolerance: 5,
    currentDate: clock.date(),
  });
}

async function verdict(baseUrl: string, token: string): Promise<string> {
  const api = client(baseUrl);
  const renderer = await as({ org: ORG, sub: "renderer" });
  return api.verifyIframeToken({ token }, renderer).then(
    () => "ok",
    async () => (await failure(api.verifyIframeToken({ token }, renderer))).reason,
  );
}

describe("RotateSigningKey with overlap, across two replicas", () => {
  it("signs with the new key at once, keeps old tokens verifying until they expire, and retires the old key after", async () => {
    const a = client(replicaA.baseUrl);
    const admin = await as({ org: ORG, admin: true, sub: "alice" });
    const { dashboard, minted: oldToken } = await dashboardWithToken(a, admin, "tenant-r1");
    const oldKid = decodeProtectedHeader(oldToken.token).kid!;
    const [oldKey] = await storedPrivateKeys(replicaA.db.url, ORG);
    expect(oldKey!.kid).toBe(oldKid);
    // A token signed with the old key that outlives it, to prove retirement is enforced.
    const outliving = await signWith(oldKey!, {
      iss: "dashboard-service",
      aud: "dashboard-embed",
      sub: "alice",
      iat: clock.seconds(),
      nbf: clock.seconds(),
      exp: clock.seconds() + 3600,
      jti: "01900000-0000-7000-8000-0000000000aa",
      organization_id: ORG,
      tenant_id: "tenant-r1",
      workspace_id: "ws-1",
      dashboard_id: dashboard.id,
      filters: [{ field: "tenant_id", op: "eq", values: ["tenant-r1"] }],
    });

    // The key the rotation will activate is already published, so cached key sets know it in advance.
    const publishedBefore = await publishedKids(replicaB.baseUrl);
    expect(publishedBefore).toHaveLength(2);
    expect(publishedBefore).toContain(oldKid);

    const rotation = await a.rotateSigningKey({}, admin);
    const rotatedAt = clock.now();
    expect(rotation.keyId).not.toBe(oldKid);
    expect(publishedBefore).toContain(rotation.keyId);
    expect(rotation.retiredKeyId).toBe(oldKid);
    const verifiesUntil = Number(rotation.retiredKeyVerifiesUntil!.seconds) * 1000;
    // Whole seconds on the wire: the window ends in the second of rotatedAt + the grace period.
    expect(verifiesUntil).toBe(Math.floor((rotatedAt + RETIRED_KEY_GRACE_MS) / 1000) * 1000);

    // The rotating replica signs with the new key at once and publishes both.
    const newToken = await a.createIframeToken(
      { tenantId: "tenant-r1", workspaceId: "ws-1", dashboardId: dashboard.id },
      admin,
    );
    expect(decodeProtectedHeader(newToken.token).kid).toBe(rotation.keyId);
    // Published now: the retired key, the new signer and the next key of the following rotation.
    const publishedAfter = await publishedKids(replicaA.baseUrl);
    expect(publishedAfter).toHaveLength(3);
    expect(publishedAfter).toEqual(expect.arrayContaining([oldKid, rotation.keyId]));
    const nextKid = publishedAfter.find((k) => k !== oldKid && k !== rotation.keyId)!;

    // The other replica verifies the new kid at once (an unknown kid makes it re-read storage) ...
    expect(await verdict(replicaB.baseUrl, newToken.token)).toBe("ok");
    expect(await verdict(replicaB.baseUrl, oldToken.token)).toBe("ok");
    // ... and starts signing with it once its key refresh interval has passed.
    clock.advance(KEY_REFRESH_MS);
    const fromB = await client(replicaB.baseUrl).createIframeToken(
      { tenantId: "tenant-r1", workspaceId: "ws-1", dashboardId: dashboard.id },
      admin,
    );
    expect(decodeProtectedHeader(fromB.token).kid).toBe(rotation.keyId);
    expect((await publishedKids(replicaB.baseUrl)).sort()).toEqual([oldKid, rotation.keyId, nextKid].sort());

    // A third-party renderer verifies both offline against either replica's JWKS.
    await expect(rendererVerify(replicaB.baseUrl, oldToken.token)).resolves.toBeDefined();
    await expect(rendererVerify(replicaB.baseUrl, newToken.token)).resolves.toBeDefined();
    await expect(rendererVerify(replicaA.baseUrl, outliving)).resolves.toBeDefined();

    // The old token ends at its own exp (plus leeway), as expired, not as invalid: its key is still live.
    clock.advance((Number(oldToken.expiresAt) + 6) * 1000 - clock.now());
    expect(await verdict(replicaA.baseUrl, oldToken.token)).toBe("TOKEN_EXPIRED");
    expect(await verdict(replicaB.baseUrl, outliving)).toBe("ok");

    // After its window the old key is gone from the JWKS and verifies nothing, wherever asked.
    clock.advance(rotatedAt + RETIRED_KEY_GRACE_MS + 1_000 - clock.now());
    expect((await publishedKids(replicaA.baseUrl)).sort()).toEqual([rotation.keyId, nextKid].sort());
    expect((await publishedKids(replicaB.baseUrl)).sort()).toEqual([rotation.keyId, nextKid].sort());
    expect(await verdict(replicaA.baseUrl, outliving)).toBe("TOKEN_INVALID");
    expect(await verdict(replicaB.baseUrl, outliving)).toBe("TOKEN_INVALID");
    await expect(rendererVerify(replicaA.baseUrl, outliving)).rejects.toThrow();
  });

  it("is for admins only and is audited", async () => {
    const a = client(replicaA.baseUrl);
    const user = await as({ org: ORG, tenants: ["tenant-r1"], sub: "bob" });
    const denied = await failure(a.rotateSigningKey({}, user));
    expect(denied).toMatchObject({ code: Code.PermissionDenied, reason: "FORBIDDEN" });

    const admin = await as({ org: ORG, admin: true, sub: "carol" });
    const rotation = await a.rotateSigningKey({}, admin);
    const { events } = await a.listAuditEvents({ pageSize: 1000 }, admin);
    const rotations = events.filter((e) => e.details.kid === rotation.keyId);
    expect(rotations).toHaveLength(1);
    expect(rotations[0]).toMatchObject({ actor: "carol", organizationId: ORG, tenantId: "" });
    expect(rotations[0]!.details.retired_kid).toBe(rotation.retiredKeyId);
  });
});

describe("a signing key configured by environment", () => {
  let server: TestServer;
  let kid: string;
  beforeAll(async () => {
    const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
    const jwk = { ...(await exportJWK(privateKey)), kid: "configured-key-1" };
    kid = jwk.kid;
    server = await startTestServer({ EMBED_SIGNING_KEY: JSON.stringify(jwk) });
  });
  afterAll(() => server?.stop());

  it("wins over storage: it signs, it is published, and rotation through the API is refused", async () => {
    const api = client(server.baseUrl);
    const admin = await as({ org: ORG, admin: true });
    const { minted } = await dashboardWithToken(api, admin, "tenant-env");
    expect(decodeProtectedHeader(minted.token).kid).toBe(kid);
    // Published in every organization's set, and in the global one.
    expect(await publishedKids(server.baseUrl)).toEqual([kid]);
    expect(await publishedKids(server.baseUrl, `${server.baseUrl}/.well-known/jwks.json`)).toEqual([kid]);
    const { keys } = (await (await fetch(jwksUrl(server.baseUrl))).json()) as {
      keys: Record<string, unknown>[];
    };
    expect(Object.keys(keys[0]!).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x"]);
    await expect(rendererVerify(server.baseUrl, minted.token)).resolves.toBeDefined();

    const refused = await failure(api.rotateSigningKey({}, admin));
    expect(refused).toMatchObject({ code: Code.FailedPrecondition, reason: "FAILED_PRECONDITION" });
    expect(await storedPrivateKeys(server.db.url, ORG)).toEqual([]);
  });
});
