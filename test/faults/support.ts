import { randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { queryDatabase } from "../helpers/postgres.js";
import { TEST_JWT_SECRET } from "../helpers/tokens.js";

/** The environment every fault-injection server process runs with: limits out of the way, quiet logs. */
export function faultServerEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: "warn",
    RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "1000000",
    RATE_LIMIT_DEFAULT_PER_MINUTE: "1000000",
    RATE_LIMIT_FAILED_AUTH_PER_MINUTE: "1000000",
    SHUTDOWN_GRACE_SECONDS: "1",
    ...extra,
  };
}

/** A Connect client over HTTP/1.1 (a fresh connection per call is what a failing-over client sees). */
export const connectClientFor = (baseUrl: string): DashboardClient =>
  dashboardClient(createConnectTransport({ baseUrl, httpVersion: "1.1" }));

export const codeName = (err: unknown): string => Code[ConnectError.from(err).code] ?? "Unknown";

/**
 * How an UNAVAILABLE looked: sent by the service (it carries our ErrorInfo) with
 * or without a RetryInfo hint, or made by the client itself (connection refused or reset).
 */
function unavailableKind(
  err: unknown,
): "service-with-retry-info" | "service-without-retry-info" | "transport" | undefined {
  const e = ConnectError.from(err);
  if (e.code !== Code.Unavailable) return undefined;
  if (e.findDetails(ErrorInfoSchema).length === 0) return "transport";
  return e.findDetails(RetryInfoSchema).length > 0 ? "service-with-retry-info" : "service-without-retry-info";
}

/** One attempt as the client saw it: when it ended, how long it took, and how. */
export interface Attempt {
  endedAt: number;
  latencyMs: number;
  code: string;
}

export interface CreateLoadResult {
  /** request_id → the dashboard id the client was given. */
  acknowledged: Map<string, string>;
  /** request ids whose create was never acknowledged before the load's deadline. */
  abandoned: string[];
  attempts: Attempt[];
  /** Retries that reused a request_id after a failed attempt. */
  retries: number;
  /** UNAVAILABLE answers by kind (see unavailableKind). */
  unavailable: Record<string, number>;
  /**
   * Retries answered with a dashboard created before the retry began: the failed
   * attempt had in fact committed, and the request_id returned its result instead of creating twice.
   */
  replayedAfterFailure: number;
}

export interface CreateLoadOptions {
  /** Each worker's client list: it starts on the first and moves to the next one after a failure. */
  endpoints: () => DashboardClient[];
  headers: Record<string, string>;
  workers: number;
  /** A create in progress when the load is stopped is retried at most this many times more, then abandoned. */
  maxRetriesPerCreate: number;
  callTimeoutMs: number;
  tenantPrefix: string;
}

export interface CreateLoad {
  /** What the load has seen so far (it grows while the load runs). */
  readonly result: CreateLoadResult;
  /** Resolves once check() holds for the load's result so far: a scenario's steps wait for events, not for time. */
  until(check: (result: CreateLoadResult) => boolean): Promise<void>;
  /** No new creates; resolves once every create in progress is acknowledged or abandoned. */
  stop(): Promise<CreateLoadResult>;
}

/**
 * Concurrent workers each create dashboards one after another, every create
 * with its own request_id, and retry the SAME request_id (AIP-155) after any
 * failure, moving to the next endpoint, until it is acknowledged.
 */
export function startCreateLoad(o: CreateLoadOptions): CreateLoad {
  let stopped = false;
  const result: CreateLoadResult = {
    acknowledged: new Map(),
    abandoned: [],
    attempts: [],
    retries: 0,
    unavailable: {},
    replayedAfterFailure: 0,
  };
  const worker = async (w: number) => {
    const clients = o.endpoints();
    let current = w % clients.length;
    for (let i = 0; !stopped; i++) {
      const requestId = randomUUID();
      const request = {
        tenantId: `${o.tenantPrefix}-w${w}-${i}`,
        workspaceId: "ws-1",
        name: `Load ${w}/${i}`,
        requestId,
      };
      for (let attempt = 0; ; attempt++) {
        if (attempt > 0) result.retries++;
        const started = Date.now();
        try {
          const { dashboard } = await clients[current]!.createDashboard(request, {
            headers: o.headers,
            timeoutMs: o.callTimeoutMs,
          });
          result.attempts.push({ endedAt: Date.now(), latencyMs: Date.now() - started, code: "OK" });
          result.acknowledged.set(requestId, dashboard!.id);
          const createdMs =
            Number(dashboard!.createdAt?.seconds ?? 0n) * 1000 + (dashboard!.createdAt?.nanos ?? 0) / 1e6;
          if (attempt > 0 && createdMs < started) result.replayedAfterFailure++;
          break;
        } catch (err) {
          result.attempts.push({ endedAt: Date.now(), latencyMs: Date.now() - started, code: codeName(err) });
          const kind = unavailableKind(err);
          if (kind) result.unavailable[kind] = (result.unavailable[kind] ?? 0) + 1;
          current = (current + 1) % clients.length;
          if (attempt >= o.maxRetriesPerCreate) {
            result.abandoned.push(requestId);
            break;
          }
          // A pause between retries, as any client backs off; it decides nothing the test asserts.
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
  };
  const workers = Promise.all(Array.from({ length: o.workers }, (_, w) => worker(w)));
  return {
    result,
    async until(check) {
      while (!check(result)) await new Promise((r) => setTimeout(r, 10));
    },
    async stop() {
      stopped = true;
      await workers;
      return result;
    },
  };
}

export interface StoreCheck {
  dashboards: number;
  acknowledgedFound: number;
  acknowledgedMissing: string[];
  duplicateIds: number;
  dashboardsWithoutOneCreatedEvent: number;
  createdEventsWithoutDashboard: number;
  requestIdsWithoutResponse: number;
  requestIdsPointingNowhere: number;
}

/**
 * Looks behind the service's back at what an organization's creates left in
 * the database: every acknowledged dashboard exactly once, and nothing half
 * written (a dashboard without its audit row, an audit row or a request id
 * without its dashboard). No test here deletes, so every audit row must have
 * its dashboard.
 */
export async function checkStore(
  databaseUrl: string,
  org: string,
  acknowledged: Map<string, string>,
): Promise<StoreCheck> {
  const ids = await queryDatabase<{ id: string }>(
    databaseUrl,
    "SELECT id::text AS id FROM dashboards WHERE organization_id = $1",
    [org],
  );
  const found = new Map<string, number>();
  for (const { id } of ids) found.set(id, (found.get(id) ?? 0) + 1);
  const missing = [...acknowledged.entries()].filter(([, id]) => found.get(id) !== 1).map(([rid]) => rid);
  const [row] = await queryDatabase<Record<string, number>>(
    databaseUrl,
    `SELECT
       (SELECT count(*)::int FROM dashboards d WHERE d.organization_id = $1 AND
          (SELECT count(*) FROM audit_events a WHERE a.organization_id = $1 AND a.action = 'DASHBOARD_CREATED' AND a.dashboard_id = d.id::text) <> 1)
         AS no_event,
       (SELECT count(*)::int FROM audit_events a WHERE a.organization_id = $1 AND a.action = 'DASHBOARD_CREATED' AND
          NOT EXISTS (SELECT 1 FROM dashboards d WHERE d.organization_id = $1 AND d.id::text = a.dashboard_id)) AS orphan_events,
       (SELECT count(*)::int FROM create_requests r WHERE r.organization_id = $1 AND r.response IS NULL) AS no_response,
       (SELECT count(*)::int FROM create_requests r WHERE r.organization_id = $1 AND r.response IS NOT NULL AND
          NOT EXISTS (SELECT 1 FROM dashboards d WHERE d.organization_id = $1 AND d.id::text = r.response->>'id')) AS dangling`,
    [org],
  );
  return {
    dashboards: ids.length,
    acknowledgedFound: acknowledged.size - missing.length,
    acknowledgedMissing: missing,
    duplicateIds: [...found.values()].filter((n) => n > 1).length,
    dashboardsWithoutOneCreatedEvent: row!.no_event!,
    createdEventsWithoutDashboard: row!.orphan_events!,
    requestIdsWithoutResponse: row!.no_response!,
    requestIdsPointingNowhere: row!.dangling!,
  };
}

/** The invariants every fault scenario ends with: each acknowledged create there exactly once, nothing half-written. */
export function expectNothingLostOrHalfWritten(store: StoreCheck, acknowledged: number): void {
  expect(store).toMatchObject({
    acknowledgedMissing: [],
    duplicateIds: 0,
    dashboardsWithoutOneCreatedEvent: 0,
    createdEventsWithoutDashboard: 0,
    requestIdsWithoutResponse: 0,
    requestIdsPointingNowhere: 0,
  });
  // And nothing exists that was never acknowledged.
  expect(store.dashboards).toBe(acknowledged);
}

export function countCodes(attempts: Attempt[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const a of attempts) counts[a.code] = (counts[a.code] ?? 0) + 1;
  return counts;
}

export const maxLatency = (attempts: Attempt[]) => attempts.reduce((m, a) => Math.max(m, a.latencyMs), 0);

/** From `since` to the first successful attempt that ended after it (undefined if none did). */
export function recoveryMs(attempts: Attempt[], since: number): number | undefined {
  const first = attempts
    .filter((a) => a.code === "OK" && a.endedAt >= since)
    .reduce((m, a) => Math.min(m, a.endedAt), Infinity);
  return Number.isFinite(first) ? first - since : undefined;
}

const FIGURES_DIR = fileURLToPath(new URL("../../data/reliability/", import.meta.url));

/**
 * Prints a scenario's figures and writes them to data/reliability/<scenario>.json
 * (data/ is gitignored; one file per scenario so parallel test files never race),
 * where docs/reliability.md takes them from.
 */
/** The figures every create-load scenario reports: what was tried, acknowledged and found. */
export function createLoadFigures(
  workers: number,
  result: CreateLoadResult,
  store: StoreCheck,
): Record<string, unknown> {
  return {
    workers,
    attempts: result.attempts.length,
    acknowledged: result.acknowledged.size,
    found: store.acknowledgedFound,
    dashboardsInDatabase: store.dashboards,
    abandoned: result.abandoned.length,
    retriesWithSameRequestId: result.retries,
    retriesAnsweredWithTheEarlierResult: result.replayedAfterFailure,
  };
}

export function recordFigures(scenario: string, figures: Record<string, unknown>): void {
  console.log(`[figures] ${scenario}: ${JSON.stringify(figures)}`);
  mkdirSync(FIGURES_DIR, { recursive: true });
  writeFileSync(
    `${FIGURES_DIR}${scenario}.json`,
    JSON.stringify({ ...figures, recordedAt: new Date().toISOString() }, null, 2) + "\n",
  );
}
