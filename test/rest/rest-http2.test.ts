import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";
import { expectMatchesOpenApi } from "./openapi-validator.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ MAX_REQUEST_BYTES: "1024" });
});
afterAll(() => server.stop());

/** One request over HTTP/2 cleartext (prior knowledge), the way gRPC clients reach this port. */
function h2Request(method: string, path: string, headers: Record<string, string>, body?: string) {
  return new Promise<{ status: number; headers: Headers; body: unknown }>((resolve, reject) => {
    const session = http2.connect(server.baseUrl);
    session.on("error", reject);
    const req = session.request({ ":method": method, ":path": path, ...headers });
    const chunks: Buffer[] = [];
    let status = 0;
    const responseHeaders = new Headers();
    req.on("response", (h) => {
      status = Number(h[":status"]);
      for (const [k, v] of Object.entries(h))
        if (!k.startsWith(":") && v !== undefined) responseHeaders.set(k, String(v));
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      session.close();
      resolve({ status, headers: responseHeaders, body: JSON.parse(Buffer.concat(chunks).toString()) });
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("the REST routes over HTTP/2 on the same port", () => {
  it("create, read and refuse an oversized body, in the same envelope", async () => {
    const auth = { authorization: `Bearer ${await callerToken({ org: "org-rest-h2", admin: true })}` };
    const created = await h2Request(
      "POST",
      "/api/v1/dashboards",
      { ...auth, "content-type": "application/json" },
      JSON.stringify({ tenant_id: "t-h2", workspace_id: "ws-1", name: "Over h2" }),
    );
    expect(created.status).toBe(201);
    expectMatchesOpenApi("POST", "/api/v1/dashboards", created);

    const got = await h2Request("GET", "/api/v1/dashboards/t-h2", auth);
    expect(got.status).toBe(200);
    expect((got.body as { data: { name: string } }).data.name).toBe("Over h2");

    const big = await h2Request(
      "POST",
      "/api/v1/dashboards",
      { ...auth, "content-type": "application/json" },
      JSON.stringify({ tenant_id: "t-big", workspace_id: "w", name: "n", description: "x".repeat(2000) }),
    );
    expect(big.status).toBe(413);
    expectMatchesOpenApi("POST", "/api/v1/dashboards", big);

    const unknown = await h2Request("GET", "/api/v1/nope", auth);
    expect(unknown).toMatchObject({ status: 404, body: { success: false, code: "NOT_FOUND" } });
  });
});
