import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Deadline } from "../../src/call/deadline.js";
import { BodyBudget } from "../../src/edge/body-budget.js";
import { readBody } from "../../src/edge/body.js";
import { Exchange } from "../../src/edge/exchange.js";

/**
 * readBody takes an HTTP/1.1 body that has all arrived from the request's buffer at once, and waits
 * for one still arriving with listeners. Both ways must give the same bytes, the same refusals and
 * the same accounting; each case below runs both, over a real socket, and checks which way it took.
 */
type Outcome = {
  bytes?: string;
  reason?: string;
  complete: boolean;
  /** readBody answered (or refused) at once, with no promise. */
  atOnce?: boolean;
  held: number;
  heldAfter: number;
};

let server: http.Server;
let port: number;
const outcomes: Outcome[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const waitForBody = req.headers["x-wait"] === "yes";
    const run = async () => {
      // Waiting for the parser's turn leaves a body sent with its headers complete; not waiting leaves it arriving.
      if (waitForBody) await new Promise((resolve) => setImmediate(resolve));
      const complete = req.complete;
      const budget = new BodyBudget({ maxBytes: 1 << 20, maxUnauthenticatedBytes: 1 << 20 });
      const x = new Exchange(req, res, { path: "/", query: "", authority: undefined }, "id", "peer", budget);
      const deadline = new Deadline(10_000);
      const outcome: Outcome = { complete, held: 0, heldAfter: 0 };
      try {
        const max = Number(req.headers["x-max"]);
        const read = readBody(x, max, deadline, true);
        outcome.atOnce = !(read instanceof Promise);
        outcome.bytes = (await read).toString();
      } catch (err) {
        outcome.atOnce ??= true;
        outcome.reason = (err as { reason?: string }).reason;
      } finally {
        deadline.dispose();
      }
      outcome.held = budget.bytesInUse;
      res.once("close", () => {
        outcome.heldAfter = budget.bytesInUse;
        outcomes.push(outcome);
      });
      res.end(JSON.stringify(outcome));
    };
    run().catch((err: unknown) => res.destroy(err as Error));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** One request on its own connection: headers and body in one write, or the body only once the server asks. */
function send(body: string, o: { max: number; chunked: boolean; wait: boolean }): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const framing = o.chunked ? `transfer-encoding: chunked\r\n` : `content-length: ${Buffer.byteLength(body)}\r\n`;
    const payload = o.chunked ? `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n` : body;
    const head =
      `POST / HTTP/1.1\r\nhost: x\r\nx-max: ${o.max}\r\nx-wait: ${o.wait ? "yes" : "no"}\r\n${framing}` +
      (o.wait ? "" : "expect: 100-continue\r\n") +
      "connection: close\r\n\r\n";
    let answer = "";
    socket.setEncoding("utf8");
    socket.on("data", (text: string) => {
      answer += text;
      // Without waiting, the body goes only once the server has taken the request (its 100 Continue).
      if (!o.wait && answer.startsWith("HTTP/1.1 100") && !socket.writableEnded) socket.end(payload);
    });
    socket.on("end", () => {
      const json = answer.slice(answer.lastIndexOf("\r\n\r\n") + 4);
      resolve(JSON.parse(json) as Outcome);
    });
    socket.on("error", reject);
    socket.write(o.wait ? head + payload : head);
  });
}

async function bothWays(body: string, o: { max: number; chunked: boolean }) {
  const atOnce = await send(body, { ...o, wait: true });
  const arriving = await send(body, { ...o, wait: false });
  expect(atOnce.complete).toBe(true);
  expect(arriving.complete).toBe(false);
  // Taken from the buffer, the body (or its refusal) comes back at once; while it arrives, as a promise.
  expect(atOnce.atOnce).toBe(true);
  expect(arriving.atOnce).toBe(false);
  const comparable = ({ bytes, reason, held }: Outcome) => ({ bytes, reason, held });
  expect(comparable(atOnce)).toEqual(comparable(arriving));
  return atOnce;
}

describe("readBody, whether the body has all arrived or is still arriving", () => {
  it("gives the same bytes and holds them against the budget until the request is over", async () => {
    const body = JSON.stringify({ tenantId: "t".repeat(300) });
    const outcome = await bothWays(body, { max: 4096, chunked: false });
    expect(outcome.bytes).toBe(body);
    expect(outcome.held).toBe(Buffer.byteLength(body));
    expect(outcomes.every((o) => o.heldAfter === 0)).toBe(true);
  });

  it("gives the same bytes for a chunked body", async () => {
    const outcome = await bothWays("chunked body", { max: 4096, chunked: true });
    expect(outcome.bytes).toBe("chunked body");
  });

  it("gives the same empty body", async () => {
    const outcome = await bothWays("", { max: 4096, chunked: false });
    expect(outcome.bytes).toBe("");
  });

  it("refuses the same body past its limit the same way, and holds nothing once refused", async () => {
    const outcome = await bothWays("x".repeat(100), { max: 10, chunked: true });
    expect(outcome.reason).toBe("MESSAGE_TOO_LARGE");
    expect(outcome.bytes).toBeUndefined();
    expect(outcomes.every((o) => o.heldAfter === 0)).toBe(true);
  });
});
