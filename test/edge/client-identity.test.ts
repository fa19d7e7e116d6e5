import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClientIdentity, forwardedFor } from "../../src/edge/client-identity.js";
import { parseProxyHeader } from "../../src/listener/proxy-protocol.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { spawnServer, type ServerProcess } from "../helpers/process.js";
import { callerToken, TEST_JWT_SECRET } from "../helpers/tokens.js";

describe("client identity (proxy-addr)", () => {
  const behind = createClientIdentity({ trustedProxies: ["10.0.0.0/8"], forwardedHeader: "x-forwarded-for" });
  const direct = createClientIdentity({ trustedProxies: [], forwardedHeader: "x-forwarded-for" });

  it("ignores forwarding headers from a peer it does not trust, so they cannot pick an address", () => {
    expect(direct("203.0.113.9", { "x-forwarded-for": "198.51.100.1" })).toBe("203.0.113.9");
    expect(behind("203.0.113.9", { "x-forwarded-for": "198.51.100.1" })).toBe("203.0.113.9");
  });

  it("behind trusted proxies, takes the right-most address that is not one of them", () => {
    expect(behind("10.0.0.1", { "x-forwarded-for": "198.51.100.1" })).toBe("198.51.100.1");
    // A client that forges entries to the left of what the proxy appended gains nothing.
    expect(behind("10.0.0.1", { "x-forwarded-for": "1.2.3.4, 198.51.100.1" })).toBe("198.51.100.1");
    // Through a chain of trusted proxies.
    expect(behind("10.0.0.1", { "x-forwarded-for": "198.51.100.1, 10.0.0.7" })).toBe("198.51.100.1");
    // Repeated header lines are one list.
    expect(behind("10.0.0.1", { "x-forwarded-for": ["1.2.3.4", "198.51.100.2"] })).toBe("198.51.100.2");
    // No header: the proxy itself.
    expect(behind("10.0.0.1", {})).toBe("10.0.0.1");
  });

  it("never makes a key of what is not an address, and reads IPv4 peers on dual-stack sockets as IPv4", () => {
    expect(behind("10.0.0.1", { "x-forwarded-for": "not-an-ip" })).toBe("10.0.0.1");
    expect(direct("::ffff:203.0.113.9", {})).toBe("203.0.113.9");
  });

  it("reads RFC 7239 Forwarded only when the proxies are said to write it", () => {
    const forwarded = createClientIdentity({ trustedProxies: ["10.0.0.0/8"], forwardedHeader: "forwarded" });
    const headers = {
      forwarded: 'for=198.51.100.3;proto=https, for="[2001:db8::17]:4711"',
      "x-forwarded-for": "6.6.6.6",
    };
    expect(forwarded("10.0.0.1", headers)).toBe("2001:db8::17");
    // A proxy that writes only X-Forwarded-For passes a client's forged Forwarded straight through: ignored.
    expect(behind("10.0.0.1", { forwarded: "for=6.6.6.6", "x-forwarded-for": "198.51.100.4" })).toBe("198.51.100.4");
    expect(forwardedFor('for=192.0.2.43, for=_hidden, for="198.51.100.17:8080"')).toBe(
      "192.0.2.43, _hidden, 198.51.100.17",
    );
  });
});

describe("the PROXY protocol header", () => {
  it("parses version 1 and 2, asks for more bytes while incomplete, and refuses anything else", () => {
    const v1 = Buffer.from("PROXY TCP4 198.51.100.7 10.0.0.1 5000 8080\r\nGET / HTTP/1.1\r\n");
    expect(parseProxyHeader(v1)).toEqual({ kind: "done", length: 44, sourceAddress: "198.51.100.7" });
    expect(parseProxyHeader(v1.subarray(0, 20))).toEqual({ kind: "need-more" });
    expect(parseProxyHeader(Buffer.from("PROXY UNKNOWN\r\n"))).toMatchObject({
      kind: "done",
      sourceAddress: undefined,
    });
    expect(parseProxyHeader(Buffer.from("GET / HTTP/1.1\r\n")).kind).toBe("invalid");
    expect(parseProxyHeader(Buffer.from(`PROXY TCP4 ${"9".repeat(120)}\r\n`)).kind).toBe("invalid");
    const v2 = proxyV2("198.51.100.8");
    expect(parseProxyHeader(Buffer.concat([v2, Buffer.from("PRI")]))).toEqual({
      kind: "done",
      length: v2.length,
      sourceAddress: "198.51.100.8",
    });
    expect(parseProxyHeader(v2.subarray(0, 18))).toEqual({ kind: "need-more" });
  });
});

/** A PROXY protocol v2 header for a TCP4 connection from source. */
function proxyV2(source: string): Buffer {
  const header = Buffer.alloc(16 + 12);
  Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]).copy(header);
  header[12] = 0x21; // version 2, PROXY
  header[13] = 0x11; // TCP over IPv4
  header.writeUInt16BE(12, 14);
  Buffer.from(source.split(".").map(Number)).copy(header, 16);
  Buffer.from([127, 0, 0, 1]).copy(header, 20);
  header.writeUInt16BE(5000, 24);
  header.writeUInt16BE(8080, 26);
  return header;
}

/** One raw HTTP/1.1 request on a connection of its own, optionally after a PROXY header; the status, or "closed". */
function rawCall(port: number, headers: Record<string, string>, prefix?: Buffer): Promise<number | "closed"> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString("latin1")));
    socket.on("error", () => {});
    socket.on("close", () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      resolve(m ? Number(m[1]) : "closed");
    });
    const lines = Object.entries({
      host: "x",
      "content-type": "application/json",
      "content-length": "2",
      connection: "close",
      ...headers,
    })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("");
    socket.write(
      Buffer.concat([
        prefix ?? Buffer.alloc(0),
        Buffer.from(`POST /dashboard.v1.DashboardService/ListDashboards HTTP/1.1\r\n${lines}\r\n{}`),
      ]),
    );
  });
}

const FAILED_AUTH_BUDGET = 3;
const bad = { authorization: "Bearer not.a.token" };

describe("per-address decisions follow the client behind trusted proxies, and only then", () => {
  let db: TestDatabase;
  let trusting: ServerProcess;
  let untrusting: ServerProcess;
  let proxied: ServerProcess;
  beforeAll(async () => {
    db = await createTestDatabase();
    const env = {
      DATABASE_URL: db.url,
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: "info",
      RATE_LIMIT_FAILED_AUTH_PER_MINUTE: String(FAILED_AUTH_BUDGET),
    };
    [trusting, untrusting, proxied] = await Promise.all([
      spawnServer({ ...env, TRUSTED_PROXIES: "127.0.0.1/8" }),
      spawnServer(env),
      spawnServer({ ...env, TRUSTED_PROXIES: "127.0.0.1", PROXY_PROTOCOL: "true" }),
    ]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([trusting?.stop(), untrusting?.stop(), proxied?.stop()]);
    await db?.drop();
  });

  it("TRUSTED_PROXIES: a second forwarded client is judged on its own; the log names each client", async () => {
    const a = { ...bad, "x-forwarded-for": "203.0.113.1" };
    for (let i = 0; i < FAILED_AUTH_BUDGET; i++) expect(await rawCall(trusting.port, a)).toBe(401);
    expect(await rawCall(trusting.port, a)).toBe(429);
    expect(await rawCall(trusting.port, { ...bad, "x-forwarded-for": "203.0.113.2" })).toBe(401);
    // A valid caller behind the same proxy, as the flooding client, is served.
    const token = await callerToken({ org: "org-proxy", admin: true });
    expect(await rawCall(trusting.port, { authorization: `Bearer ${token}`, "x-forwarded-for": "203.0.113.1" })).toBe(
      200,
    );
    await logged(trusting, 6);
    const addresses = callLines(trusting).map((l) => l.clientAddress);
    expect(addresses).toContain("203.0.113.1");
    expect(addresses).toContain("203.0.113.2");
    expect(addresses).not.toContain("127.0.0.1");
  });

  it("without TRUSTED_PROXIES a forged X-Forwarded-For changes nothing: the peer is the client", async () => {
    for (let i = 0; i < FAILED_AUTH_BUDGET; i++) {
      expect(await rawCall(untrusting.port, { ...bad, "x-forwarded-for": `198.51.100.${i + 1}` })).toBe(401);
    }
    expect(await rawCall(untrusting.port, { ...bad, "x-forwarded-for": "198.51.100.200" })).toBe(429);
    await logged(untrusting, FAILED_AUTH_BUDGET + 1);
    expect(callLines(untrusting).every((l) => l.clientAddress === "127.0.0.1")).toBe(true);
  });

  it("PROXY_PROTOCOL: the address the header names is the client, in both versions; no header, no connection", async () => {
    const v1 = (source: string) => Buffer.from(`PROXY TCP4 ${source} 127.0.0.1 5000 8080\r\n`);
    for (let i = 0; i < FAILED_AUTH_BUDGET; i++) expect(await rawCall(proxied.port, bad, v1("198.51.100.7"))).toBe(401);
    expect(await rawCall(proxied.port, bad, v1("198.51.100.7"))).toBe(429);
    expect(await rawCall(proxied.port, bad, proxyV2("198.51.100.7"))).toBe(429);
    expect(await rawCall(proxied.port, bad, proxyV2("198.51.100.8"))).toBe(401);
    expect(await rawCall(proxied.port, bad)).toBe("closed");
    await logged(proxied, FAILED_AUTH_BUDGET + 3);
    const addresses = callLines(proxied).map((l) => l.clientAddress);
    expect(new Set(addresses)).toEqual(new Set(["198.51.100.7", "198.51.100.8"]));
  });
});

/** Waits until the server has logged n call lines (stdout arrives a little after the answers). */
async function logged(server: ServerProcess, n: number): Promise<void> {
  while (callLines(server).length < n) await new Promise((r) => setTimeout(r, 10));
}

function callLines(server: ServerProcess): Record<string, unknown>[] {
  return server.lines.flatMap((line) => {
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      return entry.msg === "call" ? [entry] : [];
    } catch {
      return [];
    }
  });
}
