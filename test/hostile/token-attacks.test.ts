import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { failureOf } from "../helpers/errors.js";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";
import { signWith, storedPrivateKeys } from "../tokens/support.js";

/**
 * Token and injection attacks not covered by test/integration/auth-attacks.test.ts
 * and test/tokens/: kid tricks, tokens of one kind used as the other, SQL and
 * JSON injection in every string field of every RPC and REST route, and tenant
 * ids that differ only by case or unicode normalisation.
 */
let server: TestServer;
let client: DashboardClient;
/** A web server an attacker controls; the service must never fetch anything from it. */
let bait: Server;
let baitUrl: string;
let baitHits = 0;
const ORG = "attack-victim";
let admin: ReturnType<typeof bearer>;
let dashboardId: string;
let iframeToken: string;

beforeAll(async () => {
  server = await startTestServer();
  client = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
  bait = createServer((_req, res) => {
    baitHits++;
    res.end("{}");
  });
  bait.listen(0, "127.0.0.1");
  await once(bait, "listening");
  baitUrl = `http://127.0.0.1:${(bait.address() as AddressInfo).port}`;
  admin = bearer(await callerToken({ org: ORG, admin: true, sub: "victim-admin" }));
  const { dashboard } = await client.createDashboard(
    { tenantId: "tenant-a", workspaceId: "ws-1", name: "Victim board" },
    admin,
  );
  dashboardId = dashboard!.id;
  ({ token: iframeToken } = await client.createIframeToken(
    { tenantId: "tenant-a", workspaceId: "ws-1", dashboardId },
    admin,
  ));
});
afterAll(async () => {
  bait.close();
  await server.stop();
});

const TOKEN_INVALID = { code: Code.InvalidArgument, reason: "TOKEN_INVALID" };
const nowS = () => Math.floor(Date.now() / 1000);
const validClaims = () => ({
  iss: server.config.embed.issuer,
  aud: server.config.embed.audience,
  sub: "victim-admin",
  iat: nowS(),
  nbf: nowS(),
  exp: nowS() + 300,
  jti: "019a0000-0000-7000-8000-000000000001",
  organization_id: ORG,
  tenant_id: "tenant-a",
  workspace_id: "ws-1",
  dashboard_id: dashboardId,
  filters: [{ field: "tenant_id", op: "eq", values: ["tenant-a"] }],
});

describe("iframe tokens whose kid points nowhere or somewhere it must not", () => {
  it("refuses a real signature under a kid that is unknown, a path, a URL or long, and fetches nothing", async () => {
    const [key] = await storedPrivateKeys(server.db.url, ORG);
    const kids = [
      "nowhere",
      "../../etc/passwd",
      "/etc/passwd",
      "file:///etc/passwd",
      `${baitUrl}/jwks.json`,
      "",
      " ",
      "x".repeat(1_000),
      `${key!.kid}/../${key!.kid}`,
      `${key!.kid}\u0000`,
    ];
    for (const kid of kids) {
      const token = await signWith(key!, validClaims(), {
        kid,
        jku: `${baitUrl}/jwks.json`,
        x5u: `${baitUrl}/cert.pem`,
      });
      expect(
        await failureOf(client.verifyIframeToken({ token }, admin)),
        `kid ${JSON.stringify(kid.slice(0, 40))}`,
      ).toMatchObject(TOKEN_INVALID);
    }
    // The control: the same key and claims under its real kid verify (so the refusals above are about the kid).
    const genuine = await signWith(key!, validClaims(), { jku: `${baitUrl}/jwks.json` });
    expect((await client.verifyIframeToken({ token: genuine }, admin)).claims?.tenantId).toBe("tenant-a");
    expect(baitHits, "the service fetched a key from a URL named in a token").toBe(0);
  });

  it("refuses a token too large to be one (a 10 000-character kid) as a bad token argument", async () => {
    const [key] = await storedPrivateKeys(server.db.url, ORG);
    const token = await signWith(key!, validClaims(), { kid: "k".repeat(10_000) });
    expect(await failureOf(client.verifyIframeToken({ token }, admin))).toMatchObject({
      code: Code.InvalidArgument,
      reason: "VALIDATION_ERROR",
      fields: ["token"],
    });
  });

  it("refuses a token that carries its own key (embedded jwk header) under a made-up or a real kid", async () => {
    const [key] = await storedPrivateKeys(server.db.url, ORG);
    const attacker = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const jwk = await exportJWK(attacker.publicKey);
    for (const kid of ["attacker-key", key!.kid]) {
      const token = await new SignJWT(validClaims())
        .setProtectedHeader({ alg: "EdDSA", typ: "dashboard-embed+jwt", kid, jwk })
        .sign(attacker.privateKey);
      expect(await failureOf(client.verifyIframeToken({ token }, admin))).toMatchObject(TOKEN_INVALID);
    }
  });
});

describe("one kind of token used as the other", () => {
  it("refuses a caller token replayed to VerifyIframeToken (it is not an iframe token)", async () => {
    for (const caller of [
      await callerToken({ org: ORG, admin: true }),
      await callerToken({ org: ORG, tenants: ["tenant-a"] }),
    ]) {
      expect(await failureOf(client.verifyIframeToken({ token: caller }, admin))).toMatchObject(TOKEN_INVALID);
    }
  });

  it("refuses an iframe token as the caller token of every REST route (403 IFRAME_TOKEN_OUT_OF_SCOPE)", async () => {
    for (const [method, path, body] of [
      ["GET", "/api/v1/dashboards", undefined],
      ["GET", "/api/v1/dashboards/tenant-a", undefined],
      ["DELETE", "/api/v1/dashboards/tenant-a", undefined],
      ["POST", "/api/v1/dashboards", { tenant_id: "t-new", workspace_id: "ws-1", name: "x" }],
      [
        "POST",
        "/api/v1/dashboards/iframe-token",
        { tenant_id: "tenant-a", workspace_id: "ws-1", dashboard_id: dashboardId },
      ],
    ] as const) {
      const res = await fetch(server.baseUrl + path, {
        method,
        headers: { authorization: `Bearer ${iframeToken}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      expect({ route: `${method} ${path}`, status: res.status, body: await res.json() }).toMatchObject({
        status: 403,
        body: { success: false, code: "IFRAME_TOKEN_OUT_OF_SCOPE" },
      });
    }
    // Still there: the DELETE above changed nothing.
    expect((await client.getDashboard({ tenantId: "tenant-a" }, admin)).dashboard?.id).toBe(dashboardId);
  });
});

// Each one breaks out of a SQL string, a JSON document or a path; none is a valid id.
const INJECTIONS = [
  "' OR '1'='1",
  "tenant-a' --",
  "'; DROP TABLE dashboards;--",
  "1) UNION SELECT value FROM server_secrets--",
  'tenant-a"; DELETE FROM audit_events; --',
  '{"$ne":null}',
  '","organization_id":"attack-victim',
  '"}],"tenant_id":"tenant-a","x":[{"',
  "tenant-a\u0000",
  "%27%20OR%201%3D1",
  "tenant-a/../tenant-b",
  "$1",
  "\\x27",
];

/** What a database error or a stack looks like, should one ever reach a caller. */
const SQL_LEAK = /syntax error|relation "|violates|SQLSTATE|server_secrets|\n\s+at /;

const TABLES = [
  "dashboards",
  "audit_events",
  "create_requests",
  "embed_signing_keys",
  "embed_next_signing_key",
  "organization_signing_keys",
  "embed_token_cutoffs",
  "revoked_embed_tokens",
  "server_secrets",
];
async function rowCounts(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const t of TABLES)
    counts[t] = (await queryDatabase<{ n: number }>(server.db.url, `SELECT count(*)::int AS n FROM ${t}`))[0]!.n;
  return counts;
}

describe("SQL and JSON injection in every string field", () => {
  it("every id, token and page-token field of every RPC answers INVALID_ARGUMENT naming the field, and changes nothing", async () => {
    const before = await rowCounts();
    const ok = { tenantId: "tenant-a", workspaceId: "ws-1" };
    for (const bad of INJECTIONS) {
      const cases: [string, () => Promise<unknown>, string[]][] = [
        [
          "CreateDashboard.tenant_id",
          () => client.createDashboard({ ...ok, tenantId: bad, name: "n" }, admin),
          ["tenant_id"],
        ],
        [
          "CreateDashboard.workspace_id",
          () => client.createDashboard({ ...ok, tenantId: "t-inj", workspaceId: bad, name: "n" }, admin),
          ["workspace_id"],
        ],
        [
          "CreateDashboard.request_id",
          () => client.createDashboard({ ...ok, tenantId: "t-inj", name: "n", requestId: bad }, admin),
          ["request_id"],
        ],
        [
          "CreateDashboard.allowed_origins",
          () => client.createDashboard({ ...ok, tenantId: "t-inj", name: "n", allowedOrigins: [bad] }, admin),
          ["allowed_origins"],
        ],
        ["GetDashboard.tenant_id", () => client.getDashboard({ tenantId: bad }, admin), ["tenant_id"]],
        ["DeleteDashboard.tenant_id", () => client.deleteDashboard({ tenantId: bad }, admin), ["tenant_id"]],
        ["ListDashboards.page_token", () => client.listDashboards({ pageToken: bad }, admin), ["page_token"]],
        ["ListAuditEvents.page_token", () => client.listAuditEvents({ pageToken: bad }, admin), ["page_token"]],
        [
          "CreateIframeToken.tenant_id",
          () => client.createIframeToken({ ...ok, tenantId: bad, dashboardId }, admin),
          ["tenant_id"],
        ],
        [
          "CreateIframeToken.workspace_id",
          () => client.createIframeToken({ ...ok, workspaceId: bad, dashboardId }, admin),
          ["workspace_id"],
        ],
        [
          "CreateIframeToken.dashboard_id",
          () => client.createIframeToken({ ...ok, dashboardId: bad }, admin),
          ["dashboard_id"],
        ],
        [
          "CreateIframeToken.origin",
          () => client.createIframeToken({ ...ok, dashboardId, origin: bad }, admin),
          ["origin"],
        ],
        [
          "CreateIframeToken.filters.field",
          () =>
            client.createIframeToken(
              { ...ok, dashboardId, filters: [{ field: bad, operator: 1, values: ["x"] }] },
              admin,
            ),
          ["filters[0].field"],
        ],
        [
          "RevokeIframeTokens.tenant_id",
          () => client.revokeIframeTokens({ tenantId: bad, target: { case: "allTenantTokens", value: true } }, admin),
          ["tenant_id"],
        ],
        [
          "RevokeIframeTokens.token_id",
          () => client.revokeIframeTokens({ tenantId: "tenant-a", target: { case: "tokenId", value: bad } }, admin),
          ["token_id"],
        ],
        [
          "RevokeIframeTokens.dashboard_id",
          () => client.revokeIframeTokens({ tenantId: "tenant-a", target: { case: "dashboardId", value: bad } }, admin),
          ["dashboard_id"],
        ],
        // Not even made of compact-JWS characters: refused as an argument before any key is looked at.
        ["VerifyIframeToken.token", () => client.verifyIframeToken({ token: bad }, admin), ["token"]],
      ];
      for (const [where, call, fields] of cases) {
        const f = await failureOf(call());
        expect({ where, bad, code: Code[f.code], reason: f.reason }).toEqual({
          where,
          bad,
          code: "InvalidArgument",
          reason: "VALIDATION_ERROR",
        });
        // A oneof's member is reported under its own name (AIP-193).
        if (fields.length) expect(f.fields, `${where} with ${JSON.stringify(bad)}`).toEqual(fields);
        expect(f.message).not.toMatch(SQL_LEAK);
      }
    }
    expect(await rowCounts()).toEqual(before);
  });

  it("free-text fields (name, description, filter values) are stored and returned verbatim, never interpreted", async () => {
    const before = await rowCounts();
    const name = INJECTIONS.filter((s) => !s.includes("\u0000"))
      .join(" | ")
      .slice(0, 200);
    const description = INJECTIONS.filter((s) => !s.includes("\u0000")).join(" ; ");
    const { dashboard } = await client.createDashboard(
      { tenantId: "t-verbatim", workspaceId: "ws-1", name, description },
      admin,
    );
    expect((await client.getDashboard({ tenantId: "t-verbatim" }, admin)).dashboard).toMatchObject({
      name,
      description,
    });
    const [stored] = await queryDatabase<{ name: string; description: string }>(
      server.db.url,
      "SELECT name, description FROM dashboards WHERE id = $1",
      [dashboard!.id],
    );
    expect(stored).toEqual({ name, description });
    // Exactly one dashboard and its one audit row were added; no table lost anything.
    expect(await rowCounts()).toEqual({
      ...before,
      dashboards: before.dashboards! + 1,
      audit_events: before.audit_events! + 1,
    });

    const values = INJECTIONS.filter((s) => !s.includes("\u0000"));
    const minted = await client.createIframeToken(
      {
        tenantId: "t-verbatim",
        workspaceId: "ws-1",
        dashboardId: dashboard!.id,
        filters: [{ field: "region", operator: 3, values }],
      },
      admin,
    );
    const claims = JSON.parse(Buffer.from(minted.token.split(".")[1]!, "base64url").toString()) as {
      organization_id: string;
      tenant_id: string;
      filters: { field: string; values: string[] }[];
    };
    expect(claims.organization_id).toBe(ORG);
    expect(claims.tenant_id).toBe("t-verbatim");
    expect(claims.filters.find((f) => f.field === "region")?.values).toEqual(values);
    // The JSON-breaking values did not add or replace a tenant filter: still exactly one, the server's own.
    expect(claims.filters.filter((f) => f.field === "tenant_id")).toEqual([
      { field: "tenant_id", op: "eq", values: ["t-verbatim"] },
    ]);
    await client.deleteDashboard({ tenantId: "t-verbatim" }, admin);
  });

  it("every REST route answers 422 VALIDATION_ERROR and changes nothing", async () => {
    const before = await rowCounts();
    const token = await callerToken({ org: ORG, admin: true, sub: "victim-admin" });
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(server.baseUrl + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: (await res.json()) as { code?: string; error?: string } };
    };
    for (const bad of INJECTIONS) {
      const enc = encodeURIComponent(bad);
      const answers = {
        "POST dashboards tenant_id": await call("POST", "/api/v1/dashboards", {
          tenant_id: bad,
          workspace_id: "ws-1",
          name: "n",
        }),
        "POST dashboards workspace_id": await call("POST", "/api/v1/dashboards", {
          tenant_id: "t-inj",
          workspace_id: bad,
          name: "n",
        }),
        "GET dashboards/{tenant_id}": await call("GET", `/api/v1/dashboards/${enc}`),
        "DELETE dashboards/{tenant_id}": await call("DELETE", `/api/v1/dashboards/${enc}`),
        "GET dashboards?skip": await call("GET", `/api/v1/dashboards?skip=${enc}`),
        "GET dashboards?limit": await call("GET", `/api/v1/dashboards?limit=${enc}`),
        "POST iframe-token tenant_id": await call("POST", "/api/v1/dashboards/iframe-token", {
          tenant_id: bad,
          workspace_id: "ws-1",
          dashboard_id: dashboardId,
        }),
        "POST iframe-token workspace_id": await call("POST", "/api/v1/dashboards/iframe-token", {
          tenant_id: "tenant-a",
          workspace_id: bad,
          dashboard_id: dashboardId,
        }),
        "POST iframe-token dashboard_id": await call("POST", "/api/v1/dashboards/iframe-token", {
          tenant_id: "tenant-a",
          workspace_id: "ws-1",
          dashboard_id: bad,
        }),
      };
      for (const [where, a] of Object.entries(answers)) {
        // An encoded "/" stays one path segment: the decoded tenant id is refused like any other bad id.
        expect({ where, bad, status: a.status, code: a.body.code }).toEqual({
          where,
          bad,
          status: 422,
          code: "VALIDATION_ERROR",
        });
        expect(a.body.error).not.toMatch(SQL_LEAK);
      }
    }
    expect(await rowCounts()).toEqual(before);
  });
});

describe("tenant ids that differ only by case or unicode normalisation", () => {
  it("a caller granted tenant-a is refused Tenant-A (another tenant) and tenant-ａ (not an id at all)", async () => {
    const limited = bearer(await callerToken({ org: ORG, tenants: ["tenant-a"], sub: "limited" }));
    expect((await client.getDashboard({ tenantId: "tenant-a" }, limited)).dashboard?.id).toBe(dashboardId);
    for (const lookalike of ["Tenant-A", "TENANT-A", "tenant-A", "Tenant-a"]) {
      for (const call of [
        client.getDashboard({ tenantId: lookalike }, limited),
        client.deleteDashboard({ tenantId: lookalike }, limited),
        client.createDashboard({ tenantId: lookalike, workspaceId: "ws-1", name: "n" }, limited),
        client.createIframeToken({ tenantId: lookalike, workspaceId: "ws-1", dashboardId }, limited),
        client.revokeIframeTokens({ tenantId: lookalike, target: { case: "allTenantTokens", value: true } }, limited),
      ]) {
        expect(await failureOf(call), lookalike).toMatchObject({ code: Code.PermissionDenied, reason: "FORBIDDEN" });
      }
    }
    // Fullwidth "ａ", a combining accent, a Cyrillic "а", a dotless i, NFKC and NFD forms: validation refuses every non-ASCII id.
    for (const lookalike of [
      "tenant-ａ",
      "tenant-a\u0301",
      "tenant-\u0430",
      "ten\u0131nt-a",
      "\uFF54enant-a",
      "tenant-a".normalize("NFD") + "\u200b",
    ]) {
      for (const [call, field] of [
        [client.getDashboard({ tenantId: lookalike }, limited), "tenant_id"],
        [client.createDashboard({ tenantId: lookalike, workspaceId: "ws-1", name: "n" }, admin), "tenant_id"],
        [
          client.createIframeToken({ tenantId: "tenant-a", workspaceId: lookalike, dashboardId }, limited),
          "workspace_id",
        ],
      ] as const) {
        expect(await failureOf(call), JSON.stringify(lookalike)).toMatchObject({
          code: Code.InvalidArgument,
          reason: "VALIDATION_ERROR",
          fields: [field],
        });
      }
      const res = await fetch(`${server.baseUrl}/api/v1/dashboards/${encodeURIComponent(lookalike)}`, {
        headers: limited.headers,
      });
      expect({ status: res.status, code: ((await res.json()) as { code: string }).code }).toEqual({
        status: 422,
        code: "VALIDATION_ERROR",
      });
    }
  });

  it("case-distinct tenants are distinct: an admin's Tenant-A never shows to a caller granted tenant-a", async () => {
    const { dashboard } = await client.createDashboard(
      { tenantId: "Tenant-A", workspaceId: "ws-1", name: "Upper" },
      admin,
    );
    try {
      const limited = bearer(await callerToken({ org: ORG, tenants: ["tenant-a"], sub: "limited" }));
      const { dashboards } = await client.listDashboards({ pageSize: 1000 }, limited);
      expect(dashboards.map((d) => d.tenantId)).toEqual(["tenant-a"]);
      expect((await client.getDashboard({ tenantId: "tenant-a" }, limited)).dashboard?.id).not.toBe(dashboard!.id);
      // Minting the lower-case tenant with the upper-case tenant's dashboard id is NOT_FOUND.
      expect(
        await failureOf(
          client.createIframeToken({ tenantId: "tenant-a", workspaceId: "ws-1", dashboardId: dashboard!.id }, limited),
        ),
      ).toMatchObject({
        code: Code.NotFound,
      });
    } finally {
      await client.deleteDashboard({ tenantId: "Tenant-A" }, admin);
    }
  });

  it("a caller token whose grant names a non-ASCII or differently-cased tenant gets nothing of tenant-a", async () => {
    // A grant that is not a valid tenant id makes the token itself invalid; a differently-cased one grants another tenant.
    for (const [grant, code] of [
      ["tenant-ａ", Code.Unauthenticated],
      ["tenant-a\u0301", Code.Unauthenticated],
      ["TENANT-A", Code.PermissionDenied],
    ] as const) {
      const caller = bearer(await callerToken({ org: ORG, tenants: [grant], sub: "odd-grant" }));
      expect(
        await failureOf(client.getDashboard({ tenantId: "tenant-a" }, caller)),
        JSON.stringify(grant),
      ).toMatchObject({ code });
      const listed = await client.listDashboards({ pageSize: 1000 }, caller).then(
        (r) => r.dashboards.map((d) => d.tenantId),
        (err: unknown) => err,
      );
      // Either the token is refused outright or it sees nothing: never tenant-a.
      expect(Array.isArray(listed) ? listed : []).not.toContain("tenant-a");
    }
  });
});
