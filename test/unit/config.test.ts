import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/config.js";

describe("configuration", () => {
  it("has working defaults for a newcomer", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      env: "development",
      host: "0.0.0.0",
      port: 8080,
      maxRequestBytes: 1048576,
      database: { kind: "embedded", dataDir: "./data" },
      redis: undefined,
      auth: { mode: "development", secretFile: "./data/dev-auth-secret" },
      embed: { defaultTtlSeconds: 600, maxTtlSeconds: 86400, issuer: "dashboard-service", audience: "dashboard-embed" },
      rateLimit: { iframeTokenPerMinute: 10, defaultPerMinute: 600, failedAuthPerMinute: 30, organizationPerMinute: 0 },
    });
  });

  it("reads every setting", () => {
    const c = loadConfig({
      PORT: "9000",
      DATABASE_URL: "postgres://u@db/x",
      DATABASE_POOL_MAX: "20",
      REDIS_URL: "redis://r:6379",
      AUTH_JWT_SECRET: "s".repeat(32),
      AUTH_ISSUER: "iss",
      EMBED_TOKEN_MAX_TTL_SECONDS: "3600",
      EMBED_TOKEN_DEFAULT_TTL_SECONDS: "60",
    });
    expect(c.port).toBe(9000);
    expect(c.database).toEqual({ kind: "postgres", url: "postgres://u@db/x", poolMax: 20 });
    expect(c.redis?.topology).toEqual({ kind: "node", url: "redis://r:6379" });
    expect(c.auth).toMatchObject({ mode: "secret", issuer: "iss" });
    expect(c.embed).toMatchObject({ maxTtlSeconds: 3600, defaultTtlSeconds: 60 });
  });

  it("fetches caller-token keys in production only over https, or plain http from loopback", () => {
    const production = {
      NODE_ENV: "production",
      DATABASE_URL: "postgres://u@db/x",
      KEY_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 1).toString("base64url")}`,
    };
    for (const url of [
      "https://idp.example.com/jwks",
      "http://127.0.0.1:9000/jwks",
      "http://localhost/jwks",
      "http://[::1]/k",
    ]) {
      expect(loadConfig({ ...production, AUTH_JWKS_URL: url }).auth).toMatchObject({ mode: "jwks", jwksUrl: url });
    }
    for (const url of ["http://idp.example.com/jwks", "http://10.0.0.1/jwks", "http://127.0.0.1.example.com/jwks"]) {
      expect(() => loadConfig({ ...production, AUTH_JWKS_URL: url }), url).toThrow(/AUTH_JWKS_URL: production fetches/);
    }
    // Outside production plain http stays allowed (a local identity provider in development).
    expect(loadConfig({ AUTH_JWKS_URL: "http://idp.local/jwks" }).auth.mode).toBe("jwks");
  });

  it("gives each organization all but two of the pool by default (at least half), and no more than the pool", () => {
    const share = (env: Record<string, string>) => loadConfig(env).storage.organizationShare;
    expect(share({})).toBe(8);
    expect(share({ DATABASE_POOL_MAX: "3" })).toBe(2);
    expect(share({ DATABASE_POOL_MAX: "1" })).toBe(1);
    expect(share({ DATABASE_POOL_MAX: "20", DATABASE_ORGANIZATION_SHARE: "5" })).toBe(5);
    expect(() => loadConfig({ DATABASE_POOL_MAX: "4", DATABASE_ORGANIZATION_SHARE: "5" })).toThrow(
      /DATABASE_ORGANIZATION_SHARE/,
    );
  });

  it("takes a retention window in fractions of an hour (down to a second) and one interval for every job", () => {
    expect(loadConfig({}).storage).toMatchObject({ createRequestRetentionHours: 24, retentionIntervalMs: undefined });
    const short = loadConfig({ CREATE_REQUEST_RETENTION_HOURS: "0.002", RETENTION_INTERVAL_SECONDS: "2" }).storage;
    expect(short).toMatchObject({ createRequestRetentionHours: 0.002, retentionIntervalMs: 2000 });
    expect(() => loadConfig({ CREATE_REQUEST_RETENTION_HOURS: "0.0001" })).toThrow(/CREATE_REQUEST_RETENTION_HOURS/);
  });

  it("lists every problem at once", () => {
    try {
      loadConfig({
        PORT: "eighty",
        DATABASE_URL: "mysql://x",
        AUTH_JWT_SECRET: "short",
        AUTH_JWKS_URL: "https://idp/jwks",
        EMBED_TOKEN_DEFAULT_TTL_SECONDS: "7200",
        EMBED_TOKEN_MAX_TTL_SECONDS: "3600",
        EMBED_SIGNING_KEY: '{"kty":"RSA"}',
        LOG_LEVEL: "loud",
      });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const text = (err as ConfigError).problems.join("\n");
      for (const name of ["PORT", "DATABASE_URL", "AUTH_JWT_SECRET", "EMBED_SIGNING_KEY", "LOG_LEVEL"])
        expect(text).toContain(name);
    }
  });

  it("requires real credentials and a database in production", () => {
    expect(() => loadConfig({ NODE_ENV: "production" })).toThrow(
      /AUTH_JWT_SECRET.*\n.*DATABASE_URL|DATABASE_URL.*\n.*AUTH_JWT_SECRET/s,
    );
    const complete = { NODE_ENV: "production", AUTH_JWT_SECRET: "s".repeat(32), DATABASE_URL: "postgres://db/x" };
    // Keys kept in the database are sealed: production needs the key that seals them.
    expect(() => loadConfig(complete)).toThrow(/KEY_ENCRYPTION_KEYS: production seals/);
    expect(() =>
      loadConfig({ ...complete, KEY_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 1).toString("base64url")}` }),
    ).not.toThrow();
  });

  it("reads KEY_ENCRYPTION_KEYS as ordered id:key pairs of 32 bytes, base64 or base64url, and refuses anything else", () => {
    const b64 = Buffer.alloc(32, 0xfb).toString("base64"); // has + and /
    const b64url = Buffer.alloc(32, 0xfb).toString("base64url"); // has - and _
    const keys = loadConfig({ KEY_ENCRYPTION_KEYS: `new:${b64url}, old:${b64}` }).embed.keyEncryptionKeys!;
    expect(keys.map((k) => k.id)).toEqual(["new", "old"]);
    expect(keys.every((k) => Buffer.from(k.key).equals(Buffer.alloc(32, 0xfb)))).toBe(true);
    const refused: [string, RegExp][] = [
      [`k1:${Buffer.alloc(16).toString("base64")}`, /must be 32 bytes \(it is 16\)/],
      [b64, /id:key pairs/],
      [`k 1:${b64}`, /id:key pairs/],
      [`k1:${b64},k1:${b64url}`, /listed twice/],
      ["k1:not*base64", /base64 or base64url/],
    ];
    for (const [value, problem] of refused) {
      expect(() => loadConfig({ KEY_ENCRYPTION_KEYS: value }), value).toThrow(problem);
    }
  });

  it("refuses two caller-key settings at once rather than guessing", () => {
    expect(() => loadConfig({ AUTH_JWT_SECRET: "s".repeat(32), AUTH_JWT_PUBLIC_KEY: "pem" })).toThrow(/only one/);
  });

  it("reads a Redis Sentinel or Cluster topology, and refuses half of one", () => {
    expect(
      loadConfig({ REDIS_SENTINELS: "s1:26379, [::1]:26380", REDIS_SENTINEL_NAME: "main", REDIS_URL: "rediss://:pw@x" })
        .redis?.topology,
    ).toEqual({
      kind: "sentinel",
      sentinels: [
        { host: "s1", port: 26379 },
        { host: "::1", port: 26380 },
      ],
      name: "main",
      url: "rediss://:pw@x",
    });
    expect(loadConfig({ REDIS_CLUSTER_NODES: "10.0.0.1:7000,10.0.0.2:7001" }).redis?.topology).toEqual({
      kind: "cluster",
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "10.0.0.2", port: 7001 },
      ],
      url: undefined,
    });
    expect(() => loadConfig({ REDIS_SENTINELS: "s1:26379" })).toThrow(/REDIS_SENTINEL_NAME: must name the primary/);
    expect(() => loadConfig({ REDIS_SENTINEL_NAME: "main" })).toThrow(/REDIS_SENTINELS: must be set/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: "a:1", REDIS_SENTINELS: "b:2", REDIS_SENTINEL_NAME: "m" })).toThrow(
      /REDIS_CLUSTER_NODES: cannot be set with REDIS_SENTINELS/,
    );
    for (const bad of ["host", "host:0", "host:70000", "a b:1", ","]) {
      expect(() => loadConfig({ REDIS_CLUSTER_NODES: bad }), bad).toThrow(/REDIS_CLUSTER_NODES/);
    }
  });
});
