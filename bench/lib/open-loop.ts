import http from "node:http";
import http2 from "node:http2";
import { quantile } from "./stats.js";

export interface OpenLoopOptions {
  baseUrl: string;
  path: string;
  body: Buffer;
  headers: Record<string, string>;
  /** Requests per second, sent on a steady schedule whatever the answers do. */
  rate: number;
  seconds: number;
  /** Sent at the same rate first and not recorded: connections, JIT and caches settle. */
  warmupSeconds?: number;
  connections: number;
  protocol: "h2" | "h1";
}

export interface OpenLoopResult {
  rps: number;
  sent: number;
  failed: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Latency at a fixed offered rate. Requests go out on a schedule (request i
 * at start + i/rate), and each latency is measured from its scheduled time, so
 * a stall delays and counts every request behind it (no coordinated omission).
 * h2load's --rps sends in bursts, which measures the bursts, not the service.
 */
export async function openLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const send = o.protocol === "h2" ? h2Sender(o) : h1Sender(o);
  if (o.warmupSeconds) await run(send, o.rate, o.warmupSeconds);
  const result = await run(send, o.rate, o.seconds);
  await send.close();
  return result;
}

async function run(send: Sender, rate: number, seconds: number): Promise<OpenLoopResult> {
  const total = Math.round(rate * seconds);
  const latencies: number[] = [];
  let failed = 0;
  let next = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    let done = 0;
    const finish = (scheduled: number, ok: boolean) => {
      if (ok) latencies.push(performance.now() - scheduled);
      else failed++;
      if (++done === total) resolve();
    };
    const tick = () => {
      const now = performance.now();
      while (next < total && start + (next * 1000) / rate <= now) {
        const scheduled = start + (next * 1000) / rate;
        next++;
        send().then(
          (ok) => finish(scheduled, ok),
          () => finish(scheduled, false),
        );
      }
      if (next < total) setTimeout(tick, 1);
    };
    tick();
  });
  const elapsed = (performance.now() - start) / 1000;
  return {
    rps: total / elapsed,
    sent: total,
    failed,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
  };
}

type Sender = (() => Promise<boolean>) & { close(): Promise<void> };

function h2Sender(o: OpenLoopOptions): Sender {
  const sessions = Array.from({ length: o.connections }, () => http2.connect(o.baseUrl));
  let i = 0;
  const send = () =>
    new Promise<boolean>((resolve) => {
      const session = sessions[i++ % sessions.length]!;
      const stream = session.request({ ":method": "POST", ":path": o.path, ...o.headers });
      let status = 0;
      let grpcStatus: string | undefined;
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        grpcStatus = String(h["grpc-status"] ?? "") || undefined;
      });
      stream.on(
        "trailers",
        (t: http2.IncomingHttpHeaders) => (grpcStatus = String(t["grpc-status"] ?? "") || grpcStatus),
      );
      stream.on("data", () => {});
      stream.on("end", () => resolve(status === 200 && (grpcStatus === undefined || grpcStatus === "0")));
      stream.on("error", () => resolve(false));
      stream.end(o.body);
    });
  return Object.assign(send, {
    close: () => {
      for (const s of sessions) s.close();
      return Promise.resolve();
    },
  });
}

function h1Sender(o: OpenLoopOptions): Sender {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections });
  const url = new URL(o.path, o.baseUrl);
  const send = () =>
    new Promise<boolean>((resolve) => {
      const req = http.request(
        url,
        { method: "POST", agent, headers: { ...o.headers, "content-length": o.body.length } },
        (res) => {
          res.on("data", () => {});
          res.on("end", () => resolve(res.statusCode === 200));
        },
      );
      req.on("error", () => resolve(false));
      req.end(o.body);
    });
  return Object.assign(send, {
    close: () => {
      agent.destroy();
      return Promise.resolve();
    },
  });
}
