import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failureOf, outcomeOf } from "../helpers/errors.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { spawnServer, type ServerProcess } from "../helpers/process.js";
import { bearer, callerToken, TEST_JWT_SECRET } from "../helpers/tokens.js";
import { SHARED_REDIS_URL, uniquePrefix } from "../helpers/redis.js";
import { connectClient, dashboardToMint } from "./setup.js";

describe("two server processes sharing one Redis and one database", () => {
  let db: TestDatabase;
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = {
      NODE_ENV: "test",
      DATABASE_URL: db.url,
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      REDIS_URL: SHARED_REDIS_URL,
      RATE_LIMIT_REDIS_KEY_PREFIX: uniquePrefix("replicas"),
      // Redis decides every call, however busy the machine: exactly 10 of 12 must be counted there.
      REDIS_COMMAND_TIMEOUT_MS: "5000",
      LOG_LEVEL: "info",
    };
    a = await spawnServer(env);
    b = await spawnServer(env);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  });

  it("say at start-up that limits are shared through Redis", () => {
    for (const server of [a, b]) {
      expect(server.lines.some((l) => l.includes("rate limits are shared through Redis"))).toBe(true);
    }
  });

  it("enforce one budget per caller: 12 mints alternating between them yield exactly 10", async () => {
    const org = "org-replicas";
    const target = await dashboardToMint(a.baseUrl, org);
    const clients = [connectClient(a.baseUrl), connectClient(b.baseUrl)];
    const caller = bearer(await callerToken({ org, admin: true, sub: "minter" }));

    const results: string[] = [];
    for (let i = 0; i < 12; i++) results.push(await outcomeOf(clients[i % 2]!.createIframeToken(target, caller)));

    expect(results.filter((r) => r === "ok")).toHaveLength(10);
    expect(results.slice(10)).toEqual(["RATE_LIMITED", "RATE_LIMITED"]);
    // Both processes refuse from then on, whichever one saw the limit first.
    for (const client of clients) {
      expect((await failureOf(client.createIframeToken(target, caller))).code).toBe(Code.ResourceExhausted);
    }
  });
});

describe("a server process without REDIS_URL", () => {
  let db: TestDatabase;
  let server: ServerProcess;

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await spawnServer({
      NODE_ENV: "test",
      DATABASE_URL: db.url,
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "2",
      LOG_LEVEL: "info",
    });
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it("says its limits are per process, and enforces them", async () => {
    expect(server.lines.some((l) => l.includes("rate limits are kept per process"))).toBe(true);
    const target = await dashboardToMint(server.baseUrl, "org-solo");
    const client = connectClient(server.baseUrl);
    const caller = bearer(await callerToken({ org: "org-solo", admin: true, sub: "solo" }));
    const results: string[] = [];
    for (let i = 0; i < 3; i++) results.push(await outcomeOf(client.createIframeToken(target, caller)));
    expect(results).toEqual(["ok", "ok", "RATE_LIMITED"]);
  });
});
