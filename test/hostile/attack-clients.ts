import { readFileSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { performance } from "node:perf_hooks";
import { createRegistry, fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";

/**
 * Clients an attacker would write, on real sockets (node:http2, node:net), and
 * a look at the server process's memory from outside it (/proc). Used by
 * memory-bounds.test.ts; nothing here mocks the server.
 */

export const MiB = 1024 * 1024;
export const KiB = 1024;

/** Milliseconds on the test process's monotonic clock. */
export const now = () => performance.now();

// ---------------------------------------------------------------------------------------------
// The server process's memory, as the kernel counts it.

export interface ProcessMemory {
  /** VmRSS: resident now. */
  rssBytes: number;
  /** VmHWM: the most it has been resident since it started, or since resetPeak. */
  peakBytes: number;
}

export function memoryOf(pid: number): ProcessMemory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(match[1]) * 1024;
  };
  return { rssBytes: kib("VmRSS"), peakBytes: kib("VmHWM") };
}

/**
 * Resets the process's VmHWM to its current RSS (Linux ≥ 4.0: "5" into clear_refs), so the next
 * reading of VmHWM is the exact peak since this moment, not a sample. Returns whether the kernel
 * took it; if not, the peak is still an upper bound (it includes the process's start-up).
 */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * Follows one attack's effect on the server's memory: RSS before, the peak while it runs (VmHWM
 * after resetPeak, which the kernel keeps exactly, plus our own samples for the figures) and after.
 */
export class MemoryWatch {
  readonly before: ProcessMemory;
  readonly exactPeak: boolean;
  private sampledPeak: number;
  private last: ProcessMemory;
  /** Set once the process is gone (it exited or was killed while the attack ran). */
  exited = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number) {
    this.before = memoryOf(pid);
    this.exactPeak = resetPeak(pid);
    this.last = this.before;
    this.sampledPeak = this.before.rssBytes;
    // Samples only add detail to the figures; the assertions use VmHWM, which misses nothing.
    this.timer = setInterval(() => this.sample(), 100);
    this.timer.unref();
  }

  /** The process's memory now; its last reading once it is gone. */
  sample(): ProcessMemory {
    if (this.exited) return this.last;
    try {
      this.last = memoryOf(this.pid);
    } catch {
      // A zombie has no VmRSS and a reaped process no /proc entry: either way it is gone.
      this.exited = true;
      this.stop();
      return this.last;
    }
    this.sampledPeak = Math.max(this.sampledPeak, this.last.rssBytes);
    return this.last;
  }

  /** The most the process has been resident since the watch began. */
  peakBytes(): number {
    return Math.max(this.sample().peakBytes, this.sampledPeak);
  }

  /** Growth over the RSS before the attack, at its peak. */
  peakGrowthBytes(): number {
    return this.peakBytes() - this.before.rssBytes;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** RSS before, at the peak and now, in MiB with one decimal, for the figures. */
  figures(): {
    rssBeforeMiB: number;
    rssPeakMiB: number;
    rssPeakGrowthMiB: number;
    rssAfterMiB: number;
    processExited?: true;
  } {
    const after = this.sample();
    return {
      rssBeforeMiB: mib(this.before.rssBytes),
      rssPeakMiB: mib(this.peakBytes()),
      rssPeakGrowthMiB: mib(this.peakGrowthBytes()),
      rssAfterMiB: mib(after.rssBytes),
      ...(this.exited ? { processExited: true as const } : {}),
    };
  }
}

export const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;

// ---------------------------------------------------------------------------------------------
// Waiting for events, never for time: a hang guard ends the wait only when something never came.

/**
 * Resolves true once every promise has settled, or false when the guard runs out first. The guard
 * is a hang guard: on a working server it is never what ends the wait.
 */
export async function allSettleWithin(promises: Promise<unknown>[], guardMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), guardMs);
  });
  try {
    return await Promise.race([Promise.allSettled(promises).then(() => true as const), guard]);
  } finally {
    clearTimeout(timer);
  }
}

/** The promise's value, or undefined if it has not come when the hang guard runs out. */
export async function valueWithin<T>(promise: Promise<T>, guardMs: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), guardMs);
  });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs tasks with at most `concurrency` in flight at once. */
export async function inParallel<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

// ---------------------------------------------------------------------------------------------
// gRPC over node:http2.

/** A gRPC message frame: flags, 4-byte length, payload. */
export function grpcFrame(payload: Uint8Array): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(payload.byteLength, 1);
  return Buffer.concat([prefix, payload]);
}

/**
 * The first `bytes` bytes of a gRPC request whose one message declares `messageLength` bytes: a
 * well-formed start of a body that never finishes.
 */
export function partialGrpcMessage(messageLength: number, bytes: number): Buffer {
  const body = Buffer.alloc(bytes, 0x61);
  body[0] = 0;
  body.writeUInt32BE(messageLength, 1);
  return body;
}

const errorRegistry = createRegistry(ErrorInfoSchema);

/** The ErrorInfo reason in a grpc-status-details-bin value. */
export function reasonIn(detailsBin: string | string[] | undefined): string | undefined {
  if (typeof detailsBin !== "string") return undefined;
  const status = fromBinary(StatusSchema, Buffer.from(detailsBin, "base64"));
  for (const detail of status.details) {
    const message = anyUnpack(detail, errorRegistry);
    if (message?.$typeName === ErrorInfoSchema.typeName) return (message as unknown as { reason: string }).reason;
  }
  return undefined;
}

/** How one HTTP/2 stream ended, as its client saw it. */
export interface StreamOutcome {
  id: number | undefined;
  /** When the client asked for the stream. */
  openedAt: number;
  /** When its HEADERS went out (node's client queues streams past the advertised limit). */
  sentAt: number | undefined;
  /** When response headers came, if they did. */
  answeredAt: number | undefined;
  closedAt: number | undefined;
  httpStatus: number | undefined;
  /** From the headers (trailers-only answer) or the trailers. */
  grpcStatus: number | undefined;
  reason: string | undefined;
  /** Messages received (bytes of DATA), for streams that answer with messages. */
  dataBytes: number;
  /** The RST_STREAM code the stream ended with (0 = NO_ERROR), once closed. */
  rstCode: number | undefined;
  errorCode: string | undefined;
}

export interface TrackedStream {
  /** undefined when the session was already gone. */
  stream: http2.ClientHttp2Stream | undefined;
  outcome: StreamOutcome;
  /** Resolves when the stream closes, whoever closed it. */
  closed: Promise<StreamOutcome>;
  /** Resolves when the first DATA arrives (a watch's first status). */
  firstData: Promise<void>;
}

/**
 * Opens one stream and records what happens to it. `body` is written without ending the stream
 * unless `end` is set: an attacker's body that never finishes.
 */
export function openStream(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer | undefined,
  end = false,
): TrackedStream {
  const outcome: StreamOutcome = {
    id: undefined,
    openedAt: now(),
    sentAt: undefined,
    answeredAt: undefined,
    closedAt: undefined,
    httpStatus: undefined,
    grpcStatus: undefined,
    reason: undefined,
    dataBytes: 0,
    rstCode: undefined,
    errorCode: undefined,
  };
  let stream: http2.ClientHttp2Stream;
  try {
    stream = session.request(headers, { endStream: false });
  } catch (err) {
    // The session is gone (the server closed or died): a stream that was never opened.
    outcome.closedAt = now();
    outcome.errorCode = (err as NodeJS.ErrnoException).code ?? String(err);
    const closed = Promise.resolve(outcome);
    return { stream: undefined, outcome, closed, firstData: closed.then(() => {}) };
  }
  const read = (h: http2.IncomingHttpHeaders) => {
    if (h["grpc-status"] !== undefined) outcome.grpcStatus = Number(h["grpc-status"]);
    outcome.reason = reasonIn(h["grpc-status-details-bin"]) ?? outcome.reason;
  };
  stream.once("ready", () => {
    outcome.id = stream.id;
    outcome.sentAt = now();
  });
  stream.on("response", (h) => {
    outcome.answeredAt = now();
    outcome.httpStatus = Number(h[":status"]);
    read(h);
  });
  stream.on("trailers", read);
  let gotData: () => void = () => {};
  const firstData = new Promise<void>((resolve) => (gotData = resolve));
  stream.on("data", (chunk: Buffer) => {
    outcome.dataBytes += chunk.length;
    gotData();
  });
  stream.on("error", (err: NodeJS.ErrnoException) => (outcome.errorCode = err.code ?? err.message));
  const closed = new Promise<StreamOutcome>((resolve) =>
    stream.once("close", () => {
      outcome.closedAt = now();
      outcome.rstCode = stream.rstCode;
      outcome.id ??= stream.id;
      resolve(outcome);
    }),
  );
  if (body !== undefined) {
    // A refused stream's pending write fails with it; its error is the stream's, recorded above.
    stream.write(body, () => {});
  }
  if (end) stream.end();
  return { stream, outcome, closed, firstData };
}

/** The gRPC headers of a POST to an RPC path. */
export function grpcHeaders(path: string, extra: http2.OutgoingHttpHeaders = {}): http2.OutgoingHttpHeaders {
  return { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...extra };
}

export interface Http2Connection {
  session: http2.ClientHttp2Session;
  remoteSettings: Promise<http2.Settings>;
  /** The server's GOAWAY, when it sends one. */
  goaway: Promise<{ code: number; lastStreamId: number; at: number }>;
  /** When the session closed. */
  closed: Promise<number>;
}

/**
 * An HTTP/2 session (h2c, prior knowledge), returned before it has even connected: streams asked
 * for now go out together with the preface, before the server's SETTINGS can arrive. Until they do,
 * node's client assumes `peerMaxConcurrentStreams`, so a high one sends a whole burst the way an
 * attacker ignoring the advertised limit would.
 */
export function connectHttp2(baseUrl: string, options: http2.ClientSessionOptions = {}): Http2Connection {
  const session = http2.connect(baseUrl, options);
  session.on("error", () => {});
  const remoteSettings = new Promise<http2.Settings>((resolve) => session.once("remoteSettings", resolve));
  const goaway = new Promise<{ code: number; lastStreamId: number; at: number }>((resolve) =>
    session.once("goaway", (code: number, lastStreamId: number) => resolve({ code, lastStreamId, at: now() })),
  );
  const closed = new Promise<number>((resolve) => session.once("close", () => resolve(now())));
  return { session, remoteSettings, goaway, closed };
}

// ---------------------------------------------------------------------------------------------
// Raw sockets: HTTP/2 sessions that say nothing after their preface, and HTTP/1.1 clients that
// stall or trickle.

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** An empty SETTINGS frame: length 0, type 4, no flags, stream 0. */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
const FRAME_GOAWAY = 7;

export interface IdleHttp2Outcome {
  startedAt: number;
  closedAt: number;
  /** The GOAWAY the server sent before closing, if it did. */
  goawayCode: number | undefined;
  goawayAt: number | undefined;
  /** Whether the socket closed because we destroyed it (only the cleanup does). */
  closedByUs: boolean;
}

/** Connects, sends the HTTP/2 preface and an empty SETTINGS frame, then nothing; records how it ends. */
export function idleHttp2Session(port: number): {
  socket: net.Socket;
  /** What has happened so far; final once `done` has resolved. */
  outcome: IdleHttp2Outcome;
  done: Promise<IdleHttp2Outcome>;
  destroy(): void;
} {
  const outcome: IdleHttp2Outcome = {
    startedAt: now(),
    closedAt: NaN,
    goawayCode: undefined,
    goawayAt: undefined,
    closedByUs: false,
  };
  const socket = net.connect(port, "127.0.0.1", () => socket.write(Buffer.concat([HTTP2_PREFACE, EMPTY_SETTINGS])));
  let received = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    // Frames: 3-byte length, type, flags, 4-byte stream id, payload.
    while (received.length >= 9) {
      const length = received.readUIntBE(0, 3);
      if (received.length < 9 + length) break;
      const type = received[3];
      if (type === FRAME_GOAWAY && outcome.goawayAt === undefined) {
        outcome.goawayAt = now();
        outcome.goawayCode = received.readUInt32BE(9 + 4);
      }
      received = received.subarray(9 + length);
    }
  });
  socket.on("error", () => {});
  const done = new Promise<IdleHttp2Outcome>((resolve) =>
    socket.once("close", () => {
      outcome.closedAt = now();
      resolve(outcome);
    }),
  );
  const destroy = () => {
    if (Number.isNaN(outcome.closedAt)) outcome.closedByUs = true;
    socket.destroy();
  };
  return { socket, outcome, done, destroy };
}

export interface Http1Outcome {
  startedAt: number;
  /** When the request's headers were complete on the wire (for body clients). */
  headersSentAt: number | undefined;
  closedAt: number;
  /** The status of the first answer the server sent, if any, and when it came. */
  status: number | undefined;
  answeredAt: number | undefined;
  /** How many answers came (a keep-alive client makes one request). */
  answers: number;
  /** Whether the socket closed because we destroyed it (only the cleanup does). */
  closedByUs: boolean;
  /** Whether the server ended or reset the connection. */
  closedByServer: boolean;
  bytesSent: number;
}

export interface Http1Client {
  socket: net.Socket;
  /** What has happened so far; final once `done` has resolved. */
  outcome: Http1Outcome;
  done: Promise<Http1Outcome>;
  /** The cleanup's way out: records that we, not the server, closed it. */
  destroy(): void;
}

/**
 * A raw HTTP/1.1 connection. `script` runs once connected and writes what the attacker sends; the
 * connection is never ended by us: the outcome says how the server ended it.
 */
export function http1Client(
  port: number,
  script: (socket: net.Socket, outcome: Http1Outcome) => void,
  onAnswer?: (socket: net.Socket, outcome: Http1Outcome) => void,
): Http1Client {
  const outcome: Http1Outcome = {
    startedAt: now(),
    headersSentAt: undefined,
    closedAt: NaN,
    status: undefined,
    answeredAt: undefined,
    answers: 0,
    closedByUs: false,
    closedByServer: false,
    bytesSent: 0,
  };
  const socket = net.connect(port, "127.0.0.1", () => script(socket, outcome));
  let text = "";
  socket.on("data", (chunk: Buffer) => {
    text += chunk.toString("latin1");
    for (let m; (m = /^HTTP\/1\.1 (\d{3})[^\r\n]*\r\n/.exec(text));) {
      outcome.status ??= Number(m[1]);
      outcome.answeredAt ??= now();
      outcome.answers++;
      // Every answer in these tests is headers only or a small body; drop what was seen of it.
      const headEnd = text.indexOf("\r\n\r\n");
      if (headEnd < 0) break;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, headEnd))?.[1] ?? 0);
      text = text.slice(headEnd + 4 + length);
      onAnswer?.(socket, outcome);
    }
    if (text.length > 64 * KiB) text = text.slice(-1024);
  });
  socket.on("end", () => (outcome.closedByServer = true));
  socket.on("error", () => {
    if (!outcome.closedByUs) outcome.closedByServer = true;
  });
  const done = new Promise<Http1Outcome>((resolve) =>
    socket.once("close", () => {
      outcome.closedAt = now();
      resolve(outcome);
    }),
  );
  const destroy = () => {
    if (Number.isNaN(outcome.closedAt)) outcome.closedByUs = true;
    socket.destroy();
  };
  return { socket, outcome, done, destroy };
}

/** Writes `text` one byte every `everyMs`, at most its length in bytes; stops once the socket is gone. */
export function trickle(socket: net.Socket, outcome: Http1Outcome, text: string, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || !socket.writable || i >= text.length) {
      clearInterval(timer);
      return;
    }
    socket.write(text[i]!);
    outcome.bytesSent++;
    i++;
  }, everyMs);
  socket.once("close", () => clearInterval(timer));
}
