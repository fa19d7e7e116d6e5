import { LRUCache } from "lru-cache";
import type { Caller } from "./caller.js";

export interface VerifiedTokenCacheOptions {
  /** The most memory the entries may take, as estimated by callerBytes (bytes); 0 keeps none. */
  maxBytes: number;
  /** No entry outlives this, whatever its token's exp: a key an identity provider withdraws stops working by then. */
  maxAgeMs: number;
  /** Milliseconds since the epoch (the app's clock). */
  now: () => number;
}

/** Expired entries are swept at most this often, by whichever set comes next (no timer to keep or stop). */
const SWEEP_EVERY_MS = 10_000;

/**
 * Callers of tokens already verified, so the same bearer token on its next
 * call skips signature verification (the most expensive step of a read).
 * Keyed by the token itself: a SHA-256 of it on every call was a tenth of a
 * cached read's own work, and only an exact match may ever hit. Bounded by the
 * estimated size of the entries, the token's own characters included (a long
 * token, or one with a thousand tenant ids, costs what it weighs), least
 * recently used first out.
 * An entry never outlives its token's exp nor maxAgeMs.
 */
export class VerifiedTokenCache {
  // undefined when the cache is off (lru-cache refuses a maxSize of 0).
  private readonly entries: LRUCache<string, Caller> | undefined;
  private lastSweep: number;

  constructor(private readonly options: VerifiedTokenCacheOptions) {
    if (options.maxBytes === 0) {
      this.lastSweep = options.now();
      return;
    }
    this.entries = new LRUCache<string, Caller>({
      maxSize: options.maxBytes,
      sizeCalculation: (caller, token) => callerBytes(caller) + 2 * token.length,
      ttlAutopurge: false,
      perf: { now: options.now },
      // Read the app clock on every check (lru-cache would otherwise reuse one reading for a millisecond).
      ttlResolution: 0,
    });
    this.lastSweep = options.now();
  }

  get(token: string): Caller | undefined {
    return this.entries?.get(token);
  }

  set(token: string, caller: Caller, expiresAtMs: number): void {
    const now = this.options.now();
    // lru-cache drops an entry once its age is more than ttl: one less makes it gone at expiresAtMs itself.
    const ttl = Math.min(expiresAtMs - now, this.options.maxAgeMs) - 1;
    if (ttl <= 0 || !this.entries) return;
    if (now - this.lastSweep >= SWEEP_EVERY_MS) {
      this.lastSweep = now;
      this.entries.purgeStale();
    }
    this.entries.set(token, caller, { ttl });
  }

  get size(): number {
    return this.entries?.size ?? 0;
  }

  /** The estimated bytes the entries take. */
  get bytes(): number {
    return this.entries?.calculatedSize ?? 0;
  }
}

/** A generous estimate of what a caller keeps alive: its strings (two bytes a character) and the objects around them. */
export function callerBytes(caller: Caller): number {
  let bytes = 300 + 2 * (caller.subject.length + caller.organizationId.length);
  for (const tenantId of caller.tenantIds) bytes += 64 + 2 * tenantId.length;
  return bytes;
}
