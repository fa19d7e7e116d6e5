import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { outcomeOf } from "../helpers/errors.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";
import { eventually, PrivateRedis, silentRedis, uniquePrefix } from "../helpers/redis.js";
import { alternateMints, connectClient, dashboardToMint, type MintTarget } from "./setup.js";

const org = "org-outage";

describe("two servers on a private Redis that is stopped and started again", () => {
  let redis: PrivateRedis;
  let direct: Redis;
  let a: TestServer;
  let b: TestServer;
  let target: MintTarget;
  const prefix = uniquePrefix("outage");

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    direct = new Redis(redis.url, { enableOfflineQueue: false, retryStrategy: () => 100 });
    direct.on("error", () => {});
    const env = {
      REDIS_URL: redis.url,
      RATE_LIMIT_REDIS_KEY_PREFIX: prefix,
      RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "10",
      REDIS_COMMAND_TIMEOUT_MS: "100",
    };
    a = await startTestServer(env);
    b = await startTestServer(env, a.db);
    target = await dashboardToMint(a.baseUrl, org);
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    direct?.disconnect();
    await redis?.stop();
  });

  /** Waits until each server counts calls in Redis again (its ioredis reconnects on its own). */
  async function untilBothUseRedis(round: string): Promise<void> {
    for (const [name, server] of [
      ["a", a],
      ["b", b],
    ] as const) {
      const sub = `probe-${round}-${name}`;
      const token = bearer(await callerToken({ org, admin: true, sub }));
      await eventually(`server ${name} counts in Redis`, async () => {
        await connectClient(server.baseUrl).getDashboard({ tenantId: "tenant-1" }, token);
        return (await direct.exists(`{${prefix}:default:${org}:${sub}}`).catch(() => 0)) === 1;
      });
    }
  }

  const alternate = (sub: string, calls: number) => alternateMints([a.baseUrl, b.baseUrl], org, target, sub, calls);

  it("shares one limit, keeps serving within per-process limits while Redis is down, and shares again once it is back", async () => {
    await untilBothUseRedis("start");
    expect((await alternate("before", 12)).filter((r) => r === "ok")).toHaveLength(10);

    await redis.stop();
    // Each process now holds the caller to 10 on its own: calls succeed, within those limits.
    const token = bearer(await callerToken({ org, admin: true, sub: "during" }));
    const onA: string[] = [];
    for (let i = 0; i < 11; i++) onA.push(await outcomeOf(connectClient(a.baseUrl).createIframeToken(target, token)));
    expect(onA).toEqual([...Array<string>(10).fill("ok"), "RATE_LIMITED"]);
    const onB: string[] = [];
    for (let i = 0; i < 11; i++) onB.push(await outcomeOf(connectClient(b.baseUrl).createIframeToken(target, token)));
    expect(onB).toEqual([...Array<string>(10).fill("ok"), "RATE_LIMITED"]);
    // Reads keep working too.
    const { dashboard } = await connectClient(b.baseUrl).getDashboard({ tenantId: "tenant-1" }, token);
    expect(dashboard!.id).toBe(target.dashboardId);

    await redis.start(); // same port, no server restarted
    await untilBothUseRedis("after");
    const after = await alternate("after", 12);
    expect(after.filter((r) => r === "ok")).toHaveLength(10);
    expect(after.slice(10)).toEqual(["RATE_LIMITED", "RATE_LIMITED"]);
    // What was reserved across both servers: exactly the limit, never more (a refusal reserves nothing).
    expect(await direct.get(`{${prefix}:iframe-token:${org}:after}`)).toBe("10");
  });
});

describe("a server whose Redis accepts connections but never answers", () => {
  let silent: Awaited<ReturnType<typeof silentRedis>>;
  let server: TestServer;

  beforeAll(async () => {
    silent = await silentRedis();
    server = await startTestServer({
      REDIS_URL: silent.url,
      RATE_LIMIT_REDIS_KEY_PREFIX: uniquePrefix("silent"),
      RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "10",
      REDIS_COMMAND_TIMEOUT_MS: "100",
    });
  });
  afterAll(async () => {
    await server?.stop();
    await silent?.close();
  });

  it("keeps answering, within in-process limits, without waiting on Redis", async () => {
    const target = await dashboardToMint(server.baseUrl, org);
    expect(silent.connections()).toBeGreaterThan(0);
    const token = bearer(await callerToken({ org, admin: true, sub: "silent" }));
    const client = connectClient(server.baseUrl);
    const results: string[] = [];
    // A silent Redis would hold each call until the test times out; the limiter gives up after 100 ms instead.
    for (let i = 0; i < 11; i++) results.push(await outcomeOf(client.createIframeToken(target, token)));
    expect(results).toEqual([...Array<string>(10).fill("ok"), "RATE_LIMITED"]);
  });
});
