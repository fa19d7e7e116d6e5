import { EventEmitter } from "node:events";
import type { DatabaseReadiness } from "../store/readiness.js";

/** What the rate limiter reports about its backend (see RateLimiter.health). */
export interface RateLimitHealth {
  backend: "redis" | "in-process";
  redisHealthy: boolean | undefined;
}

export interface ReadinessReport {
  /** Should a load balancer send this replica calls: not draining and the database usable. */
  ready: boolean;
  draining: boolean;
  database: DatabaseReadiness;
  /** Reported, never fatal: limits fall back to in-process when Redis is away. */
  rateLimits: RateLimitHealth;
}

export interface HealthSources {
  database(): Promise<DatabaseReadiness>;
  rateLimits(): RateLimitHealth;
}

/**
 * The one answer to "should this replica get traffic", shared by GET /readyz
 * and grpc.health.v1 so the two can never disagree. Draining is one-way: once
 * shutdown starts the replica stays NOT_SERVING until it exits.
 */
export class Health {
  private drainingSince: number | undefined;
  private readonly events = new EventEmitter();
  private pendingDatabase: Promise<DatabaseReadiness> | undefined;

  constructor(private readonly sources: HealthSources) {
    // Every open Watch stream listens; more than the default 10 is normal.
    this.events.setMaxListeners(0);
  }

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  startDraining(): void {
    if (this.draining) return;
    this.drainingSince = Date.now();
    this.events.emit("draining");
  }

  /** Calls listener once draining starts (at once if it has); returns an unsubscribe function. */
  onDraining(listener: () => void): () => void {
    if (this.draining) {
      listener();
      return () => {};
    }
    this.events.once("draining", listener);
    return () => this.events.off("draining", listener);
  }

  async readiness(): Promise<ReadinessReport> {
    const draining = this.draining;
    // Probes, health checks and watches arriving together share one database round trip.
    this.pendingDatabase ??= this.sources.database().finally(() => {
      this.pendingDatabase = undefined;
    });
    const database = await this.pendingDatabase;
    return {
      ready: !draining && database.reachable && database.migrationsApplied,
      draining,
      database,
      rateLimits: this.sources.rateLimits(),
    };
  }
}
