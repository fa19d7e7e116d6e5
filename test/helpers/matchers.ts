import { expect } from "vitest";

/** The asymmetric matchers these tests use, as vitest's `expect` has them but typed `unknown` instead of `any`. */
interface Matchers {
  any(constructor: unknown): unknown;
  stringMatching(expected: string | RegExp): unknown;
  stringContaining(expected: string): unknown;
}

/**
 * vitest's asymmetric matchers return `any`, which would switch type checking off for the expected value they sit
 * in; `match.any(String)` and the like are the same matchers, typed `unknown` (they are compared, never used).
 */
export const match: Matchers = expect;
