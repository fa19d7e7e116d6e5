import type { Clock } from "../../src/clock.js";

/**
 * A clock that moves only when told to, handed to the app under test so a
 * test can step past an expiry or a key window instead of sleeping through it.
 * It starts at the real time, so tokens it dates are plausible to outside
 * verifiers given the same time (jose's currentDate).
 */
export class ManualClock {
  private nowMs: number;

  constructor(startMs = Date.now()) {
    this.nowMs = startMs;
  }

  readonly now: Clock = () => this.nowMs;

  advance(ms: number): void {
    this.nowMs += ms;
  }

  /** Unix seconds, as JWT claims count time. */
  seconds(): number {
    return Math.floor(this.nowMs / 1000);
  }

  date(): Date {
    return new Date(this.nowMs);
  }
}
