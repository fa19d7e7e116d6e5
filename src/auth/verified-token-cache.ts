import type { Caller } from "./caller.js";

/**
 * Callers of tokens already verified, so the same bearer token on its next
 * call skips signature verification (the most expensive step of a read).
 * An entry never outlives its token's exp, nor maxAgeMs, so a token from a key
 * an identity provider withdraws stops working within maxAgeMs. Bounded: the
 * oldest entries go first.
 */
export class VerifiedTokenCache {
  private readonly entries = new Map<string, { caller: Caller; validUntilMs: number }>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly maxAgeMs = 60_000,
  ) {}

  get(token: string, nowMs: number): Caller | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (entry.validUntilMs <= nowMs) {
      this.entries.delete(token);
      return undefined;
    }
    return entry.caller;
  }

  set(token: string, caller: Caller, expiresAtMs: number, nowMs: number): void {
    const validUntilMs = Math.min(expiresAtMs, nowMs + this.maxAgeMs);
    if (validUntilMs <= nowMs) return;
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(token, { caller, validUntilMs });
  }

  get size(): number {
    return this.entries.size;
  }
}
