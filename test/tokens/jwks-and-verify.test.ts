import { Code } from "@connectrpc/connect";
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FilterOperator } from "../../gen/dashboard/v1/iframe_token_pb.js";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { as, client, dashboardWithToken, failure, nowSeconds, signWith, storedPrivateKeys } from "./support.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

/** Exactly what a third-party renderer does: the published JWKS, EdDSA only, our iss and aud. */
async function rendererVerify(token: string) {
  // As a renderer picks it: the organization named in the token, read before verification.
  const organization = decodeJwt(token).organization_id as string;
  const jwks = createRemoteJWKSet(new URL(`${server.baseUrl}/.well-known/jwks/${organization}.json`));
  return jwtVerify(token, jwks, {
    algorithms: ["EdDSA"],
    issuer: "dashboard-service",
    audience: "dashboard-embed",
    typ: "dashboard-embed+jwt",
    clockTolerance: 5,
  });
}

/** Base64url-decodes, edits and re-encodes one JSON part of a compact JWS. */
function editPart(token: string, index: 0 | 1, edit: (json: Record<string, unknown>) => void): string {
  const parts = token.split(".");
  const json = JSON.parse(Buffer.from(parts[index]!, "base64url").toString()) as Record<string, unknown>;
  edit(json);
  parts[index] = Buffer.from(JSON.stringify(json)).toString("base64url");
  return parts.join(".");
}

describe("GET /.well-known/jwks/{organization_id}.json", () => {
  it("publishes the organization's public keys with kid, alg and use, cache headers, any origin, and no private material", async () => {
    const api = client(server.baseUrl);
    const admin = await as({ org: "org-jwks", admin: true });
    await dashboardWithToken(api, admin, "tenant-j1");
    const url = `${server.baseUrl}/.well-known/jwks/org-jwks.json`;
    const res = await fetch(url, { headers: { origin: "https://renderer.example" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/jwk-set+json");
    expect(res.headers.get("cache-control")).toMatch(/^public, max-age=300/);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    const etag = res.headers.get("etag");
    expect(etag).toMatch(/^".+"$/);
    const { keys } = (await res.json()) as { keys: Record<string, unknown>[] };
    for (const key of keys) {
      expect(Object.keys(key).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x"]);
      expect(key).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
    }
    const stored = await storedPrivateKeys(server.db.url, "org-jwks");
    // The active signer and the next key, published ahead of the rotation that will activate it.
    expect(stored).toHaveLength(2);
    expect(keys.map((k) => k.kid).sort()).toEqual(stored.map((k) => k.kid).sort());
    for (const k of stored) expect(JSON.stringify(keys)).not.toContain(k.jwk.d!);

    const again = await fetch(url, { headers: { "if-none-match": etag! } });
    expect(again.status).toBe(304);
    expect(again.headers.get("etag")).toBe(etag);
    const post = await fetch(url, { method: "POST" });
    expect(post.status).toBe(405);
  });

  it("answers an organization without keys with an empty set, cached briefly, and creates none", async () => {
    const res = await fetch(`${server.baseUrl}/.well-known/jwks/org-never-minted.json`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ keys: [] });
    expect(res.headers.get("cache-control")).toMatch(/^public, max-age=60/);
    const rows = await queryDatabase(
      server.db.url,
      "SELECT kid FROM organization_signing_keys WHERE organization_id = 'org-never-minted'",
    );
    expect(rows).toEqual([]);
  });

  it("refuses malformed organization ids before reading anything, in the plain error shape, readable cross-origin", async () => {
    const cases: [string, number, string][] = [
      ["/.well-known/jwks/has%20space.json", 400, "MALFORMED_REQUEST"],
      [`/.well-known/jwks/${"a".repeat(129)}.json`, 400, "MALFORMED_REQUEST"],
      [`/.well-known/jwks/${"a".repeat(5000)}.json`, 400, "MALFORMED_REQUEST"],
      ["/.well-known/jwks/%ZZ.json", 400, "MALFORMED_REQUEST"],
      ["/.well-known/jwks/.json", 400, "MALFORMED_REQUEST"],
      ["/.well-known/jwks/org-a", 404, "ROUTE_NOT_FOUND"],
      ["/.well-known/jwks/org-a/b.json", 404, "ROUTE_NOT_FOUND"],
    ];
    for (const [path, status, reason] of cases) {
      const res = await fetch(`${server.baseUrl}${path}`);
      expect({ path: path.slice(0, 60), status: res.status }).toEqual({ path: path.slice(0, 60), status });
      // A page on another origin reads the refusal, not an opaque CORS failure.
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      const body = (await res.json()) as { details?: { debug?: { reason?: string } }[] };
      expect(JSON.stringify(body)).toContain(reason);
    }
  });
});

describe("a minted token, checked by a renderer offline and by VerifyIframeToken", () => {
  it("verifies with jose against the published JWKS and through the RPC, with the same claims", async () => {
    const api = client(server.baseUrl);
    const admin = await as({ org: "org-verify", admin: true, sub: "alice" });
    const { dashboard, minted } = await dashboardWithToken(api, admin, "tenant-v1");

    const { payload, protectedHeader } = await rendererVerify(minted.token);
    expect(protectedHeader).toMatchObject({ alg: "EdDSA", typ: "dashboard-embed+jwt" });
    expect(payload).toMatchObject({
      iss: "dashboard-service",
      aud: "dashboard-embed",
      sub: "alice",
      jti: minted.tokenId,
      organization_id: "org-verify",
      tenant_id: "tenant-v1",
      workspace_id: "ws-1",
      dashboard_id: dashboard.id,
      filters: [{ field: "tenant_id", op: "eq", values: ["tenant-v1"] }],
    });
    expect(BigInt(payload.exp!)).toBe(minted.expiresAt);
    expect(Math.abs(payload.iat! - nowSeconds())).toBeLessThanOrEqual(5);

    // A renderer's service account: same organization, no tenant grant, no admin role.
    const renderer = await as({ org: "org-verify", sub: "renderer" });
    const { claims } = await api.verifyIframeToken({ token: minted.token }, renderer);
    expect(claims).toMatchObject({
      keyId: protectedHeader.kid,
      issuer: "dashboard-service",
      audience: "dashboard-embed",
      subject: "alice",
      tokenId: minted.tokenId,
      organizationId: "org-verify",
      tenantId: "tenant-v1",
      workspaceId: "ws-1",
      dashboardId: dashboard.id,
      expiresAt: minted.expiresAt,
      origin: "",
    });
    expect(claims!.filters.map((f) => ({ field: f.field, operator: f.operator, values: f.values }))).toEqual([
      { field: "tenant_id", operator: FilterOperator.EQUALS, values: ["tenant-v1"] },
    ]);
  });

  it("refuses every tampered part: header, payload and signature, offline and through the RPC", async () => {
    const api = client(server.baseUrl);
    const admin = await as({ org: "org-tamper", admin: true });
    const { minted } = await dashboardWithToken(api, admin, "tenant-t1");
    await api.createDashboard({ tenantId: "tenant-t2", workspaceId: "ws-1", name: "Other" }, admin);
    const token = minted.token;
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const flipped = signature.slice(0, 10) + (signature[10] === "A" ? "B" : "A") + signature.slice(11);

    const tampered: Record<string, string> = {
      "payload: another tenant": editPart(token, 1, (p) => (p.tenant_id = "tenant-t2")),
      "payload: a widened filter": editPart(token, 1, (p) => (p.filters = [])),
      "payload: a later exp": editPart(token, 1, (p) => (p.exp = (p.exp as number) + 3600)),
      "header: alg none": editPart(token, 0, (h) => (h.alg = "none")),
      "header: alg HS256": editPart(token, 0, (h) => (h.alg = "HS256")),
      "header: unknown kid": editPart(token, 0, (h) => (h.kid = "not-a-key")),
      "header: another typ": editPart(token, 0, (h) => (h.typ = "JWT")),
      "signature: one character changed": `${header}.${payload}.${flipped}`,
      "signature: removed": `${header}.${payload}.`,
      "not a JWS at all": "abc.def",
    };
    const verifier = await as({ org: "org-tamper", sub: "renderer" });
    for (const [what, bad] of Object.entries(tampered)) {
      await expect(rendererVerify(bad), what).rejects.toBeInstanceOf(errors.JOSEError);
      const f = await failure(api.verifyIframeToken({ token: bad }, verifier));
      expect({ what, code: f.code, reason: f.reason }).toEqual({
        what,
        code: Code.InvalidArgument,
        reason: "TOKEN_INVALID",
      });
    }
    // The untouched token still verifies: the refusals above were about the edits.
    await expect(api.verifyIframeToken({ token }, verifier)).resolves.toBeDefined();
  });

  it("checks exp and nbf with a small leeway, iss, aud and the required claims of tokens signed with the real key", async () => {
    const api = client(server.baseUrl);
    const admin = await as({ org: "org-claims", admin: true });
    const { dashboard } = await dashboardWithToken(api, admin, "tenant-c1");
    const [key] = await storedPrivateKeys(server.db.url, "org-claims");
    const now = nowSeconds();
    const claims = {
      iss: "dashboard-service",
      aud: "dashboard-embed",
      sub: "alice",
      iat: now - 60,
      nbf: now - 60,
      exp: now + 600,
      jti: "0190a0b0-0000-7000-8000-000000000001",
      organization_id: "org-claims",
      tenant_id: "tenant-c1",
      workspace_id: "ws-1",
      dashboard_id: dashboard.id,
      filters: [{ field: "tenant_id", op: "eq", values: ["tenant-c1"] }],
    };
    const verifier = await as({ org: "org-claims", sub: "renderer" });
    const outcome = async (overrides: Record<string, unknown>) => {
      const token = await signWith(key!, { ...claims, ...overrides });
      return api.verifyIframeToken({ token }, verifier).then(
        () => "ok",
        async () => (await failure(api.verifyIframeToken({ token }, verifier))).reason,
      );
    };

    expect(await outcome({})).toBe("ok");
    expect(await outcome({ exp: now - 30 })).toBe("TOKEN_EXPIRED");
    expect(await outcome({ exp: now - 2 })).toBe("ok"); // inside the 5 s leeway
    expect(await outcome({ nbf: now + 60 })).toBe("TOKEN_INVALID");
    expect(await outcome({ nbf: now + 2 })).toBe("ok"); // inside the leeway
    expect(await outcome({ iss: "someone-else" })).toBe("TOKEN_INVALID");
    expect(await outcome({ aud: "another-audience" })).toBe("TOKEN_INVALID");
    expect(await outcome({ jti: undefined })).toBe("TOKEN_INVALID");
    expect(await outcome({ tenant_id: undefined })).toBe("TOKEN_INVALID");
    expect(await outcome({ filters: "tenant_id = 'x' OR 1=1" })).toBe("TOKEN_INVALID");

    const expired = await failure(
      api.verifyIframeToken({ token: await signWith(key!, { ...claims, exp: now - 30 }) }, verifier),
    );
    expect(expired.code).toBe(Code.FailedPrecondition);
  });

  it("never verifies a token of another organization for a caller of this one (attacker's side)", async () => {
    const api = client(server.baseUrl);
    const victim = await as({ org: "org-victim", admin: true });
    const { minted } = await dashboardWithToken(api, victim, "tenant-x");
    const attacker = await as({ org: "org-attacker", admin: true });

    const f = await failure(api.verifyIframeToken({ token: minted.token }, attacker));
    expect(f).toMatchObject({ code: Code.InvalidArgument, reason: "TOKEN_INVALID" });
    expect(f.message).not.toContain("org-victim");
    // The same token is fine for its own organization, so the refusal was about the organization.
    await expect(
      api.verifyIframeToken({ token: minted.token }, await as({ org: "org-victim" })),
    ).resolves.toBeDefined();
  });

  it("requires an authenticated caller and a token argument", async () => {
    const api = client(server.baseUrl);
    const anonymous = await failure(api.verifyIframeToken({ token: "a.b.c" }));
    expect(anonymous).toMatchObject({ code: Code.Unauthenticated, reason: "UNAUTHORIZED" });
    const empty = await failure(api.verifyIframeToken({ token: "" }, await as({ org: "org-verify" })));
    expect(empty).toMatchObject({ code: Code.InvalidArgument, reason: "VALIDATION_ERROR", fields: ["token"] });
  });

  it("keeps expires_at from the server clock and the maximum lifetime mandatory", async () => {
    const api = client(server.baseUrl);
    const admin = await as({ org: "org-ttl", admin: true });
    const { dashboard } = await dashboardWithToken(api, admin, "tenant-ttl");
    const tooLong = await failure(
      api.createIframeToken(
        {
          tenantId: "tenant-ttl",
          workspaceId: "ws-1",
          dashboardId: dashboard.id,
          validUntil: BigInt(nowSeconds() + 86400 + 120),
        },
        admin,
      ),
    );
    expect(tooLong).toMatchObject({ reason: "VALIDATION_ERROR", fields: ["valid_until"] });
    const minted = await api.createIframeToken(
      { tenantId: "tenant-ttl", workspaceId: "ws-1", dashboardId: dashboard.id },
      admin,
    );
    const { iat, exp } = decodeJwt(minted.token);
    expect(exp! - iat!).toBe(600);
    expect(decodeProtectedHeader(minted.token).kid).toBeTruthy();
  });
});
