import { Code } from "@connectrpc/connect";
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../helpers/clock.js";
import { storedOrganizationKeys } from "../helpers/keys.js";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { as, client, dashboardWithToken, failure } from "./support.js";

// A retired key verifies for max TTL (3 s) + leeway (5 s) + key refresh (5 s) + 1 s = 14 s.
const SHORT_TTL = {
  EMBED_TOKEN_MAX_TTL_SECONDS: "3",
  EMBED_TOKEN_DEFAULT_TTL_SECONDS: "3",
  SIGNING_KEY_PURGE_INTERVAL_SECONDS: "1",
};
const RETIRED_KEY_GRACE_MS = 14_000;

const jwksUrl = (baseUrl: string, org: string) => `${baseUrl}/.well-known/jwks/${org}.json`;
async function publishedKids(baseUrl: string, org: string): Promise<string[]> {
  const { keys } = (await (await fetch(jwksUrl(baseUrl, org))).json()) as { keys: { kid: string }[] };
  return keys.map((k) => k.kid).sort();
}

/** As a renderer: the set named by the token's organization_id, fetched with jose's remote key set. */
function rendererVerify(baseUrl: string, org: string, token: string, clock: ManualClock) {
  return jwtVerify(token, createRemoteJWKSet(new URL(jwksUrl(baseUrl, org))), {
    algorithms: ["EdDSA"],
    issuer: "dashboard-service",
    audience: "dashboard-embed",
    clockTolerance: 5,
    currentDate: clock.date(),
  });
}

describe("one key ring per organization, across two replicas", () => {
  const clock = new ManualClock();
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    a = await startTestServer(SHORT_TTL, undefined, { clock: clock.now });
    b = await startTestServer(SHORT_TTL, a.db, { clock: clock.now });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  it("rotates only the admin's own organization: the other's keys, key set and tokens are untouched", async () => {
    const adminA = await as({ org: "org-a", admin: true, sub: "admin-a" });
    const adminB = await as({ org: "org-b", admin: true, sub: "admin-b" });
    const { minted: tokenA } = await dashboardWithToken(client(a.baseUrl), adminA, "tenant-a");
    const { minted: tokenB } = await dashboardWithToken(client(b.baseUrl), adminB, "tenant-b");
    const kidA = decodeProtectedHeader(tokenA.token).kid!;
    const kidB = decodeProtectedHeader(tokenB.token).kid!;
    expect(kidA).not.toBe(kidB);
    // Each set holds only its own organization's keys.
    const setA = await publishedKids(b.baseUrl, "org-a");
    const setB = await publishedKids(a.baseUrl, "org-b");
    expect(setA).toContain(kidA);
    expect(setB).toContain(kidB);
    expect(setA.filter((k) => setB.includes(k))).toEqual([]);
    const storedB = await storedOrganizationKeys(a.db.url, "org-b");

    // B's admin rotates: there is no way to name A, so only B's ring moves.
    const rotation = await client(a.baseUrl).rotateSigningKey({}, adminB);
    expect(rotation.retiredKeyId).toBe(kidB);
    expect(await storedOrganizationKeys(a.db.url, "org-a")).toHaveLength(2);
    expect(await publishedKids(b.baseUrl, "org-a")).toEqual(setA);
    const minted = await client(a.baseUrl).createIframeToken(
      { tenantId: "tenant-a", workspaceId: "ws-1", dashboardId: (await dashboardOf(a, adminA, "tenant-a")).id },
      adminA,
    );
    expect(decodeProtectedHeader(minted.token).kid).toBe(kidA);
    await expect(rendererVerify(b.baseUrl, "org-a", tokenA.token, clock)).resolves.toBeDefined();

    // B's ring did rotate, and its old token verifies across the rotation, offline and online.
    const afterB = await storedOrganizationKeys(a.db.url, "org-b");
    expect(afterB.map((k) => [k.kid, k.state])).toEqual(
      expect.arrayContaining([
        [kidB, "retired"],
        [rotation.keyId, "active"],
      ]),
    );
    expect(afterB.find((k) => k.kid === rotation.keyId)!.kid).toBe(storedB.find((k) => k.state === "next")!.kid);
    // The retired key lost its private half at once; it only verifies now.
    expect(afterB.find((k) => k.kid === kidB)!.sealed).toBeNull();
    await expect(rendererVerify(a.baseUrl, "org-b", tokenB.token, clock)).resolves.toBeDefined();
    const renderer = await as({ org: "org-b", sub: "renderer" });
    await expect(client(b.baseUrl).verifyIframeToken({ token: tokenB.token }, renderer)).resolves.toBeDefined();
    const fresh = await client(a.baseUrl).createIframeToken(
      { tenantId: "tenant-b", workspaceId: "ws-1", dashboardId: (await dashboardOf(a, adminB, "tenant-b")).id },
      adminB,
    );
    expect(decodeProtectedHeader(fresh.token).kid).toBe(rotation.keyId);
    await expect(rendererVerify(b.baseUrl, "org-b", fresh.token, clock)).resolves.toBeDefined();

    // One organization's key set never verifies another's tokens.
    await expect(rendererVerify(a.baseUrl, "org-a", fresh.token, clock)).rejects.toThrow();
    const attacker = await failure(client(a.baseUrl).verifyIframeToken({ token: fresh.token }, adminA));
    expect(attacker).toMatchObject({ code: Code.InvalidArgument, reason: "TOKEN_INVALID" });
  });

  it("purges retired keys in the background once their window is over, on one replica at a time", async () => {
    const admin = await as({ org: "org-purge", admin: true });
    await dashboardWithToken(client(a.baseUrl), admin, "tenant-p");
    const { retiredKeyId } = await client(b.baseUrl).rotateSigningKey({}, admin);
    const rotatedAt = clock.now();
    // Both replicas' runners find the job due; the key is still inside its window, so it stays.
    await Promise.all([a.app.jobs.runDue(), b.app.jobs.runDue()]);
    expect((await storedOrganizationKeys(a.db.url, "org-purge")).map((k) => k.kid)).toContain(retiredKeyId);

    clock.advance(rotatedAt + RETIRED_KEY_GRACE_MS + 1_000 - clock.now());
    const rounds = await Promise.all([a.app.jobs.runDue(), b.app.jobs.runDue()]);
    const purges = rounds.flat().filter((r) => r.name === "signing-keys.purge");
    expect(purges.every((r) => r.error === undefined)).toBe(true);
    expect(purges.filter((r) => r.ran).length).toBeGreaterThanOrEqual(1);
    const left = await storedOrganizationKeys(a.db.url, "org-purge");
    expect(left.map((k) => k.kid)).not.toContain(retiredKeyId);
    expect(left.map((k) => k.state).sort()).toEqual(["active", "next"]);
    expect(await publishedKids(a.baseUrl, "org-purge")).not.toContain(retiredKeyId);
  });

  it("bounds the keys an organization can have published; room comes back as retired keys' windows end", async () => {
    const bounded = await startTestServer({ ...SHORT_TTL, SIGNING_KEYS_MAX_PER_ORGANIZATION: "4" }, a.db, {
      clock: clock.now,
    });
    try {
      const api = client(bounded.baseUrl);
      const admin = await as({ org: "org-bounded", admin: true });
      await dashboardWithToken(api, admin, "tenant-x");
      await api.rotateSigningKey({}, admin); // active + next + 1 retired
      await api.rotateSigningKey({}, admin); // + 2 retired = 4
      const refused = await failure(api.rotateSigningKey({}, admin));
      expect(refused).toMatchObject({ code: Code.ResourceExhausted, reason: "TOO_MANY_SIGNING_KEYS" });
      expect(await publishedKids(bounded.baseUrl, "org-bounded")).toHaveLength(4);
      clock.advance(RETIRED_KEY_GRACE_MS + 1_000);
      await expect(api.rotateSigningKey({}, admin)).resolves.toBeDefined();
    } finally {
      await bounded.stop();
    }
  });
});

async function dashboardOf(server: TestServer, caller: Awaited<ReturnType<typeof as>>, tenantId: string) {
  return (await client(server.baseUrl).getDashboard({ tenantId }, caller)).dashboard!;
}

describe("RotateSigningKey's rate limit (one per 10 minutes per organization by default)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ RATE_LIMIT_KEY_ROTATIONS: "" });
  });
  afterAll(() => server?.stop());

  it("refuses a second rotation of the organization, not of another, and a non-admin's attempt spends nothing", async () => {
    const api = client(server.baseUrl);
    const admin = await as({ org: "org-limited", admin: true, sub: "first-admin" });
    const user = await as({ org: "org-limited", tenants: ["t"], sub: "mallory" });
    for (let i = 0; i < 3; i++) {
      expect(await failure(api.rotateSigningKey({}, user))).toMatchObject({ reason: "FORBIDDEN" });
    }
    await expect(api.rotateSigningKey({}, admin)).resolves.toBeDefined();
    const again = await failure(
      api.rotateSigningKey({}, await as({ org: "org-limited", admin: true, sub: "second-admin" })),
    );
    expect(again).toMatchObject({ code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
    expect(again.message).toContain("key-rotation: 1 per 600 s");
    await expect(api.rotateSigningKey({}, await as({ org: "org-other", admin: true }))).resolves.toBeDefined();
    const rotations = await queryDatabase<{ n: number }>(
      server.db.url,
      "SELECT count(*)::int AS n FROM audit_events WHERE organization_id = 'org-limited' AND action = 'SIGNING_KEY_ROTATED'",
    );
    expect(rotations[0]!.n).toBe(1);
  });
});
