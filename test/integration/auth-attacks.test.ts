import { Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { ManualClock } from "../helpers/clock.js";
import { failureOf } from "../helpers/errors.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken, TEST_JWT_SECRET } from "../helpers/tokens.js";

let server: TestServer;
let client: DashboardClient;
let victimDashboardId: string;

beforeAll(async () => {
  server = await startTestServer();
  client = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
  const victim = bearer(await callerToken({ org: "victim", admin: true }));
  const { dashboard } = await client.createDashboard(
    { tenantId: "acme-tenant", workspaceId: "w1", name: "Secret numbers" },
    victim,
  );
  victimDashboardId = dashboard!.id;
  await client.createDashboard({ tenantId: "other-tenant", workspaceId: "w1", name: "Other" }, victim);
});
afterAll(() => server.stop());

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

describe("bearer tokens an attacker might send", () => {
  const unauthenticated = { code: Code.Unauthenticated, reason: "UNAUTHORIZED" };

  it("refuses a missing, non-Bearer or garbage Authorization header", async () => {
    expect(await failureOf(client.listDashboards({}))).toMatchObject(unauthenticated);
    expect(
      await failureOf(client.listDashboards({}, { headers: { authorization: "Basic dXNlcjpwYXNz" } })),
    ).toMatchObject(unauthenticated);
    expect(await failureOf(client.listDashboards({}, bearer("not.a.jwt")))).toMatchObject(unauthenticated);
  });

  it("refuses a token signed with another secret (forged)", async () => {
    const forged = await callerToken({
      org: "victim",
      admin: true,
      secret: "a-different-secret-of-at-least-32-bytes!!",
    });
    expect(await failureOf(client.listDashboards({}, bearer(forged)))).toMatchObject(unauthenticated);
  });

  it("refuses an expired token and a token without exp", async () => {
    const expired = await callerToken({ org: "victim", admin: true, expiresIn: -60 });
    expect(await failureOf(client.listDashboards({}, bearer(expired)))).toMatchObject({
      ...unauthenticated,
      message: "the bearer token has expired",
    });
    const eternal = await callerToken({ org: "victim", admin: true, expiresIn: null });
    expect(await failureOf(client.listDashboards({}, bearer(eternal)))).toMatchObject(unauthenticated);
  });

  it("refuses a token once it expires, even after it was accepted (and cached)", async () => {
    const clock = new ManualClock();
    const strict = await startTestServer({ AUTH_CLOCK_TOLERANCE_SECONDS: "0" }, undefined, { clock: clock.now });
    try {
      const strictClient = dashboardClient(createConnectTransport({ baseUrl: strict.baseUrl, httpVersion: "1.1" }));
      const shortLived = bearer(
        await callerToken({ org: "victim", admin: true, expiresIn: 2, issuedAt: clock.seconds() }),
      );
      expect((await strictClient.listDashboards({}, shortLived)).totalSize).toBe(0);
      // exp is in whole seconds: three seconds on, it has passed whatever fraction of a second the clock began at.
      clock.advance(3_000);
      expect(await failureOf(strictClient.listDashboards({}, shortLived))).toMatchObject(unauthenticated);
    } finally {
      await strict.stop();
    }
  });

  it("refuses an unsigned token (alg: none)", async () => {
    const unsigned = `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "x", organization_id: "victim", roles: ["admin"], exp: now() + 600 })}.`;
    expect(await failureOf(client.listDashboards({}, bearer(unsigned)))).toMatchObject(unauthenticated);
  });

  it("refuses a valid signature over altered claims", async () => {
    const [h, , s] = (await callerToken({ org: "attacker", tenants: ["t"] })).split(".");
    const altered = `${h}.${b64({ sub: "x", organization_id: "victim", roles: ["admin"], exp: now() + 600 })}.${s}`;
    expect(await failureOf(client.listDashboards({}, bearer(altered)))).toMatchObject(unauthenticated);
  });

  it("refuses tokens whose claims are missing or malformed", async () => {
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: "HS256" })
        .setExpirationTime("5m")
        .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    for (const claims of [
      { sub: "x" }, // no organization
      { sub: "x", organization_id: "" },
      { sub: "x", organization_id: "bad org!" },
      { organization_id: "victim", roles: ["admin"] }, // no subject
      { sub: "x", organization_id: "victim", roles: "admin" }, // roles not a list
      { sub: "x", organization_id: "victim", tenant_ids: "acme-tenant" },
    ]) {
      expect(
        await failureOf(client.listDashboards({}, bearer(await sign(claims)))),
        JSON.stringify(claims),
      ).toMatchObject(unauthenticated);
    }
  });

  it("accepts the guide's user_id in place of sub", async () => {
    const token = await new SignJWT({ user_id: "guide-user", organization_id: "guide-org", roles: ["admin"] })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    const { dashboard } = await client.createDashboard({ tenantId: "t", workspaceId: "w", name: "n" }, bearer(token));
    expect(dashboard!.createdBy).toBe("guide-user");
  });

  it("refuses an iframe token presented as a caller token (it is a credential only for verifying itself)", async () => {
    const admin = bearer(await callerToken({ org: "victim", admin: true }));
    const { token } = await client.createIframeToken(
      { tenantId: "acme-tenant", workspaceId: "w1", dashboardId: victimDashboardId },
      admin,
    );
    expect(await failureOf(client.listDashboards({}, bearer(token)))).toMatchObject({
      code: Code.PermissionDenied,
      reason: "IFRAME_TOKEN_OUT_OF_SCOPE",
    });
  });
});

describe("another organization", () => {
  it("cannot see, read, delete or mint for the victim's dashboards: they do not exist for it", async () => {
    const attacker = bearer(await callerToken({ org: "attacker", admin: true }));
    const notFound = { code: Code.NotFound, reason: "NOT_FOUND" };
    expect(await failureOf(client.getDashboard({ tenantId: "acme-tenant" }, attacker))).toMatchObject(notFound);
    expect(await failureOf(client.deleteDashboard({ tenantId: "acme-tenant" }, attacker))).toMatchObject(notFound);
    expect(
      await failureOf(
        client.createIframeToken(
          { tenantId: "acme-tenant", workspaceId: "w1", dashboardId: victimDashboardId },
          attacker,
        ),
      ),
    ).toMatchObject(notFound);
    const page = await client.listDashboards({}, attacker);
    expect(page.totalSize).toBe(0);
    expect(page.dashboards).toEqual([]);

    // The same tenant id in the attacker's organization is a different dashboard.
    const { dashboard } = await client.createDashboard(
      { tenantId: "acme-tenant", workspaceId: "w1", name: "Mine" },
      attacker,
    );
    expect(dashboard!.organizationId).toBe("attacker");
    expect(dashboard!.id).not.toBe(victimDashboardId);

    const victim = bearer(await callerToken({ org: "victim", admin: true }));
    const still = await client.getDashboard({ tenantId: "acme-tenant" }, victim);
    expect(still.dashboard).toMatchObject({ id: victimDashboardId, name: "Secret numbers", organizationId: "victim" });
  });

  it("cannot smuggle organization or creator through the request body", async () => {
    const attacker = await callerToken({ org: "smuggler", admin: true, sub: "mallory" });
    const res = await fetch(`${server.baseUrl}/dashboard.v1.DashboardService/CreateDashboard`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${attacker}` },
      body: JSON.stringify({
        tenantId: "t9",
        workspaceId: "w",
        name: "n",
        organizationId: "victim",
        createdBy: "alice",
      }),
    });
    // Unknown JSON fields are ignored (forward compatibility); what matters is they change nothing.
    expect(res.status).toBe(200);
    const { dashboard } = (await res.json()) as { dashboard: Record<string, string> };
    expect(dashboard).toMatchObject({ organizationId: "smuggler", createdBy: "mallory" });
    const victim = bearer(await callerToken({ org: "victim", admin: true }));
    expect(await failureOf(client.getDashboard({ tenantId: "t9" }, victim))).toMatchObject({ code: Code.NotFound });
  });
});

describe("a caller limited to some tenants", () => {
  it("is refused every tenant outside its grant before existence is checked", async () => {
    const narrow = bearer(await callerToken({ org: "victim", tenants: ["acme-tenant"] }));
    const denied = { code: Code.PermissionDenied, reason: "FORBIDDEN" };
    for (const tenantId of ["other-tenant", "does-not-exist"]) {
      expect(await failureOf(client.getDashboard({ tenantId }, narrow))).toMatchObject(denied);
      expect(await failureOf(client.deleteDashboard({ tenantId }, narrow))).toMatchObject(denied);
      expect(await failureOf(client.createDashboard({ tenantId, workspaceId: "w", name: "n" }, narrow))).toMatchObject(
        denied,
      );
      expect(
        await failureOf(
          client.createIframeToken({ tenantId, workspaceId: "w1", dashboardId: victimDashboardId }, narrow),
        ),
      ).toMatchObject(denied);
    }
    const admin = bearer(await callerToken({ org: "victim", admin: true }));
    expect((await client.getDashboard({ tenantId: "other-tenant" }, admin)).dashboard?.name).toBe("Other");
  });

  it("lists only its own tenants, and total_size counts only those", async () => {
    const narrow = bearer(await callerToken({ org: "victim", tenants: ["acme-tenant", "never-created"] }));
    const page = await client.listDashboards({}, narrow);
    expect(page.dashboards.map((d) => d.tenantId)).toEqual(["acme-tenant"]);
    expect(page.totalSize).toBe(1);
  });

  it("cannot mint a token for its tenant with another tenant's dashboard id or workspace", async () => {
    const admin = bearer(await callerToken({ org: "victim", admin: true }));
    const other = (await client.getDashboard({ tenantId: "other-tenant" }, admin)).dashboard!;
    const narrow = bearer(await callerToken({ org: "victim", tenants: ["acme-tenant"] }));
    const notFound = { code: Code.NotFound, reason: "NOT_FOUND" };
    expect(
      await failureOf(
        client.createIframeToken({ tenantId: "acme-tenant", workspaceId: "w1", dashboardId: other.id }, narrow),
      ),
    ).toMatchObject(notFound);
    expect(
      await failureOf(
        client.createIframeToken(
          { tenantId: "acme-tenant", workspaceId: "w2", dashboardId: victimDashboardId },
          narrow,
        ),
      ),
    ).toMatchObject(notFound);
  });
});

describe("asymmetric caller keys (AUTH_JWT_PUBLIC_KEY)", () => {
  it("accepts RS256 tokens and refuses HS256 tokens signed with the public key (algorithm confusion)", async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const pem = await exportSPKI(publicKey);
    const rsServer = await startTestServer({
      AUTH_JWT_SECRET: "",
      AUTH_JWT_PUBLIC_KEY: pem,
      AUTH_JWT_ALGORITHMS: "RS256",
      AUTH_ISSUER: "https://idp.test",
      AUTH_AUDIENCE: "dashboards",
    });
    try {
      const rsClient = dashboardClient(createConnectTransport({ baseUrl: rsServer.baseUrl, httpVersion: "1.1" }));
      const claims = { sub: "u", organization_id: "rs-org", roles: ["admin"] };
      const good = await new SignJWT(claims)
        .setProtectedHeader({ alg: "RS256" })
        .setIssuer("https://idp.test")
        .setAudience("dashboards")
        .setExpirationTime("5m")
        .sign(privateKey);
      expect((await rsClient.listDashboards({}, bearer(good))).totalSize).toBe(0);

      const confused = await new SignJWT(claims)
        .setProtectedHeader({ alg: "HS256" })
        .setIssuer("https://idp.test")
        .setAudience("dashboards")
        .setExpirationTime("5m")
        .sign(new TextEncoder().encode(pem));
      expect(await failureOf(rsClient.listDashboards({}, bearer(confused)))).toMatchObject({
        code: Code.Unauthenticated,
      });

      const wrongIssuer = await new SignJWT(claims)
        .setProtectedHeader({ alg: "RS256" })
        .setIssuer("https://evil.test")
        .setAudience("dashboards")
        .setExpirationTime("5m")
        .sign(privateKey);
      expect(await failureOf(rsClient.listDashboards({}, bearer(wrongIssuer)))).toMatchObject({
        code: Code.Unauthenticated,
      });

      const wrongAudience = await new SignJWT(claims)
        .setProtectedHeader({ alg: "RS256" })
        .setIssuer("https://idp.test")
        .setAudience("other")
        .setExpirationTime("5m")
        .sign(privateKey);
      expect(await failureOf(rsClient.listDashboards({}, bearer(wrongAudience)))).toMatchObject({
        code: Code.Unauthenticated,
      });
    } finally {
      await rsServer.stop();
    }
  });
});
