import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";

/**
 * Property: for random sequences of operations (Connect RPCs and the REST
 * routes) by random callers of two organizations, no answer to one
 * organization ever contains anything of the other (organization id, tenant
 * ids, dashboard ids, names, token claims), a tenant-limited caller never sees
 * a tenant outside its grant, and every answer is the one a model of what was
 * acknowledged predicts. Attackers aim at the other organization's tenants and
 * ids on purpose, and tenant names exist in both organizations' grants.
 */
let server: TestServer;
let client: DashboardClient;
const RUNS = Number(process.env.PROPERTY_RUNS ?? 100);

const ORGS = ["iso-alpha", "iso-bravo"] as const;
type Org = (typeof ORGS)[number];
const other = (org: Org): Org => (org === "iso-alpha" ? "iso-bravo" : "iso-alpha");
const short = (org: Org) => (org === "iso-alpha" ? "alpha" : "bravo");
const TENANTS: Record<Org, string[]> = {
  "iso-alpha": [0, 1, 2, 3].map((i) => `alpha-t${i}`),
  "iso-bravo": [0, 1, 2, 3].map((i) => `bravo-t${i}`),
};
const NAME = (org: Org, tenant: string) => `${short(org) === "alpha" ? "Alphaboard" : "Bravoboard"} of ${tenant}`;

interface Caller {
  org: Org;
  label: string;
  admin: boolean;
  /** For limited callers: two of its own tenants plus a tenant name of the other organization. */
  grant: string[];
  token: string;
}
const callers: Caller[] = [];
/** org → tenant → dashboard id: what was acknowledged and not deleted. */
const model: Record<Org, Map<string, string>> = { "iso-alpha": new Map(), "iso-bravo": new Map() };
/** Every dashboard id and token ever issued to an organization (so the other side can aim at them). */
const issuedIds: Record<Org, Set<string>> = { "iso-alpha": new Set(), "iso-bravo": new Set() };
const issuedTokens: { org: Org; token: string }[] = [];
/** "op via" → code → count, printed with PROPERTY_REPORT=1. */
const outcomes: Record<string, Record<string, number>> = {};

beforeAll(async () => {
  server = await startTestServer();
  client = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
  for (const org of ORGS) {
    callers.push({
      org,
      label: `${short(org)}-admin`,
      admin: true,
      grant: [],
      token: await callerToken({ org, admin: true, sub: `${short(org)}-admin` }),
    });
    const grant = [TENANTS[org][0]!, TENANTS[org][1]!, TENANTS[other(org)][0]!];
    callers.push({
      org,
      label: `${short(org)}-limited`,
      admin: false,
      grant,
      token: await callerToken({ org, tenants: grant, sub: `${short(org)}-limited` }),
    });
  }
});
afterAll(async () => {
  await server.stop();
  if (process.env.PROPERTY_REPORT) process.stdout.write(`isolation outcomes: ${JSON.stringify(outcomes)}\n`);
});

type Op =
  | { kind: "create"; via: "rpc" | "rest"; caller: number; tenant: number }
  | { kind: "get"; via: "rpc" | "rest"; caller: number; tenant: number; otherOrgTenant: boolean }
  | { kind: "delete"; via: "rpc" | "rest"; caller: number; tenant: number; otherOrgTenant: boolean }
  | {
      kind: "mint";
      via: "rpc" | "rest";
      caller: number;
      tenant: number;
      otherOrgTenant: boolean;
      idFrom: "right" | "other-org" | "none";
    }
  | { kind: "list"; via: "rpc" | "rest"; caller: number }
  | { kind: "verify"; caller: number; token: number };

const via = fc.constantFrom<"rpc" | "rest">("rpc", "rest");
const callerIdx = fc.integer({ min: 0, max: 3 });
const tenantIdx = fc.integer({ min: 0, max: 3 });
const op = fc.oneof(
  fc.record({ kind: fc.constant("create" as const), via, caller: callerIdx, tenant: tenantIdx }),
  fc.record({
    kind: fc.constantFrom("get" as const, "delete" as const),
    via,
    caller: callerIdx,
    tenant: tenantIdx,
    otherOrgTenant: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant("mint" as const),
    via,
    caller: callerIdx,
    tenant: tenantIdx,
    otherOrgTenant: fc.boolean(),
    idFrom: fc.constantFrom("right" as const, "other-org" as const, "none" as const),
  }),
  fc.record({ kind: fc.constant("list" as const), via, caller: callerIdx }),
  fc.record({ kind: fc.constant("verify" as const), caller: callerIdx, token: fc.nat() }),
) as fc.Arbitrary<Op>;

interface Answer {
  /** The gRPC code name (REST statuses are translated) */
  code: string;
  /** Everything the caller received, token claims decoded. */
  text: string;
  dashboards: { organizationId: string; tenantId: string; id: string }[];
  token?: string;
}

const REST_CODES: Record<number, string> = {
  200: "OK",
  201: "OK",
  403: "PermissionDenied",
  404: "NotFound",
  409: "AlreadyExists",
  422: "InvalidArgument",
};

const claimsOf = (token: string) => Buffer.from(token.split(".")[1] ?? "", "base64url").toString();

async function rpcAnswer(call: Promise<unknown>): Promise<Answer> {
  try {
    const res = (await call) as Record<string, unknown>;
    const dashboards = [res.dashboard, ...((res.dashboards as unknown[]) ?? [])].filter(
      Boolean,
    ) as Answer["dashboards"];
    const token = typeof res.token === "string" ? res.token : undefined;
    const text =
      JSON.stringify(res, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) +
      (token ? claimsOf(token) : "");
    return { code: "OK", text, dashboards, token };
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: Code[e.code], text: e.rawMessage + JSON.stringify(e.details), dashboards: [] };
  }
}

async function restAnswer(method: string, path: string, callerJwt: string, body?: unknown): Promise<Answer> {
  const res = await fetch(server.baseUrl + path, {
    method,
    headers: { authorization: `Bearer ${callerJwt}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const json = JSON.parse(text) as { data?: unknown };
  const data = json.data as Record<string, unknown> | Record<string, unknown>[] | undefined;
  const list = Array.isArray(data) ? data : data && "tenant_id" in data ? [data] : [];
  const dashboards = list.map((d) => ({
    organizationId: d.organization_id as string,
    tenantId: d.tenant_id as string,
    id: d.id as string,
  }));
  const token = !Array.isArray(data) && typeof data?.token === "string" ? data.token : undefined;
  return {
    code: REST_CODES[res.status] ?? `HTTP ${res.status}`,
    text: text + (token ? claimsOf(token) : ""),
    dashboards,
    token,
  };
}

/** What the caller may see of its own organization. */
const visible = (c: Caller, tenant: string) => c.admin || c.grant.includes(tenant);

async function perform(o: Op): Promise<void> {
  const c = callers[o.caller]!;
  const h = { headers: { authorization: `Bearer ${c.token}` } };
  let expected: string[];
  let answer: Answer;
  let sent: string[] = [];
  const where = `${c.label} ${JSON.stringify(o)}`;

  if (o.kind === "create") {
    // Creates use the caller's own organization's tenant names, so every name stays a marker of its organization.
    const tenant = TENANTS[c.org][o.tenant]!;
    const body = { tenantId: tenant, workspaceId: "ws-1", name: NAME(c.org, tenant) };
    sent = [tenant, body.name];
    answer =
      o.via === "rpc"
        ? await rpcAnswer(client.createDashboard(body, h))
        : await restAnswer("POST", "/api/v1/dashboards", c.token, {
            tenant_id: tenant,
            workspace_id: "ws-1",
            name: body.name,
          });
    expected = !visible(c, tenant) ? ["PermissionDenied"] : model[c.org].has(tenant) ? ["AlreadyExists"] : ["OK"];
    if (answer.code === "OK") {
      model[c.org].set(tenant, answer.dashboards[0]!.id);
      issuedIds[c.org].add(answer.dashboards[0]!.id);
    }
  } else if (o.kind === "get" || o.kind === "delete") {
    const owner = o.otherOrgTenant ? other(c.org) : c.org;
    const tenant = TENANTS[owner][o.tenant]!;
    sent = [tenant];
    if (o.via === "rpc") {
      answer = await rpcAnswer(
        o.kind === "get"
          ? client.getDashboard({ tenantId: tenant }, h)
          : client.deleteDashboard({ tenantId: tenant }, h),
      );
    } else answer = await restAnswer(o.kind === "get" ? "GET" : "DELETE", `/api/v1/dashboards/${tenant}`, c.token);
    // The other organization's tenant names never exist in the caller's organization.
    expected = !visible(c, tenant)
      ? ["PermissionDenied"]
      : owner === c.org && model[c.org].has(tenant)
        ? ["OK"]
        : ["NotFound"];
    if (o.kind === "delete" && answer.code === "OK") model[c.org].delete(tenant);
  } else if (o.kind === "mint") {
    const owner = o.otherOrgTenant ? other(c.org) : c.org;
    const tenant = TENANTS[owner][o.tenant]!;
    const right = model[owner].get(tenant);
    const otherIds = [...issuedIds[other(c.org)]];
    const dashboardId =
      o.idFrom === "right" && right
        ? right
        : o.idFrom === "other-org" && otherIds.length
          ? otherIds[o.tenant % otherIds.length]!
          : "00000000-0000-7000-8000-000000000000";
    sent = [tenant, dashboardId];
    const body = { tenantId: tenant, workspaceId: "ws-1", dashboardId };
    answer =
      o.via === "rpc"
        ? await rpcAnswer(client.createIframeToken(body, h))
        : await restAnswer("POST", "/api/v1/dashboards/iframe-token", c.token, {
            tenant_id: tenant,
            workspace_id: "ws-1",
            dashboard_id: dashboardId,
          });
    expected = !visible(c, tenant)
      ? ["PermissionDenied"]
      : owner === c.org && right !== undefined && dashboardId === right
        ? ["OK"]
        : ["NotFound"];
    if (answer.token) issuedTokens.push({ org: c.org, token: answer.token });
  } else if (o.kind === "list") {
    answer =
      o.via === "rpc"
        ? await rpcAnswer(client.listDashboards({ pageSize: 1000 }, h))
        : await restAnswer("GET", "/api/v1/dashboards?limit=1000", c.token);
    expected = ["OK"];
    const want = [...model[c.org].entries()]
      .filter(([t]) => visible(c, t))
      .map(([, id]) => id)
      .sort();
    expect(answer.dashboards.map((d) => d.id).sort(), `${where}: the list is exactly what the caller may see`).toEqual(
      want,
    );
  } else {
    const pick = issuedTokens.length ? issuedTokens[o.token % issuedTokens.length]! : undefined;
    if (!pick) return;
    sent = [pick.token];
    answer = await rpcAnswer(client.verifyIframeToken({ token: pick.token }, h));
    // Another organization's token is TOKEN_INVALID, exactly like a forged one; one's own may be revoked by a delete.
    expected = pick.org === c.org ? ["OK", "FailedPrecondition", "InvalidArgument"] : ["InvalidArgument"];
  }

  const key = `${o.kind} ${"via" in o ? o.via : "rpc"}`;
  outcomes[key] ??= {};
  outcomes[key][answer.code] = (outcomes[key][answer.code] ?? 0) + 1;
  expect(expected, `${where} answered ${answer.code}: ${answer.text.slice(0, 300)}`).toContain(answer.code);
  for (const d of answer.dashboards) {
    expect(d.organizationId, where).toBe(c.org);
    if (!c.admin) expect(c.grant, `${where}: tenant outside the grant`).toContain(d.tenantId);
  }
  // Nothing of the other organization anywhere in the answer, beyond what the caller itself sent.
  let text = answer.text;
  for (const s of sent) text = text.split(s).join("<sent>");
  const foreign = [
    other(c.org),
    short(other(c.org)),
    short(other(c.org)) === "alpha" ? "Alphaboard" : "Bravoboard",
    ...issuedIds[other(c.org)],
  ];
  for (const marker of foreign)
    expect(text.includes(marker), `${where} leaked "${marker}": ${text.slice(0, 400)}`).toBe(false);
  // VerifyIframeToken is exempt by design (README): any caller of the token's organization may verify it, and the
  // claims it returns are the ones the caller already holds in the token it sent.
  if (!c.admin && o.kind !== "verify") {
    for (const t of TENANTS[c.org].filter((t) => !c.grant.includes(t)))
      expect(text.includes(t), `${where} showed ${t} outside the grant`).toBe(false);
  }
}

describe("cross-organization isolation as a property", () => {
  it("no answer to one organization contains anything of the other, and limited callers see only their grant", async () => {
    let operations = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 20 }), async (ops) => {
        for (const o of ops) {
          await perform(o);
          operations++;
        }
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    expect(operations).toBeGreaterThan(RUNS);
    // The attacks were really made and really refused, and the legitimate calls really succeeded.
    const codes = new Set(Object.values(outcomes).flatMap((byCode) => Object.keys(byCode)));
    for (const code of ["OK", "PermissionDenied", "NotFound", "InvalidArgument"]) expect(codes).toContain(code);
    // The database holds exactly what the model says, for both organizations: no attack changed anything.
    for (const org of ORGS) {
      const rows = await queryDatabase<{ tenant_id: string; id: string }>(
        server.db.url,
        "SELECT tenant_id, id::text AS id FROM dashboards WHERE organization_id = $1",
        [org],
      );
      expect(Object.fromEntries(rows.map((r) => [r.tenant_id, r.id]))).toEqual(Object.fromEntries(model[org]));
    }
  }, 120_000);
});
