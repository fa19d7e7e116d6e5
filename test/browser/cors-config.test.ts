import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/config.js";

const base = { NODE_ENV: "test" };

describe("CORS_ALLOWED_ORIGINS", () => {
  it("allows no origin by default", () => {
    expect(loadConfig(base).cors.allowedOrigins).toEqual([]);
    expect(loadConfig({ ...base, CORS_ALLOWED_ORIGINS: "  " }).cors.allowedOrigins).toEqual([]);
  });

  it("is a comma-separated list of exact origins, spaces trimmed", () => {
    const config = loadConfig({
      ...base,
      CORS_ALLOWED_ORIGINS: "https://app.example.com, http://localhost:5173,,http://127.0.0.1:8081",
    });
    expect(config.cors.allowedOrigins).toEqual([
      "https://app.example.com",
      "http://localhost:5173",
      "http://127.0.0.1:8081",
    ]);
  });

  it("refuses entries a browser would never send as Origin, naming each", () => {
    let problem: ConfigError | undefined;
    try {
      loadConfig({
        ...base,
        CORS_ALLOWED_ORIGINS:
          "https://app.example.com/, https://App.example.com, ftp://files.example.com, *, https://ok.example.com:443",
      });
    } catch (err) {
      problem = err as ConfigError;
    }
    expect(problem).toBeInstanceOf(ConfigError);
    const text = problem!.problems.join("\n");
    expect(text).toContain('"https://app.example.com/" must be written as its origin "https://app.example.com"');
    expect(text).toContain('"https://App.example.com" must be written as its origin "https://app.example.com"');
    expect(text).toContain('"ftp://files.example.com" must be http:// or https://');
    expect(text).toContain('"*" is not an origin');
    expect(text).toContain('"https://ok.example.com:443" must be written as its origin "https://ok.example.com"');
    expect(problem!.problems.every((p) => p.startsWith("CORS_ALLOWED_ORIGINS: "))).toBe(true);
  });
});
