import type { Deadline } from "../call/deadline.js";
import { overloaded } from "./load-shedding.js";

/** What the shares look like right now, summed over organizations (never per organization: ids are unbounded). */
export interface ShareStats {
  /** The most connections one organization may hold (DATABASE_ORGANIZATION_SHARE). */
  share: number;
  /** Slots held (a held slot is a connection in use or being waited for in the pool), over all organizations. */
  held: number;
  /** Calls waiting for their organization's slot, over all organizations. */
  waiting: number;
  /** Organizations holding their whole share right now. */
  organizationsAtShare: number;
  /** Since start: calls that had to wait for a slot. */
  waited: number;
  /** Since start: calls refused at once because their organization's queue was full. */
  refusedQueueFull: number;
  /** Since start: calls that gave up waiting (shed before their deadline, or their deadline passed). */
  refusedWaitTimeout: number;
}

interface Waiter {
  grant: () => void;
}

interface Organization {
  held: number;
  queue: Waiter[];
}

/**
 * A fair share of the database's connections for each organization: one
 * organization may hold at most `share` of them at once, so however many
 * heavy calls it makes, the rest of the pool stays free for the others.
 *
 * Each organization has its own first-come queue, bounded by
 * `maxWaitingPerOrganization` (a call over it is refused OVERLOADED at once),
 * and a waiter gives up a little before its deadline (OVERLOADED with a retry
 * hint, see load-shedding.ts) or when its call ends. A slot is taken before
 * the pool's own checkout and given back with the connection, so an
 * organization's calls waiting in the pool count against its share too.
 *
 * What is charged is the caller's choice (postgres-sql.ts): a call's query or
 * transaction, once. A transaction's statements run on its one connection and
 * take no second slot, which is what keeps this free of deadlocks: nothing
 * holding a slot ever waits for another. Work of no one organization (group
 * commits batched across organizations, background jobs, start-up) is not
 * charged.
 */
export class OrganizationShares {
  private readonly organizations = new Map<string, Organization>();
  private counts = { waited: 0, refusedQueueFull: 0, refusedWaitTimeout: 0 };

  constructor(
    readonly share: number,
    private readonly maxWaitingPerOrganization: number,
  ) {
    if (!(share >= 1)) throw new Error("an organization's share must be at least one connection");
  }

  /**
   * A slot of the organization's share, waited for at most waitMs (and never past the deadline).
   * Resolves to its release, which may be called more than once (only the first gives the slot back).
   */
  acquire(organization: string, deadline: Deadline | undefined, waitMs: number): Promise<() => void> {
    const ended = deadline?.reasonNow();
    if (ended) return Promise.reject(ended);
    let org = this.organizations.get(organization);
    if (!org) {
      org = { held: 0, queue: [] };
      this.organizations.set(organization, org);
    }
    if (org.held < this.share) {
      org.held++;
      return Promise.resolve(this.releaser(organization, org));
    }
    if (org.queue.length >= this.maxWaitingPerOrganization) {
      this.counts.refusedQueueFull++;
      return Promise.reject(overloaded("organization's database share"));
    }
    this.counts.waited++;
    const queued = org;
    return new Promise((resolve, reject) => {
      const giveUp = (err: unknown) => {
        cleanup();
        const i = queued.queue.indexOf(waiter);
        if (i !== -1) queued.queue.splice(i, 1);
        this.forgetIfIdle(organization, queued);
        this.counts.refusedWaitTimeout++;
        reject(err);
      };
      const timer = setTimeout(() => giveUp(overloaded("organization's database share")), waitMs);
      const cleanup = () => {
        clearTimeout(timer);
        stopWaiting();
      };
      // The slot is handed over by release(): held stays counted, the waiter now owns it.
      const waiter: Waiter = {
        grant: () => {
          cleanup();
          resolve(this.releaser(organization, queued));
        },
      };
      queued.queue.push(waiter);
      // After the push: the deadline has not ended (checked above), so this never calls giveUp at once.
      const stopWaiting = deadline?.onDone(giveUp) ?? (() => {});
    });
  }

  stats(): ShareStats {
    let held = 0;
    let waiting = 0;
    let organizationsAtShare = 0;
    for (const org of this.organizations.values()) {
      held += org.held;
      waiting += org.queue.length;
      if (org.held >= this.share) organizationsAtShare++;
    }
    return { share: this.share, held, waiting, organizationsAtShare, ...this.counts };
  }

  private releaser(organization: string, org: Organization): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = org.queue.shift();
      if (next) {
        next.grant();
        return;
      }
      org.held--;
      this.forgetIfIdle(organization, org);
    };
  }

  /** An organization with nothing held or queued takes no memory: the map is as large as the busy ones. */
  private forgetIfIdle(organization: string, org: Organization): void {
    if (org.held === 0 && org.queue.length === 0 && this.organizations.get(organization) === org) {
      this.organizations.delete(organization);
    }
  }
}
