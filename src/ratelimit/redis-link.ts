import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import type { RedisConfig } from "../config/config.js";
import { redactUrl } from "../log/redact-url.js";
import { inSpan, SpanKind, type Attributes } from "../tracing/spans.js";
import { RESERVE_SCRIPT, type LeaseStore } from "./lease-budget.js";

export interface RedisLinkOptions {
  topology: RedisConfig["topology"];
  /** A command slower than this fails, and the call falls back to the in-process limiter. */
  commandTimeoutMs: number;
  /** A key the health probe may write (a write, because a Redis can answer PING yet refuse writes). */
  probeKey: string;
}

/** Reconnect delays: quick at first, then every 2 s at most, forever (Redis coming back must not need a restart). */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 6), 2000);
}

const PROBE_INTERVAL_MS = 1000;

/**
 * The Redis connection of the rate limiter and its health. Commands never
 * wait for a connection (no offline queue) and never wait longer than the
 * command timeout, so Redis being down or slow costs a call at most that.
 * Health flips are logged once each way, never per request.
 */
export class RedisLink implements LeaseStore {
  readonly client: Redis | Cluster;
  /** undefined until the first connection attempt settles. */
  private healthy: boolean | undefined;
  private probe: NodeJS.Timeout | undefined;
  private closed = false;
  /** The latest connection error, reported with the down transition. */
  private lastError: Error | undefined;

  constructor(
    private readonly options: RedisLinkOptions,
    private readonly log: Logger,
  ) {
    const common: RedisOptions = {
      enableOfflineQueue: false,
      commandTimeout: options.commandTimeoutMs,
      // In-flight commands fail as soon as the connection drops instead of being retried later.
      maxRetriesPerRequest: 0,
      connectTimeout: Math.max(1000, options.commandTimeoutMs * 10),
      retryStrategy: reconnectDelayMs,
      lazyConnect: false,
      // Commands issued in the same tick share one socket write: under load, one syscall for many calls.
      enableAutoPipelining: true,
    };
    this.client = connect(options.topology, common);
    this.client.defineCommand("reserveLease", { numberOfKeys: 1, lua: RESERVE_SCRIPT });
    this.client.on("ready", () => this.markUp());
    this.client.on("close", () => this.markDown("the connection to Redis is closed"));
    // Every reconnect attempt emits an error; the transition above is what gets logged at warn.
    this.client.on("error", (err: Error) => {
      this.lastError = err;
      this.log.debug({ err }, "Redis connection error");
    });
  }

  isHealthy(): boolean {
    return this.healthy === true;
  }

  ready(): boolean {
    return this.client.status === "ready";
  }

  /**
   * One lease reservation: the only Redis round trip a call can make, so the only client span. Only the
   * server's address goes in, never the URL (it may hold a password) nor the key (it names the caller).
   */
  reserve(key: string, want: number, limit: number, windowMs: number): Promise<[number, number, number]> {
    return inSpan("EVALSHA", { kind: SpanKind.CLIENT, attributes: () => this.spanAttributes() }, async (span) => {
      try {
        const reply = await (this.client as unknown as ReserveCommand).reserveLease(key, want, limit, windowMs);
        span?.setAttribute("dashboard.rate_limit.granted", Number(reply[0]));
        span?.setAttribute("dashboard.rate_limit.fell_back", false);
        return [Number(reply[0]), Number(reply[1]), Number(reply[2])];
      } catch (err) {
        span?.setAttribute("dashboard.rate_limit.fell_back", true);
        throw err;
      }
    });
  }

  private spanAttributes(): Attributes {
    const t = this.options.topology;
    const first = t.kind === "node" ? new URL(t.url) : t.kind === "sentinel" ? t.sentinels[0] : t.nodes[0];
    const host = first instanceof URL ? first.hostname : (first?.host ?? "");
    const port = first instanceof URL ? Number(first.port || 6379) : (first?.port ?? 6379);
    return {
      "db.system": "redis",
      "db.system.name": "redis",
      "db.operation.name": "EVALSHA",
      "server.address": host,
      "server.port": port,
    };
  }

  /**
   * Called when a limiter had to fall back to memory: Redis was not ready, or a
   * command failed or timed out. A connection that stays open but stops
   * answering never emits an event, so a probe watches for it to answer again.
   */
  fellBack(): void {
    this.markDown("Redis did not answer in time");
    if (this.ready()) this.startProbe();
  }

  close(): Promise<void> {
    this.closed = true;
    this.stopProbe();
    this.client.disconnect();
    return Promise.resolve();
  }

  private markUp(): void {
    this.stopProbe();
    if (this.healthy === true || this.closed) return;
    this.lastError = undefined;
    const recovered = this.healthy === false;
    this.healthy = true;
    this.log.info(
      recovered
        ? "Redis answers again: rate limits are shared by all replicas again"
        : "connected to Redis: rate limits are shared by all replicas",
    );
  }

  private markDown(why: string): void {
    if (this.healthy === false || this.closed) return;
    this.healthy = false;
    this.log.warn(
      { reason: why, err: this.lastError },
      "Redis is unavailable: rate limits are enforced per process (approximately) until it answers again",
    );
  }

  private startProbe(): void {
    if (this.probe) return;
    this.probe = setInterval(() => {
      this.client.set(this.options.probeKey, "1", "PX", 10_000).then(
        () => this.markUp(),
        () => {},
      );
    }, PROBE_INTERVAL_MS);
    this.probe.unref();
  }

  private stopProbe(): void {
    if (this.probe) clearInterval(this.probe);
    this.probe = undefined;
  }
}

/** The script RedisLink defines on its client (ioredis sends EVALSHA, and EVAL once after a NOSCRIPT). */
interface ReserveCommand {
  reserveLease(key: string, want: number, limit: number, windowMs: number): Promise<unknown[]>;
}

/**
 * One client for the topology. With Sentinel or Cluster, REDIS_URL (when set) gives only what the
 * nodes share: user, password, database and TLS (rediss://).
 */
function connect(topology: RedisConfig["topology"], common: RedisOptions): Redis | Cluster {
  if (topology.kind === "node") return new Redis(topology.url, common);
  const shared = topology.url ? credentialsOf(topology.url) : {};
  if (topology.kind === "sentinel") {
    return new Redis({ ...common, ...shared, sentinels: topology.sentinels, name: topology.name });
  }
  return new Cluster(topology.nodes, {
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    clusterRetryStrategy: reconnectDelayMs,
    redisOptions: { ...common, ...shared },
  });
}

function credentialsOf(url: string): RedisOptions {
  const u = new URL(url);
  const db = Number(u.pathname.slice(1));
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(Number.isInteger(db) && db > 0 ? { db } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
  };
}

/** For logs: where the limits live, without credentials. */
export function describeTopology(topology: RedisConfig["topology"]): string {
  const list = (nodes: { host: string; port: number }[]) => nodes.map((n) => `${n.host}:${n.port}`).join(",");
  if (topology.kind === "sentinel") return `sentinel ${topology.name} via ${list(topology.sentinels)}`;
  if (topology.kind === "cluster") return `cluster ${list(topology.nodes)}`;
  return redactUrl(topology.url);
}
