/**
 * `npm run soak`: many callers of several organizations create, read, list,
 * mint and delete concurrently against two replicas for a fixed time; then the
 * database must match the model of what was acknowledged, and no caller may
 * ever have seen another organization's data.
 *
 *   npm run soak                         60 s
 *   npm run soak -- --seconds 600        ten minutes
 *   npm run soak -- --seconds 30 --workers 32 --orgs 4
 *
 * Needs PostgreSQL and Redis on 127.0.0.1 (as the tests do). Prints a JSON
 * report and exits 1 when an invariant failed. `runSoak` is the importable
 * core (the CI smoke in test/faults/soak-smoke.test.ts runs it for a few seconds).
 */
import { randomInt, randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { dashboardClient, type DashboardClient } from "../test/helpers/clients.js";
import { createTestDatabase, queryDatabase } from "../test/helpers/postgres.js";
import { spawnServer, type ServerProcess } from "../test/helpers/process.js";
import { SHARED_REDIS_URL, uniquePrefix } from "../test/helpers/redis.js";
import { callerToken, TEST_JWT_SECRET } from "../test/helpers/tokens.js";

export interface SoakOptions {
  /** The replicas' base URLs; every call goes to one picked at random. */
  baseUrls: string[];
  databaseUrl: string;
  /** How long each caller keeps going; or, with operationsPerCaller, how many calls it makes. */
  seconds?: number;
  operationsPerCaller?: number;
  /** Seeds each caller's choices (tenant, operation, replica), so every run makes the same ones; random otherwise. */
  seed?: number;
  organizations?: number;
  /** Concurrent callers per organization: the first is an admin, the others tenant-limited. */
  callersPerOrganization?: number;
  /** Tenants each caller owns (creates and deletes); only its owner writes a tenant, so the model is exact. */
  tenantsPerCaller?: number;
}

export interface SoakReport {
  seconds: number | undefined;
  organizations: number;
  callers: number;
  operations: number;
  /** operation → gRPC code name → count. */
  outcomes: Record<string, Record<string, number>>;
  acknowledgedCreates: number;
  acknowledgedDeletes: number;
  mintedTokens: number;
  /** Dashboards the model says exist, and what the database holds for the soak's organizations. */
  modelDashboards: number;
  databaseDashboards: number;
  /** Differences between the database and the model (each a short description; empty when they match). */
  databaseMismatches: string[];
  /** Anything of another organization, or of a tenant outside the grant, in any answer. */
  leaks: string[];
  /** Answers the model did not expect (a code or a result that cannot be right). */
  unexpected: string[];
  /** A read on one replica that did not yet reflect the caller's own acknowledged write on the other. */
  staleReads: number;
  /** The tables retention keeps in check, when the load began and when it ended. */
  tables: { before: TableSizes; after: TableSizes };
  /** Rows the replicas' retention jobs removed during the run, by table (from their /metrics). */
  retentionRemoved: Record<string, number>;
}

/** The tables retention purges, and audit_events, which it keeps for AUDIT_RETENTION_DAYS. */
export const RETAINED_TABLES = ["embed_token_cutoffs", "revoked_embed_tokens", "create_requests", "audit_events"];
export type TableSizes = Record<string, { rows: number; bytes: number }>;

/** Row counts and pg_total_relation_size (table, indexes and TOAST) of the retained tables. */
export async function tableSizes(databaseUrl: string): Promise<TableSizes> {
  const sizes: TableSizes = {};
  for (const table of RETAINED_TABLES) {
    const [row] = await queryDatabase<{ rows: number; bytes: string }>(
      databaseUrl,
      `SELECT (SELECT count(*)::int FROM ${table}) AS rows, pg_total_relation_size('${table}') AS bytes`,
    );
    sizes[table] = { rows: row!.rows, bytes: Number(row!.bytes) };
  }
  return sizes;
}

/** dashboard_retention_rows_removed_total, summed over the replicas, by table. */
export async function retentionRemoved(baseUrls: string[]): Promise<Record<string, number>> {
  const removed: Record<string, number> = {};
  for (const baseUrl of baseUrls) {
    const text = await (await fetch(`${baseUrl}/metrics`)).text();
    for (const m of text.matchAll(/^dashboard_retention_rows_removed_total\{table="(\w+)"\} (\d+)/gm)) {
      removed[m[1]!] = (removed[m[1]!] ?? 0) + Number(m[2]);
    }
  }
  return removed;
}

interface Caller {
  org: string;
  sub: string;
  admin: boolean;
  /** Tenants this caller owns; a limited caller's grant is exactly these. */
  tenants: string[];
  headers: Record<string, string>;
}

const RETRYABLE = new Set([Code.Unavailable, Code.Aborted, Code.DeadlineExceeded, Code.ResourceExhausted]);

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const orgCount = o.organizations ?? 3;
  const perOrg = o.callersPerOrganization ?? 4;
  const tenantsPerCaller = o.tenantsPerCaller ?? 6;
  const run = randomUUID().slice(0, 8);
  const orgs = Array.from({ length: orgCount }, (_, i) => `soak-${run}-org${i}`);

  const callers: Caller[] = [];
  for (const org of orgs) {
    for (let c = 0; c < perOrg; c++) {
      const admin = c === 0;
      const sub = `${org}-caller${c}`;
      const tenants = Array.from({ length: tenantsPerCaller }, (_, t) => `${org}-c${c}-tenant${t}`);
      const token = await callerToken({
        org,
        sub,
        admin,
        tenants: admin ? [] : tenants,
        expiresIn: (o.seconds ?? 600) + 600,
      });
      callers.push({ org, sub, admin, tenants, headers: { authorization: `Bearer ${token}` } });
    }
  }
  // Every tenant name of an organization, to tell a limited caller's grant from the rest of its org.
  const tenantsOf = new Map(
    orgs.map((org) => [org, new Set(callers.filter((c) => c.org === org).flatMap((c) => c.tenants))]),
  );

  /** org → tenant → dashboard id, for every create acknowledged and not since deleted. */
  const model = new Map<string, Map<string, string>>(orgs.map((org) => [org, new Map()]));
  const report: SoakReport = {
    seconds: o.seconds,
    organizations: orgCount,
    callers: callers.length,
    operations: 0,
    outcomes: {},
    acknowledgedCreates: 0,
    acknowledgedDeletes: 0,
    mintedTokens: 0,
    modelDashboards: 0,
    databaseDashboards: 0,
    databaseMismatches: [],
    leaks: [],
    unexpected: [],
    staleReads: 0,
    tables: { before: await tableSizes(o.databaseUrl), after: {} },
    retentionRemoved: {},
  };
  const note = (list: string[], what: string) => {
    if (list.length < 50) list.push(what);
  };
  const count = (op: string, code: string) => {
    report.operations++;
    const byCode = (report.outcomes[op] ??= {});
    byCode[code] = (byCode[code] ?? 0) + 1;
  };

  // Each replica through two protocols, so both paths are soaked.
  const clients: DashboardClient[] = o.baseUrls.flatMap((baseUrl) => [
    dashboardClient(createConnectTransport({ baseUrl, httpVersion: "1.1" })),
    dashboardClient(createGrpcTransport({ baseUrl })),
  ]);

  /** One call, counted by code; retried (same request, same request_id) while the answer is retryable. */
  async function call<T>(
    pick: Pick,
    op: string,
    fn: (client: DashboardClient) => Promise<T>,
  ): Promise<{ ok: T } | { code: Code }> {
    for (let attempt = 0; ; attempt++) {
      try {
        const ok = await fn(clients[pick(clients.length)]!);
        count(op, "OK");
        return { ok };
      } catch (err) {
        const code = ConnectError.from(err).code;
        count(op, Code[code] ?? String(code));
        if (!RETRYABLE.has(code) || attempt >= 20) return { code };
        await new Promise((r) => setTimeout(r, 20 * (attempt + 1)));
      }
    }
  }

  const checkDashboard = (
    caller: Caller,
    where: string,
    d: { organizationId: string; tenantId: string } | undefined,
  ) => {
    if (!d) return;
    if (d.organizationId !== caller.org)
      note(report.leaks, `${where}: ${caller.sub} got organization ${d.organizationId}`);
    const ownOrgTenant = tenantsOf.get(caller.org)!.has(d.tenantId);
    if (!ownOrgTenant) note(report.leaks, `${where}: ${caller.sub} got tenant ${d.tenantId} of another organization`);
    if (!caller.admin && !caller.tenants.includes(d.tenantId))
      note(report.leaks, `${where}: ${caller.sub} got tenant ${d.tenantId} outside its grant`);
  };

  const worker = async (caller: Caller, pick: Pick, goOn: (done: number) => boolean) => {
    const mine = model.get(caller.org)!;
    for (let done = 0; goOn(done); done++) {
      const tenantId = caller.tenants[pick(caller.tenants.length)]!;
      const existing = mine.get(tenantId);
      const roll = pick(100);
      if (roll < 30) {
        const request = {
          tenantId,
          workspaceId: "ws-1",
          name: `${caller.org} board ${tenantId}`,
          requestId: randomUUID(),
        };
        const r = await call(pick, "create", (c) =>
          c.createDashboard(request, { headers: caller.headers, timeoutMs: 10_000 }),
        );
        if ("ok" in r) {
          checkDashboard(caller, "create", r.ok.dashboard);
          if (existing) note(report.unexpected, `create of existing ${tenantId} succeeded`);
          mine.set(tenantId, r.ok.dashboard!.id);
          report.acknowledgedCreates++;
        } else if (!(r.code === Code.AlreadyExists && existing))
          note(report.unexpected, `create ${tenantId}: ${Code[r.code]}`);
      } else if (roll < 50) {
        const r = await call(pick, "get", (c) =>
          c.getDashboard({ tenantId }, { headers: caller.headers, timeoutMs: 10_000 }),
        );
        if ("ok" in r) {
          checkDashboard(caller, "get", r.ok.dashboard);
          if (r.ok.dashboard!.id !== existing) report.staleReads++;
        } else if (r.code === Code.NotFound) {
          if (existing) report.staleReads++;
        } else note(report.unexpected, `get ${tenantId}: ${Code[r.code]}`);
      } else if (roll < 70) {
        const r = await call(pick, "list", (c) =>
          c.listDashboards({ pageSize: 50 }, { headers: caller.headers, timeoutMs: 10_000 }),
        );
        if ("ok" in r) for (const d of r.ok.dashboards) checkDashboard(caller, "list", d);
        else note(report.unexpected, `list: ${Code[r.code]}`);
      } else if (roll < 88) {
        if (!existing) continue;
        const request = { tenantId, workspaceId: "ws-1", dashboardId: existing };
        const r = await call(pick, "mint", (c) =>
          c.createIframeToken(request, { headers: caller.headers, timeoutMs: 10_000 }),
        );
        if ("ok" in r) {
          report.mintedTokens++;
          const claims = JSON.parse(Buffer.from(r.ok.token.split(".")[1]!, "base64url").toString()) as Record<
            string,
            unknown
          >;
          if (
            claims.organization_id !== caller.org ||
            claims.tenant_id !== tenantId ||
            claims.dashboard_id !== existing
          )
            note(report.leaks, `mint: ${caller.sub} got claims ${JSON.stringify(claims)}`);
          const v = await call(pick, "verify", (c) =>
            c.verifyIframeToken({ token: r.ok.token }, { headers: caller.headers, timeoutMs: 10_000 }),
          );
          if ("ok" in v && v.ok.claims?.organizationId !== caller.org)
            note(report.leaks, `verify: ${caller.sub} got organization ${v.ok.claims?.organizationId}`);
        } else if (r.code !== Code.NotFound) note(report.unexpected, `mint ${tenantId}: ${Code[r.code]}`);
      } else {
        if (!existing) continue;
        const r = await call(pick, "delete", (c) =>
          c.deleteDashboard({ tenantId }, { headers: caller.headers, timeoutMs: 10_000 }),
        );
        if ("ok" in r) {
          mine.delete(tenantId);
          report.acknowledgedDeletes++;
        } else if (r.code === Code.NotFound) {
          // A retried delete whose first attempt went through: it is gone either way.
          mine.delete(tenantId);
        } else note(report.unexpected, `delete ${tenantId}: ${Code[r.code]}`);
      }
    }
  };

  const stopAt = Date.now() + (o.seconds ?? 0) * 1000;
  const goOn =
    o.operationsPerCaller === undefined ? () => Date.now() < stopAt : (done: number) => done < o.operationsPerCaller!;
  await Promise.all(
    callers.map((caller, i) => worker(caller, o.seed === undefined ? randomInt : seededPick(o.seed + i), goOn)),
  );

  // The database against the model, per organization.
  const rows = await queryDatabase<{ organization_id: string; tenant_id: string; id: string }>(
    o.databaseUrl,
    "SELECT organization_id, tenant_id, id::text AS id FROM dashboards WHERE organization_id = ANY($1)",
    [orgs],
  );
  report.databaseDashboards = rows.length;
  report.modelDashboards = [...model.values()].reduce((n, m) => n + m.size, 0);
  const seen = new Set<string>();
  for (const row of rows) {
    const expected = model.get(row.organization_id)?.get(row.tenant_id);
    if (expected !== row.id)
      note(
        report.databaseMismatches,
        `database has ${row.organization_id}/${row.tenant_id}=${row.id}, model ${expected ?? "nothing"}`,
      );
    seen.add(`${row.organization_id}/${row.tenant_id}`);
  }
  for (const [org, tenants] of model)
    for (const [tenant, id] of tenants)
      if (!seen.has(`${org}/${tenant}`))
        note(report.databaseMismatches, `acknowledged ${org}/${tenant}=${id} is missing`);
  const [half] = await queryDatabase<{ n: number }>(
    o.databaseUrl,
    `SELECT count(*)::int AS n FROM dashboards d WHERE d.organization_id = ANY($1) AND
       (SELECT count(*) FROM audit_events a WHERE a.organization_id = d.organization_id AND a.action = 'DASHBOARD_CREATED' AND a.dashboard_id = d.id::text) <> 1`,
    [orgs],
  );
  if (half!.n > 0)
    note(report.databaseMismatches, `${half!.n} dashboards without exactly one DASHBOARD_CREATED audit event`);
  report.tables.after = await tableSizes(o.databaseUrl);
  report.retentionRemoved = await retentionRemoved(o.baseUrls);
  return report;
}

/** A uniform integer in [0, n). */
type Pick = (n: number) => number;

/** mulberry32: a small, well-distributed generator; each caller gets its own stream so interleaving changes nothing. */
function seededPick(seed: number): Pick {
  let state = seed >>> 0;
  return (n) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** True when the report shows every invariant held. */
export function soakHeld(r: SoakReport): boolean {
  return r.databaseMismatches.length === 0 && r.leaks.length === 0 && r.unexpected.length === 0;
}

/**
 * Retention on short windows, so a run of a minute shows whether the tables it purges stay flat: request ids
 * kept 10.8 s, tokens living at most 30 s (so revocation cutoffs are kept 36 s), every job every 2 s.
 */
export const SOAK_RETENTION_ENV = {
  CREATE_REQUEST_RETENTION_HOURS: "0.003",
  EMBED_TOKEN_MAX_TTL_SECONDS: "30",
  EMBED_TOKEN_DEFAULT_TTL_SECONDS: "30",
  RETENTION_INTERVAL_SECONDS: "2",
};

/**
 * Two replicas (real processes) on a fresh database of the shared PostgreSQL and the shared Redis, with a
 * key prefix of their own; `env` adds to (or overrides) their environment.
 */
export async function startSoakReplicas(
  env: Record<string, string> = SOAK_RETENTION_ENV,
): Promise<{ baseUrls: string[]; databaseUrl: string; stop(): Promise<void> }> {
  const db = await createTestDatabase();
  const replicaEnv = {
    DATABASE_URL: db.url,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: "warn",
    REDIS_URL: SHARED_REDIS_URL,
    RATE_LIMIT_REDIS_KEY_PREFIX: uniquePrefix("soak"),
    RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "10000000",
    RATE_LIMIT_DEFAULT_PER_MINUTE: "10000000",
    RATE_LIMIT_FAILED_AUTH_PER_MINUTE: "10000000",
    SHUTDOWN_GRACE_SECONDS: "2",
    ...env,
  };
  const replicas: ServerProcess[] = [];
  try {
    // One after the other: the first applies the migrations and makes the signing keys.
    replicas.push(await spawnServer(replicaEnv));
    replicas.push(await spawnServer(replicaEnv));
  } catch (err) {
    for (const r of replicas) await r.stop();
    await db.drop();
    throw err;
  }
  return {
    baseUrls: replicas.map((r) => r.baseUrl),
    databaseUrl: db.url,
    async stop() {
      for (const r of replicas) await r.stop();
      await db.drop();
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "60" },
      orgs: { type: "string", default: "3" },
      workers: { type: "string", default: "4", short: "w" },
      tenants: { type: "string", default: "6" },
    },
  });
  const replicas = await startSoakReplicas();
  let held: boolean;
  try {
    const report = await runSoak({
      ...replicas,
      seconds: Number(values.seconds),
      organizations: Number(values.orgs),
      callersPerOrganization: Number(values.workers),
      tenantsPerCaller: Number(values.tenants),
    });
    held = soakHeld(report);
    console.log(
      JSON.stringify({ ...report, held, loaderPeakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024) }, null, 2),
    );
  } finally {
    await replicas.stop();
  }
  process.exitCode = held ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
