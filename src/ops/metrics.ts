import type pg from "pg";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { writeHead } from "../edge/http-types.js";
import { plainRoute } from "../edge/plain-route.js";
import type { HttpRoute } from "../edge/routes.js";
import type { ShareStats } from "../store/organization-shares.js";
import type { RateLimitHealth } from "./health.js";

export const METRICS_PATH = "/metrics";

export interface MetricsSources {
  /** The PostgreSQL pool, when there is one (the embedded database has none). */
  pool?: pg.Pool;
  /** The organizations' fair shares of that pool (aggregates only: organization ids are not labels). */
  organizationShares?: () => ShareStats;
  rateLimits?: () => RateLimitHealth;
}

/**
 * The service's Prometheus metrics, in a registry of its own (not prom-client's
 * global one) so several servers in one process (tests) do not collide.
 * Labels are bounded: method names come from the schema, codes from gRPC.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly calls = new Counter({
    name: "dashboard_rpc_calls_total",
    help:
      "Requests the edge answered (RPCs, REST calls, operations routes, refusals of unknown routes), by method or route, " +
      "code, ErrorInfo reason (empty for OK) and wire protocol.",
    labelNames: ["method", "code", "protocol", "reason"] as const,
    registers: [this.registry],
  });

  readonly duration = new Histogram({
    name: "dashboard_rpc_duration_seconds",
    help: "Time from a request reaching the edge until its answer (or, for streams, its end), by method and code.",
    labelNames: ["method", "code"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly rateLimitRefusals = new Counter({
    name: "dashboard_rate_limit_refusals_total",
    help: "Calls refused by a rate limit (RESOURCE_EXHAUSTED with reason RATE_LIMITED), by method.",
    labelNames: ["method"] as const,
    registers: [this.registry],
  });

  readonly iframeTokensMinted = new Counter({
    name: "dashboard_iframe_tokens_minted_total",
    help: "Iframe tokens minted (successful CreateIframeToken calls).",
    registers: [this.registry],
  });

  readonly unexpectedErrors = new Counter({
    name: "dashboard_unexpected_errors_total",
    help:
      "Errors that reached a last resort: the request boundary (where=request) or the process's unhandled-rejection " +
      "handler (where=unhandled-rejection). Each is a bug; the alert is any increase.",
    labelNames: ["where"] as const,
    registers: [this.registry],
  });

  readonly retentionRowsRemoved = new Counter({
    name: "dashboard_retention_rows_removed_total",
    help: "Rows the retention jobs deleted (expired revocations, old create requests, old audit events), by table.",
    labelNames: ["table"] as const,
    registers: [this.registry],
  });

  readonly retentionBatches = new Counter({
    name: "dashboard_retention_batches_total",
    help: "Retention DELETE statements run (each at most RETENTION_BATCH_SIZE rows), by table.",
    labelNames: ["table"] as const,
    registers: [this.registry],
  });

  constructor(sources: MetricsSources = {}) {
    collectDefaultMetrics({ register: this.registry });
    const pool = sources.pool;
    if (pool) {
      new Gauge({
        name: "dashboard_db_pool_connections",
        help: "PostgreSQL pool connections: total open, idle, and callers waiting for one.",
        labelNames: ["state"] as const,
        registers: [this.registry],
        collect() {
          this.set({ state: "total" }, pool.totalCount);
          this.set({ state: "idle" }, pool.idleCount);
          this.set({ state: "waiting" }, pool.waitingCount);
        },
      });
      new Gauge({
        name: "dashboard_db_pool_max_connections",
        help: "The most connections the PostgreSQL pool opens (DATABASE_POOL_MAX).",
        registers: [this.registry],
        collect() {
          this.set(pool.options.max ?? 10);
        },
      });
    }
    const shares = sources.organizationShares;
    if (shares) registerShareMetrics(this.registry, shares);
    const rateLimits = sources.rateLimits;
    if (rateLimits) {
      new Gauge({
        name: "dashboard_rate_limit_shared",
        help: "1 while rate limits are kept in Redis (shared by replicas), 0 while they are per process.",
        registers: [this.registry],
        collect() {
          const h = rateLimits();
          this.set(h.backend === "redis" && h.redisHealthy !== false ? 1 : 0);
        },
      });
    }
  }

  /** One retention batch: what the retention jobs report, as counters (table names are a closed set). */
  retentionBatch(table: string, removed: number): void {
    this.retentionBatches.inc({ table });
    this.retentionRowsRemoved.inc({ table }, removed);
  }

  /** GET /metrics in the Prometheus text format; answered while draining, so the last of it is scraped. */
  route(): { path: string; route: HttpRoute } {
    return {
      path: METRICS_PATH,
      route: plainRoute({
        name: `GET ${METRICS_PATH}`,
        methods: ["GET"],
        servedWhileDraining: true,
        quiet: true,
        serve: async (x) => {
          const text = await this.registry.metrics();
          writeHead(x.res, 200, { "content-type": this.registry.contentType, "cache-control": "no-store" });
          x.res.end(text);
        },
      }),
    };
  }
}

/**
 * The fair shares as aggregates. Never labelled by organization: ids are unbounded, and what an operator
 * needs is whether some organization is pressing on its share (at_share, waits, refusals), which the call
 * log names when it matters.
 */
function registerShareMetrics(registry: Registry, shares: () => ShareStats): void {
  new Gauge({
    name: "dashboard_db_organization_share_max_connections",
    help: "The most pooled connections one organization may hold (DATABASE_ORGANIZATION_SHARE).",
    registers: [registry],
    collect() {
      this.set(shares().share);
    },
  });
  new Gauge({
    name: "dashboard_db_organization_share_calls",
    help: "Calls holding a slot of their organization's share (state=held) or waiting for one (state=waiting), over all organizations.",
    labelNames: ["state"] as const,
    registers: [registry],
    collect() {
      const s = shares();
      this.set({ state: "held" }, s.held);
      this.set({ state: "waiting" }, s.waiting);
    },
  });
  new Gauge({
    name: "dashboard_db_organizations_at_share",
    help: "Organizations holding their whole share of the pool right now.",
    registers: [registry],
    collect() {
      this.set(shares().organizationsAtShare);
    },
  });
  new Counter({
    name: "dashboard_db_organization_share_waits_total",
    help: "Calls that had to wait for a slot of their organization's share.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(shares().waited);
    },
  });
  new Counter({
    name: "dashboard_db_organization_share_refusals_total",
    help:
      "Calls refused UNAVAILABLE (OVERLOADED) for their organization's share: its queue was full (why=queue_full), " +
      "or the wait would have run into the deadline or the call ended (why=wait_timeout).",
    labelNames: ["why"] as const,
    registers: [registry],
    collect() {
      const s = shares();
      this.reset();
      this.inc({ why: "queue_full" }, s.refusedQueueFull);
      this.inc({ why: "wait_timeout" }, s.refusedWaitTimeout);
    },
  });
}
