import http2 from "node:http2";
import net from "node:net";
import { gzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { createRegistry } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetDashboardRequestSchema } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";

let server: TestServer;
let token: string;
beforeAll(async () => {
  server = await startTestServer();
  token = await callerToken({ org: "framing", admin: true });
});
afterAll(() => server.stop());

const registry = createRegistry(ErrorInfoSchema);
const PATH = "/dashboard.v1.DashboardService/GetDashboard";

/** One raw gRPC call over HTTP/2: whatever bytes we choose, the status and details we get back. */
async function rawGrpc(body: Buffer, headers: Record<string, string> = {}) {
  const session = http2.connect(server.baseUrl);
  try {
    return await new Promise<{ status: number; message: string; reason: string | undefined }>((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": PATH,
        "content-type": "application/grpc",
        te: "trailers",
        authorization: `Bearer ${token}`,
        ...headers,
      });
      let head: http2.IncomingHttpHeaders = {};
      stream.on("response", (h) => (head = h));
      stream.on("data", () => {});
      const finish = (t: http2.IncomingHttpHeaders) => {
        const all = { ...head, ...t };
        const details = all["grpc-status-details-bin"] as string | undefined;
        const status = details ? fromBinary(StatusSchema, Buffer.from(details, "base64")) : undefined;
        const info = status?.details
          .map((d) => anyUnpack(d, registry))
          .find((m) => m?.$typeName === ErrorInfoSchema.typeName) as { reason: string } | undefined;
        resolve({
          status: Number(all["grpc-status"]),
          message: decodeURIComponent(String(all["grpc-message"] ?? "")),
          reason: info?.reason,
        });
      };
      stream.on("trailers", finish);
      stream.on("end", () => finish({}));
      stream.on("error", reject);
      stream.end(body);
    });
  } finally {
    session.close();
  }
}

const frame = (payload: Buffer, flags = 0, declaredLength = payload.length) => {
  const prefix = Buffer.alloc(5);
  prefix[0] = flags;
  prefix.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([prefix, payload]);
};

async function stillServes(): Promise<void> {
  const message = toBinary(GetDashboardRequestSchema, create(GetDashboardRequestSchema, { tenantId: "nobody" }));
  expect(await rawGrpc(frame(Buffer.from(message)))).toMatchObject({ status: 5, reason: "NOT_FOUND" });
}

describe("broken gRPC framing", () => {
  it("a valid call works, as a control", async () => {
    await stillServes();
  });

  it("a length prefix larger than the body is INVALID_ARGUMENT with an ErrorInfo", async () => {
    const r = await rawGrpc(frame(Buffer.from([0x0a, 0x01, 0x41]), 0, 1000));
    expect(r.status).toBe(3);
    expect(r.reason).toBe("MALFORMED_REQUEST");
    await stillServes();
  });

  it("a truncated prefix and undecodable protobuf are refused with an ErrorInfo", async () => {
    expect((await rawGrpc(Buffer.from([0, 0, 0]))).reason).toBeDefined();
    const garbage = await rawGrpc(frame(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff])));
    expect(garbage.status).toBe(3);
    expect(garbage.reason).toBe("MALFORMED_REQUEST");
    await stillServes();
  });

  it("a message declared larger than the limit is refused before it is read", async () => {
    const r = await rawGrpc(frame(Buffer.alloc(16), 0, 64 * 1024 * 1024));
    expect(r.status).toBe(8);
    expect(r.reason).toBeDefined();
    await stillServes();
  });

  it("a compression bomb is refused without inflating it", async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const before = process.memoryUsage().rss;
    const r = await rawGrpc(frame(bomb, 1), { "grpc-encoding": "gzip" });
    expect([3, 8]).toContain(r.status);
    expect(r.reason).toBeDefined();
    // The server runs in this process: it must not have inflated 64 MiB.
    expect(process.memoryUsage().rss - before).toBeLessThan(48 * 1024 * 1024);
    await stillServes();
  });

  it("gRPC-Web errors raised while decoding carry the ErrorInfo in the trailer frame", async () => {
    const res = await fetch(server.baseUrl + PATH, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", authorization: `Bearer ${token}` },
      body: frame(Buffer.from([0xff, 0xff, 0xff])),
    });
    const body = Buffer.from(await res.arrayBuffer());
    const trailer = body.subarray(body.lastIndexOf(Buffer.from([0x80])) + 5).toString();
    expect(trailer).toMatch(/grpc-status: ?3/);
    const details = /grpc-status-details-bin: ?(\S+)/.exec(trailer)?.[1];
    expect(details).toBeDefined();
    const status = fromBinary(StatusSchema, Buffer.from(details!, "base64"));
    expect((anyUnpack(status.details[0]!, registry) as unknown as { reason: string }).reason).toBe("MALFORMED_REQUEST");
  });
});

describe("broken Connect requests the general adapter answers", () => {
  it("a Connect GET with an undecodable message, or a gzip body that is not gzip, is INVALID_ARGUMENT with an ErrorInfo", async () => {
    const auth = { authorization: `Bearer ${token}` };
    const get = await fetch(`${server.baseUrl}${PATH}?connect=v1&encoding=json&message=%7Bnot-json`, { headers: auth });
    const badGzip = await fetch(server.baseUrl + PATH, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json", "content-encoding": "gzip" },
      body: "definitely not gzip",
    });
    for (const res of [get, badGzip]) {
      expect(res.status).toBe(400);
      const json = (await res.json()) as { code: string; details: { type: string }[] };
      expect(json.code).toBe("invalid_argument");
      expect(json.details.filter((d) => d.type === "google.rpc.ErrorInfo")).toHaveLength(1);
    }
    await stillServes();
  });
});

describe("floods and garbage on the port", () => {
  it("a million-element JSON array is refused, and the server stays up", async () => {
    const body = `{"tenantId":[${"0,".repeat(999_999)}0]}`;
    const res = await fetch(server.baseUrl + PATH, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body,
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    const json = (await res.json()) as { details: { type: string }[] };
    expect(json.details.map((d) => d.type)).toContain("google.rpc.ErrorInfo");
    await stillServes();
  });

  it("10 MiB of headers are refused, and the server stays up", async () => {
    const status = await new Promise<number | string>((resolve) => {
      const socket = net.connect(server.port, "127.0.0.1", () => {
        socket.write(`POST ${PATH} HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(10 * 1024 * 1024)}\r\n\r\n`);
      });
      socket.once("data", (d) => {
        resolve(Number(/^HTTP\/1.1 (\d+)/.exec(d.toString())?.[1]));
        socket.destroy();
      });
      socket.once("error", () => resolve("reset"));
      socket.once("close", () => resolve("closed"));
    });
    expect([431, 400, "reset", "closed"]).toContain(status);
    await stillServes();
  });

  it("raw garbage bytes get the connection closed, and the server stays up", async () => {
    const closed = await new Promise<boolean>((resolve) => {
      const socket = net.connect(server.port, "127.0.0.1", () =>
        socket.write(Buffer.from([0, 1, 2, 255, 254, 13, 10, 13, 10])),
      );
      socket.on("data", () => {});
      socket.once("close", () => resolve(true));
      socket.once("error", () => resolve(true));
    });
    expect(closed).toBe(true);
    await stillServes();
  });

  it("idle and trickling connections do not stop others from being served", async () => {
    const sockets = Array.from({ length: 50 }, () => {
      const s = net.connect(server.port, "127.0.0.1", () => s.write("GET / HTTP/1.1\r\nHost: x\r\n"));
      s.on("error", () => {});
      return s;
    });
    try {
      await stillServes();
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});

describe("MAX_CONNECTIONS", () => {
  let small: TestServer;
  beforeAll(async () => {
    small = await startTestServer({ MAX_CONNECTIONS: "4" });
  });
  afterAll(() => small.stop());

  /** A keep-alive connection that got one answer (so the server counts it), or how it ended. */
  const connection = () =>
    new Promise<{ socket: net.Socket; outcome: "answered" | "closed" }>((resolve) => {
      const socket = net.connect(small.port, "127.0.0.1", () =>
        socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"),
      );
      socket.once("data", () => resolve({ socket, outcome: "answered" }));
      socket.once("error", () => resolve({ socket, outcome: "closed" }));
      socket.once("close", () => resolve({ socket, outcome: "closed" }));
    });

  it("a connection past the limit is closed unanswered; one freed slot serves the next", async () => {
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await connection());
    expect(held.map((c) => c.outcome)).toEqual(["answered", "answered", "answered", "answered"]);

    const extra = [];
    for (let i = 0; i < 5; i++) extra.push((await connection()).outcome);
    expect(extra).toEqual(Array<string>(5).fill("closed"));

    // The server learns of a close asynchronously; a bounded number of tries waits for it, not a timer.
    const freed = held.pop()!.socket;
    await new Promise<void>((resolve) => freed.end(resolve));
    let next: Awaited<ReturnType<typeof connection>> | undefined;
    for (let attempt = 0; attempt < 200 && next?.outcome !== "answered"; attempt++) next = await connection();
    expect(next?.outcome).toBe("answered");
    next?.socket.destroy();
    for (const c of held) c.socket.destroy();
  });
});
