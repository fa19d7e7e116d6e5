import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/config.js";

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe("operations configuration", () => {
  it("defaults to a 10 s shutdown grace and JSON logs", () => {
    const config = loadConfig({});
    expect(config.shutdownGraceMs).toBe(10_000);
    expect(config.logFormat).toBe("json");
  });

  it("reads SHUTDOWN_GRACE_SECONDS and LOG_FORMAT", () => {
    const config = loadConfig({ SHUTDOWN_GRACE_SECONDS: "25", LOG_FORMAT: "pretty" });
    expect(config.shutdownGraceMs).toBe(25_000);
    expect(config.logFormat).toBe("pretty");
  });

  it("names every bad value at once: unknown values, a negative grace, a short secret, missing production settings", () => {
    const problems = problemsOf({
      NODE_ENV: "production",
      LOG_FORMAT: "xml",
      LOG_LEVEL: "loud",
      SHUTDOWN_GRACE_SECONDS: "-1",
    });
    expect(problems.some((p) => p.startsWith("LOG_FORMAT:"))).toBe(true);
    expect(problems.some((p) => p.startsWith("LOG_LEVEL:"))).toBe(true);
    expect(problems.some((p) => p.startsWith("SHUTDOWN_GRACE_SECONDS:"))).toBe(true);
    // Production without its secrets fails when the values above are fixed too.
    const production = problemsOf({ NODE_ENV: "production" });
    expect(production.some((p) => p.startsWith("DATABASE_URL:"))).toBe(true);
    expect(production.some((p) => p.includes("AUTH_JWT_SECRET"))).toBe(true);
    expect(
      problemsOf({ AUTH_JWT_SECRET: "too-short" }).some(
        (p) => p.startsWith("AUTH_JWT_SECRET:") && p.includes("32 bytes"),
      ),
    ).toBe(true);
  });
});
