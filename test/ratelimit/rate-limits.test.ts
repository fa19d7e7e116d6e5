import { Code, ConnectError } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { dashboardClient } from "../helpers/clients.js";
import { failureFrom, failureOf } from "../helpers/errors.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";
import { SHARED_REDIS_URL, uniquePrefix } from "../helpers/redis.js";
import { connectClient, dashboardToMint, mintWithFetch, type MintTarget } from "./setup.js";

let redis: Redis;
beforeAll(() => {
  redis = new Redis(SHARED_REDIS_URL);
});
afterAll(() => redis.quit());

/** The ErrorInfo metadata of a failed call, decoded from the wire (any protocol). */
function errorInfoMetadata(err: unknown): Record<string, string> {
  const [info] = ConnectError.from(err).findDetails(ErrorInfoSchema);
  return { ...info?.metadata };
}

describe("per-caller limits through Redis (the guide's defaults)", () => {
  const prefix = uniquePrefix("caller");
  const org = "org-limits";
  let server: TestServer;
  let target: MintTarget;

  beforeAll(async () => {
    server = await startTestServer({
      REDIS_URL: SHARED_REDIS_URL,
      RATE_LIMIT_REDIS_KEY_PREFIX: prefix,
      RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "10",
      RATE_LIMIT_DEFAULT_PER_MINUTE: "600",
    });
    target = await dashboardToMint(server.baseUrl, org);
  });
  afterAll(() => server.stop());

  it("refuses the 11th iframe token of a minute with RESOURCE_EXHAUSTED, RATE_LIMITED, RetryInfo and headers", async () => {
    const client = connectClient(server.baseUrl);
    const alice = await callerToken({ org, admin: true, sub: "alice" });

    const remaining: string[] = [];
    for (let i = 1; i <= 10; i++) {
      const res = await mintWithFetch(server.baseUrl, alice, target);
      expect(res.status, `mint ${i}`).toBe(200);
      expect(res.headers.get("ratelimit-limit")).toBe("10");
      expect(res.headers.get("ratelimit-policy")).toBe("10;w=60");
      expect(Number(res.headers.get("ratelimit-reset"))).toBeGreaterThan(0);
      expect(res.headers.get("retry-after")).toBeNull();
      remaining.push(res.headers.get("ratelimit-remaining")!);
    }
    expect(remaining).toEqual(["9", "8", "7", "6", "5", "4", "3", "2", "1", "0"]);

    // The 11th, seen as HTTP by plain fetch on the Connect JSON protocol.
    const refused = await mintWithFetch(server.baseUrl, alice, target);
    expect(refused.status).toBe(429);
    const body = (await refused.json()) as { code: string; message: string };
    expect(body.code).toBe("resource_exhausted");
    expect(body.message).toMatch(/rate limit/);
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers.get("ratelimit-limit")).toBe("10");
    expect(refused.headers.get("ratelimit-remaining")).toBe("0");
    expect(Number(refused.headers.get("ratelimit-reset"))).toBe(retryAfter);
    expect(refused.headers.get("ratelimit-policy")).toBe("10;w=60");

    // The 12th, through the generated client: code, reason, policy and retry delay.
    const err = await client.createIframeToken(target, bearer(alice)).catch((e: unknown) => e);
    const failure = failureFrom(err);
    expect(failure.code).toBe(Code.ResourceExhausted);
    expect(failure.reason).toBe("RATE_LIMITED");
    expect(errorInfoMetadata(err)).toEqual({ policy: "iframe-token" });
    const [retry] = ConnectError.from(err).findDetails(RetryInfoSchema);
    const delayMs = Number(retry!.retryDelay!.seconds) * 1000 + retry!.retryDelay!.nanos / 1e6;
    expect(delayMs).toBeGreaterThan(0);
    expect(delayMs).toBeLessThanOrEqual(60_000);
    expect(ConnectError.from(err).metadata.get("retry-after")).toMatch(/^\d+$/);

    // One counter in Redis, atomic INCR: 10 permitted calls. The refused ones never reached Redis
    // (this process already knew the caller was over its limit).
    expect(await redis.get(`{${prefix}:iframe-token:${org}:alice}`)).toBe("10");
    expect(await redis.pttl(`{${prefix}:iframe-token:${org}:alice}`)).toBeGreaterThan(0);
  });

  it("leaves another caller of the same organization unaffected", async () => {
    const bob = bearer(await callerToken({ org, admin: true, sub: "bob-same-org" }));
    const client = connectClient(server.baseUrl);
    const carol = await callerToken({ org, admin: true, sub: "carol-same-org" });
    for (let i = 0; i < 11; i++) await mintWithFetch(server.baseUrl, carol, target);
    expect((await mintWithFetch(server.baseUrl, carol, target)).status).toBe(429);
    for (let i = 0; i < 10; i++) await client.createIframeToken(target, bob);
    expect((await failureOf(client.createIframeToken(target, bob))).reason).toBe("RATE_LIMITED");
  });

  it("treats the same subject in another organization as another caller", async () => {
    const otherTarget = await dashboardToMint(server.baseUrl, "org-limits-other");
    const client = connectClient(server.baseUrl);
    const dave = await callerToken({ org, admin: true, sub: "dave" });
    for (let i = 0; i < 10; i++) await mintWithFetch(server.baseUrl, dave, target);
    expect((await mintWithFetch(server.baseUrl, dave, target)).status).toBe(429);
    const daveElsewhere = bearer(await callerToken({ org: "org-limits-other", admin: true, sub: "dave" }));
    const minted = await client.createIframeToken(otherTarget, daveElsewhere);
    expect(minted.token).not.toBe("");
  });

  it("does not hold reads to the iframe-token limit, and they have their own budget", async () => {
    const erin = await callerToken({ org, admin: true, sub: "erin" });
    for (let i = 0; i < 10; i++) await mintWithFetch(server.baseUrl, erin, target);
    expect((await mintWithFetch(server.baseUrl, erin, target)).status).toBe(429);

    const client = connectClient(server.baseUrl);
    for (let i = 0; i < 30; i++) {
      const { dashboard } = await client.getDashboard({ tenantId: "tenant-1" }, bearer(erin));
      expect(dashboard!.id).toBe(target.dashboardId);
    }
    const res = await fetch(`${server.baseUrl}/dashboard.v1.DashboardService/ListDashboards`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${erin}` },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("ratelimit-limit")).toBe("600");
    expect(res.headers.get("ratelimit-remaining")).toBe(String(600 - 31));
    expect(res.headers.get("ratelimit-policy")).toBe("600;w=60");
  });

  it("refuses over gRPC too, with the headers as trailers", async () => {
    const grpc = dashboardClient(createGrpcTransport({ baseUrl: server.baseUrl }));
    const frank = bearer(await callerToken({ org, admin: true, sub: "frank" }));
    for (let i = 0; i < 10; i++) await grpc.createIframeToken(target, frank);
    const err = await grpc.createIframeToken(target, frank).catch((e: unknown) => e);
    expect(failureFrom(err).code).toBe(Code.ResourceExhausted);
    expect(errorInfoMetadata(err)).toEqual({ policy: "iframe-token" });
    expect(ConnectError.from(err).findDetails(RetryInfoSchema)).toHaveLength(1);
    expect(ConnectError.from(err).metadata.get("ratelimit-remaining")).toBe("0");
  });
});

describe("the optional per-organization ceiling", () => {
  let server: TestServer;
  let target: MintTarget;
  const org = "org-ceiling";

  beforeAll(async () => {
    server = await startTestServer({
      REDIS_URL: SHARED_REDIS_URL,
      RATE_LIMIT_REDIS_KEY_PREFIX: uniquePrefix("org"),
      RATE_LIMIT_ORGANIZATION_PER_MINUTE: "5",
    });
    target = await dashboardToMint(server.baseUrl, org); // the setup call is the 1st of 5
  });
  afterAll(() => server.stop());

  it("holds all callers of one organization to one budget, and no other organization", async () => {
    const client = connectClient(server.baseUrl);
    const a = bearer(await callerToken({ org, admin: true, sub: "a" }));
    const b = bearer(await callerToken({ org, admin: true, sub: "b" }));
    await client.getDashboard({ tenantId: "tenant-1" }, a);
    await client.getDashboard({ tenantId: "tenant-1" }, a);
    await client.createIframeToken(target, b);
    await client.listDashboards({}, b);
    const err = await client.getDashboard({ tenantId: "tenant-1" }, a).catch((e: unknown) => e);
    expect(failureFrom(err).reason).toBe("RATE_LIMITED");
    expect(errorInfoMetadata(err)).toEqual({ policy: "organization" });

    const outsider = bearer(await callerToken({ org: "org-ceiling-other", admin: true, sub: "a" }));
    const listed = await client.listDashboards({}, outsider);
    expect(listed.dashboards).toEqual([]);
  });
});

describe("failed authentication per client address", () => {
  let server: TestServer;
  const prefix = uniquePrefix("auth");

  beforeAll(async () => {
    server = await startTestServer({
      REDIS_URL: SHARED_REDIS_URL,
      RATE_LIMIT_REDIS_KEY_PREFIX: prefix,
      RATE_LIMIT_FAILED_AUTH_PER_MINUTE: "5",
    });
  });
  afterAll(() => server.stop());

  it("throttles a flood of bad tokens from one address, and never a valid token from it", async () => {
    const client = connectClient(server.baseUrl);
    const forged = bearer(
      await callerToken({ org: "org-victim", admin: true, secret: "a-different-secret-of-at-least-32-bytes" }),
    );
    const codes: Code[] = [];
    for (let i = 0; i < 25; i++) {
      codes.push((await failureOf(client.listDashboards({}, forged))).code);
    }
    expect(codes.slice(0, 5)).toEqual(Array(5).fill(Code.Unauthenticated));
    expect(codes.slice(5)).toEqual(Array(20).fill(Code.ResourceExhausted));

    const err = await client.listDashboards({}).catch((e: unknown) => e);
    expect(failureFrom(err).reason).toBe("RATE_LIMITED");
    expect(errorInfoMetadata(err)).toEqual({ policy: "failed-auth" });
    expect(ConnectError.from(err).metadata.get("ratelimit-policy")).toBe("5;w=60");

    // A valid token from the same address is served: only failures are throttled. The 20 refused
    // attempts were decided from memory, never counted again (nor sent to Redis).
    const valid = bearer(await callerToken({ org: "org-victim", admin: true }));
    expect((await client.listDashboards({}, valid)).dashboards).toEqual([]);
    const keys = await redis.keys(`{${prefix}:failed-auth:*`);
    expect(keys).toHaveLength(1);
    expect(await redis.get(keys[0]!)).toBe("5");
  });
});
