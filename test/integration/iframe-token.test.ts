import { Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, jwtVerify, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { failureOf } from "../helpers/errors.js";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";

let server: TestServer;
let client: DashboardClient;
let admin: ReturnType<typeof bearer>;
let dashboardId: string;

beforeAll(async () => {
  server = await startTestServer();
  client = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
  admin = bearer(await callerToken({ org: "embedder", admin: true, sub: "minter" }));
  dashboardId = (await client.createDashboard({ tenantId: "t1", workspaceId: "w1", name: "Embedded" }, admin))
    .dashboard!.id;
});
afterAll(() => server.stop());

async function storedPublicKey(url: string): Promise<JWK> {
  const rows = await queryDatabase<{ public_jwk: JWK }>(
    url,
    "SELECT public_jwk FROM organization_signing_keys WHERE organization_id = 'embedder' AND state = 'active'",
  );
  return rows[0]!.public_jwk;
}

describe("CreateIframeToken", () => {
  it("mints an EdDSA JWS a renderer can verify with the public key alone", async () => {
    const minted = await client.createIframeToken({ tenantId: "t1", workspaceId: "w1", dashboardId }, admin);
    const publicJwk = await storedPublicKey(server.db.url);
    expect(publicJwk.d).toBeUndefined();
    const { payload, protectedHeader } = await jwtVerify(minted.token, await importJWK(publicJwk, "EdDSA"), {
      algorithms: ["EdDSA"],
      issuer: "dashboard-service",
      audience: "dashboard-embed",
    });
    expect(protectedHeader).toMatchObject({ alg: "EdDSA", kid: publicJwk.kid, typ: "dashboard-embed+jwt" });
    expect(payload).toMatchObject({
      organization_id: "embedder",
      tenant_id: "t1",
      workspace_id: "w1",
      dashboard_id: dashboardId,
      sub: "minter",
      exp: Number(minted.expiresAt),
    });
    expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(payload.exp! - payload.iat!).toBe(600);
  });

  it("honours valid_until and refuses it in the past or beyond the maximum lifetime, never clamping", async () => {
    const now = Math.floor(Date.now() / 1000);
    const ok = await client.createIframeToken(
      { tenantId: "t1", workspaceId: "w1", dashboardId, validUntil: BigInt(now + 3600) },
      admin,
    );
    expect(ok.expiresAt).toBe(BigInt(now + 3600));

    const invalid = { code: Code.InvalidArgument, reason: "VALIDATION_ERROR", fields: ["valid_until"] };
    for (const validUntil of [now - 10, now + 86400 + 120, 0, -5]) {
      expect(
        await failureOf(
          client.createIframeToken(
            { tenantId: "t1", workspaceId: "w1", dashboardId, validUntil: BigInt(validUntil) },
            admin,
          ),
        ),
        `valid_until ${validUntil}`,
      ).toMatchObject(invalid);
    }
    expect(
      await failureOf(
        client.createIframeToken({ tenantId: "t1", workspaceId: "w1", dashboardId, validUntil: 2n ** 62n }, admin),
      ),
    ).toMatchObject(invalid);
  });

  it("needs the dashboard to exist for that tenant and workspace", async () => {
    const notFound = { code: Code.NotFound, reason: "NOT_FOUND" };
    expect(
      await failureOf(client.createIframeToken({ tenantId: "t1", workspaceId: "w2", dashboardId }, admin)),
    ).toMatchObject(notFound);
    expect(
      await failureOf(
        client.createIframeToken(
          { tenantId: "t1", workspaceId: "w1", dashboardId: "0190f3c2-0000-7000-8000-000000000000" },
          admin,
        ),
      ),
    ).toMatchObject(notFound);
    expect(
      await failureOf(client.createIframeToken({ tenantId: "t2", workspaceId: "w1", dashboardId }, admin)),
    ).toMatchObject(notFound);
    expect(
      await failureOf(client.createIframeToken({ tenantId: "t1", workspaceId: "w1", dashboardId: "" }, admin)),
    ).toMatchObject({
      code: Code.InvalidArgument,
      fields: ["dashboard_id"],
    });
  });

  it("signs with the same stored key on every replica", async () => {
    const replica = await startTestServer({}, server.db);
    try {
      const other = dashboardClient(createConnectTransport({ baseUrl: replica.baseUrl, httpVersion: "1.1" }));
      const a = await client.createIframeToken({ tenantId: "t1", workspaceId: "w1", dashboardId }, admin);
      const b = await other.createIframeToken({ tenantId: "t1", workspaceId: "w1", dashboardId }, admin);
      expect(decodeProtectedHeader(a.token).kid).toBe(decodeProtectedHeader(b.token).kid);
      const key = await importJWK(await storedPublicKey(server.db.url), "EdDSA");
      await jwtVerify(b.token, key);
      // Both replicas found the one ring the first mint created; neither made its own.
      const rows = await queryDatabase(
        server.db.url,
        "SELECT kid FROM organization_signing_keys WHERE state = 'active'",
      );
      expect(rows).toHaveLength(1);
    } finally {
      await replica.app.stop(1000);
    }
  });

  it("signs with EMBED_SIGNING_KEY when it is configured", async () => {
    const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
    const jwk = { ...(await exportJWK(privateKey)), kid: "configured-key" };
    const configured = await startTestServer({
      EMBED_SIGNING_KEY: JSON.stringify(jwk),
      EMBED_TOKEN_ISSUER: "me",
      EMBED_TOKEN_AUDIENCE: "them",
    });
    try {
      const c = dashboardClient(createConnectTransport({ baseUrl: configured.baseUrl, httpVersion: "1.1" }));
      const id = (await c.createDashboard({ tenantId: "t", workspaceId: "w", name: "n" }, admin)).dashboard!.id;
      const minted = await c.createIframeToken({ tenantId: "t", workspaceId: "w", dashboardId: id }, admin);
      const { protectedHeader } = await jwtVerify(minted.token, publicKey, { issuer: "me", audience: "them" });
      expect(protectedHeader.kid).toBe("configured-key");
    } finally {
      await configured.stop();
    }
  });
});
