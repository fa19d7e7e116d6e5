import { ServiceError } from "../errors/service-error.js";

export interface BodyBudgetOptions {
  /** Bytes all request bodies being read or held may take together. */
  maxBytes: number;
  /** Of those, what requests without a verified caller (health, reflection) may take together. */
  maxUnauthenticatedBytes: number;
}

/**
 * The process-wide cap on request bytes held in memory. Every body read by
 * the edge reserves its bytes here as they arrive and gives them back when
 * its call ends, so however many connections and streams send at once, the
 * buffered total stays bounded; past it, calls are refused OVERLOADED (retry
 * later) instead of taking the process out of memory.
 */
export class BodyBudget {
  private used = 0;
  private usedUnauthenticated = 0;

  constructor(private readonly options: BodyBudgetOptions) {}

  /** Reserves bytes, or throws OVERLOADED when they do not fit. */
  reserve(bytes: number, authenticated: boolean): void {
    if (this.used + bytes > this.options.maxBytes) throw overloaded();
    if (!authenticated && this.usedUnauthenticated + bytes > this.options.maxUnauthenticatedBytes) throw overloaded();
    this.used += bytes;
    if (!authenticated) this.usedUnauthenticated += bytes;
  }

  release(bytes: number, authenticated: boolean): void {
    this.used -= bytes;
    if (!authenticated) this.usedUnauthenticated -= bytes;
  }

  get bytesInUse(): number {
    return this.used;
  }
}

const overloaded = () =>
  new ServiceError("OVERLOADED", "the server is receiving too many request bytes at once; retry shortly");
