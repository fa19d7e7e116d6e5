import type { Clock } from "../clock.js";
import type { Logger } from "../log/logger.js";
import type { Sql } from "../store/sql.js";

/**
 * Background work that belongs to no request: purging retired keys, and
 * retention. A job must be safe to run on any replica and to run again after a
 * failure; the runner makes sure only one replica runs it at a time.
 */
export interface Job {
  /** Stable: it names the job's advisory lock and its log lines. */
  name: string;
  /** How often it is due, by the injected clock. */
  everyMs: number;
  run(now: Date): Promise<void>;
}

export interface JobRunnerOptions {
  sql: Sql;
  clock: Clock;
  log: Logger;
  /** How often (real time) the runner looks for due jobs; the clock decides which are due. */
  pollMs?: number;
  /**
   * "none" for the embedded database: one process owns it, so there is no other
   * replica to exclude (and its single connection would wait on the lock's own transaction).
   */
  election?: "advisory-lock" | "none";
}

export interface JobRun {
  name: string;
  /** false when another replica held the job's lock, so this one skipped it. */
  ran: boolean;
  error?: unknown;
}

// The high half of every job's advisory lock (pg_try_advisory_xact_lock(int, int)): apart from other locks.
const JOB_LOCK_SPACE = 0x6a6f6273; // "jobs"

/**
 * Runs each registered job off the request path, every `everyMs` of the
 * injected clock, on one replica at a time: a run holds a transaction-scoped
 * advisory lock named after the job, and a replica that cannot take it skips
 * that round. Within a replica, rounds never overlap.
 */
export class JobRunner {
  private readonly jobs: Job[] = [];
  private readonly nextDue = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<JobRun[]> | undefined;
  private stopped = false;

  constructor(private readonly options: JobRunnerOptions) {}

  /** Adds a job; due at once, then every everyMs. */
  register(job: Job): void {
    if (this.jobs.some((j) => j.name === job.name)) throw new Error(`two jobs named ${job.name}`);
    this.jobs.push(job);
    this.nextDue.set(job.name, this.options.clock());
  }

  get registered(): readonly Job[] {
    return this.jobs;
  }

  start(): void {
    if (this.timer || this.stopped || this.jobs.length === 0) return;
    const pollMs = this.options.pollMs ?? Math.min(1_000, ...this.jobs.map((j) => j.everyMs));
    this.timer = setInterval(() => {
      this.runDue().catch((err: unknown) => this.options.log.error({ err }, "background jobs failed"));
    }, pollMs);
    this.timer.unref();
  }

  /** Runs every job that is due now (by the clock); resolves when the round is over. Tests call this. */
  async runDue(): Promise<JobRun[]> {
    // A round already running is waited for, then the due jobs are looked at again.
    while (this.round) await this.round.catch(() => undefined);
    if (this.stopped) return [];
    this.round = this.runRound().finally(() => {
      this.round = undefined;
    });
    return this.round;
  }

  /** Stops scheduling and waits for a round in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.round?.catch(() => undefined);
  }

  private async runRound(): Promise<JobRun[]> {
    const runs: JobRun[] = [];
    for (const job of this.jobs) {
      const now = this.options.clock();
      if (now < this.nextDue.get(job.name)!) continue;
      this.nextDue.set(job.name, now + job.everyMs);
      runs.push(await this.runOne(job, now));
    }
    return runs;
  }

  private async runOne(job: Job, now: number): Promise<JobRun> {
    try {
      if (this.options.election === "none") {
        await job.run(new Date(now));
        return { name: job.name, ran: true };
      }
      // The lock lives as long as this transaction; the job may use other connections meanwhile.
      const ran = await this.options.sql.transaction(async (tx) => {
        const { rows } = await tx.query<{ locked: boolean }>(
          "SELECT pg_try_advisory_xact_lock($1, hashtext($2)) AS locked",
          [JOB_LOCK_SPACE, job.name],
        );
        if (!rows[0]?.locked) return false;
        await job.run(new Date(now));
        return true;
      });
      return { name: job.name, ran };
    } catch (err) {
      this.options.log.error({ err, job: job.name }, "background job failed; it runs again when next due");
      return { name: job.name, ran: true, error: err };
    }
  }
}
