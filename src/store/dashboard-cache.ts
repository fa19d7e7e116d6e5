import type { DashboardRecord } from "./dashboard-store.js";

/**
 * Recently read dashboards, by organization and tenant, for the reads every
 * page view makes (GetDashboard, CreateIframeToken). Every change is announced
 * (PostgreSQL NOTIFY, delivered to every replica on commit) and forgotten
 * locally as soon as it commits, so a replica answers from memory only what no
 * change has touched since.
 *
 * Three rules keep it correct rather than merely fresh:
 * - a read stores its result only if no change to *that* dashboard was
 *   announced while it ran (a per-key count of changes, kept only for keys
 *   with a read in flight), so a slow read cannot put back what a change
 *   removed, and changes to other dashboards do not keep it from caching;
 * - while change notices cannot be received (listener down, or its heartbeat
 *   missed: see listen.ts), nothing is served from or stored in memory, and
 *   everything is forgotten on each transition;
 * - an entry is never older than maxAgeMs, whatever happens.
 *
 * Staleness bound: a change committed on another replica at T is served from
 * this replica's memory no later than T + 2 × LISTEN_HEARTBEAT_MS (plus this
 * process's timer lag), or T + maxAgeMs if that is sooner. Either its notice
 * arrives first (then it is forgotten), or the heartbeat this replica sends
 * after T, which PostgreSQL delivers after T's notice, is missing one interval
 * later and the cache is bypassed and cleared. Changes this replica commits are
 * forgotten here when COMMIT returns (read-your-writes).
 */
export class DashboardCache {
  private readonly entries = new Map<string, { record: DashboardRecord; storedAtMs: number }>();
  /** Keys with a read in flight, and how many changes to each were announced since the oldest began. */
  private readonly inFlight = new Map<string, { readers: number; changes: number }>();
  /** Bumped when listening starts or stops: a read begun before must not store. */
  private generation = 0;
  private listening = false;

  constructor(
    private readonly maxEntries = 10_000,
    private readonly maxAgeMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The cached record, if there is a fresh one: what read() would answer with no load. */
  peek(organizationId: string, tenantId: string): DashboardRecord | undefined {
    const hit = this.listening ? this.entries.get(keyOf(organizationId, tenantId)) : undefined;
    return hit && this.now() - hit.storedAtMs < this.maxAgeMs ? hit.record : undefined;
  }

  async read(
    organizationId: string,
    tenantId: string,
    load: () => Promise<DashboardRecord | undefined>,
  ): Promise<DashboardRecord | undefined> {
    const fresh = this.peek(organizationId, tenantId);
    if (fresh) return fresh;
    const key = keyOf(organizationId, tenantId);
    let flight = this.inFlight.get(key);
    if (!flight) this.inFlight.set(key, (flight = { readers: 0, changes: 0 }));
    flight.readers++;
    const changesBefore = flight.changes;
    const generation = this.generation;
    let record: DashboardRecord | undefined;
    try {
      record = await load();
    } finally {
      if (--flight.readers === 0) this.inFlight.delete(key);
    }
    // Absent dashboards are not remembered: a create must never be hidden.
    if (record && this.listening && generation === this.generation && flight.changes === changesBefore) {
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, { record, storedAtMs: this.now() });
    }
    return record;
  }

  /** A change to this tenant's dashboard was committed (here or on another replica). */
  forget(organizationId: string, tenantId: string): void {
    const key = keyOf(organizationId, tenantId);
    const flight = this.inFlight.get(key);
    if (flight) flight.changes++;
    this.entries.delete(key);
  }

  /** Whether change notices are being received; on any transition everything is forgotten. */
  setListening(listening: boolean): void {
    this.generation++;
    this.entries.clear();
    this.listening = listening;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Keys with a read in flight (bounded by concurrent reads, never by history). */
  get trackedReads(): number {
    return this.inFlight.size;
  }
}

/** The NOTIFY channel and payload format shared by writers and listeners. */
export const DASHBOARD_CHANGES_CHANNEL = "dashboard_changes";

export function changeNotice(organizationId: string, tenantId: string): string {
  return JSON.stringify([organizationId, tenantId]);
}

export function parseChangeNotice(payload: string): [string, string] | undefined {
  try {
    const parsed = JSON.parse(payload) as unknown;
    if (Array.isArray(parsed) && parsed.length === 2 && parsed.every((p) => typeof p === "string")) {
      return parsed as [string, string];
    }
  } catch {
    // not ours
  }
  return undefined;
}

const keyOf = (organizationId: string, tenantId: string) => `${organizationId}\u0000${tenantId}`;
