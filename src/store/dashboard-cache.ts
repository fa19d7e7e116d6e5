import type { DashboardRecord } from "./dashboard-store.js";

/**
 * Recently read dashboards, by organization and tenant, for the reads every
 * page view makes (GetDashboard, CreateIframeToken). Dashboards change only by
 * create and delete; every change is announced (PostgreSQL NOTIFY, delivered
 * to every replica on commit) and forgotten locally as soon as it commits, so
 * a replica answers from memory only what no change has touched since.
 *
 * Two rules keep it correct rather than merely fresh:
 * - a read stores its result only if no change was announced while it ran
 *   (the epoch), so a slow read cannot put back what a change removed;
 * - while change notices cannot be received (listener down), nothing is
 *   served from or stored in memory.
 */
export class DashboardCache {
  private readonly entries = new Map<string, { record: DashboardRecord; storedAtMs: number }>();
  private epoch = 0;
  private listening = false;

  constructor(
    private readonly maxEntries = 10_000,
    private readonly maxAgeMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  async read(
    organizationId: string,
    tenantId: string,
    load: () => Promise<DashboardRecord | undefined>,
  ): Promise<DashboardRecord | undefined> {
    const key = keyOf(organizationId, tenantId);
    const hit = this.listening ? this.entries.get(key) : undefined;
    if (hit && this.now() - hit.storedAtMs < this.maxAgeMs) return hit.record;
    const epoch = this.epoch;
    const record = await load();
    // Absent dashboards are not remembered: a create must never be hidden.
    if (record && this.listening && epoch === this.epoch) {
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, { record, storedAtMs: this.now() });
    }
    return record;
  }

  /** A change to this tenant's dashboard was committed (here or on another replica). */
  forget(organizationId: string, tenantId: string): void {
    this.epoch++;
    this.entries.delete(keyOf(organizationId, tenantId));
  }

  /** Whether change notices are being received; on any transition everything is forgotten. */
  setListening(listening: boolean): void {
    this.epoch++;
    this.entries.clear();
    this.listening = listening;
  }

  get size(): number {
    return this.entries.size;
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
