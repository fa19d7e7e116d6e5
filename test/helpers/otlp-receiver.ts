import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A span as an OTLP/HTTP JSON export request carries it, with its attributes flattened. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  /** 1 internal, 2 server, 3 client (OTLP's SpanKind numbers). */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  links: { traceId: string; spanId: string }[];
  status: number;
  startNs: bigint;
  endNs: bigint;
  resource: Record<string, string | number | boolean>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
type OtlpAttributes = { key: string; value: OtlpValue }[] | undefined;

/**
 * An OTLP/HTTP trace receiver (http/json) on a loopback port, in the test's process: it keeps every
 * span it is sent and every request body as received, so a test can wait for spans and grep the raw bytes.
 */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Each export request's body, verbatim. */
  readonly bodies: string[] = [];
  private readonly events = new EventEmitter();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<OtlpReceiver> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const receiver = new OtlpReceiver(server, `http://127.0.0.1:${port}`);
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        receiver.accept(req.url ?? "", req.headers["content-type"] ?? "", Buffer.concat(chunks).toString("utf8"));
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    return receiver;
  }

  /** Resolves once predicate holds for the spans received so far (checked on each export, not on a timer). */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean): Promise<void> {
    if (predicate(this.spans)) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!predicate(this.spans)) return;
        this.events.off("spans", check);
        resolve();
      };
      this.events.on("spans", check);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(path: string, contentType: string, body: string): void {
    this.bodies.push(body);
    if (path !== "/v1/traces" || !contentType.startsWith("application/json")) {
      throw new Error(`unexpected export: ${path} ${contentType}`);
    }
    const request = JSON.parse(body) as {
      resourceSpans?: {
        resource?: { attributes?: OtlpAttributes };
        scopeSpans?: {
          spans?: {
            traceId: string;
            spanId: string;
            parentSpanId?: string;
            name: string;
            kind: number;
            attributes?: OtlpAttributes;
            links?: { traceId: string; spanId: string }[];
            status?: { code?: number };
            startTimeUnixNano: string | number;
            endTimeUnixNano: string | number;
          }[];
        }[];
      }[];
    };
    for (const rs of request.resourceSpans ?? []) {
      const resource = flatten(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId || undefined,
            name: s.name,
            kind: s.kind,
            attributes: flatten(s.attributes),
            links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
            status: s.status?.code ?? 0,
            startNs: BigInt(s.startTimeUnixNano),
            endNs: BigInt(s.endTimeUnixNano),
            resource,
          });
        }
      }
    }
    this.events.emit("spans");
  }
}

function flatten(attributes: OtlpAttributes): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of attributes ?? []) {
    out[key] =
      value.stringValue ??
      (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
      value.boolValue ??
      value.doubleValue ??
      JSON.stringify(value);
  }
  return out;
}

/** One trace as an indented text tree, children in start order: what `npm run trace:sample` prints. */
export function renderTrace(spans: ReceivedSpan[], traceId: string, linked: ReceivedSpan[] = []): string {
  const inTrace = spans.filter((s) => s.traceId === traceId);
  const ids = new Set(inTrace.map((s) => s.spanId));
  const start = inTrace.reduce((min, s) => (s.startNs < min ? s.startNs : min), inTrace[0]?.startNs ?? 0n);
  const lines: string[] = [];
  const kinds = ["unspecified", "internal", "server", "client", "producer", "consumer"];
  const describe = (s: ReceivedSpan, depth: number) => {
    const attrs = Object.entries(s.attributes)
      .map(([k, v]) => `${k}=${typeof v === "string" ? JSON.stringify(v) : String(v)}`)
      .join(" ");
    const ms = (ns: bigint) => (Number(ns) / 1e6).toFixed(1);
    lines.push(
      `${"  ".repeat(depth)}${depth === 0 ? "" : "└─ "}${s.name} [${kinds[s.kind] ?? s.kind}] +${ms(s.startNs - start)}ms ${ms(s.endNs - s.startNs)}ms${s.status === 2 ? " ERROR" : ""}`,
    );
    if (attrs) lines.push(`${"  ".repeat(depth)}${depth === 0 ? "   " : "      "}${attrs}`);
    for (const child of inTrace
      .filter((c) => c.parentSpanId === s.spanId)
      .sort((a, b) => Number(a.startNs - b.startNs)))
      describe(child, depth + 1);
  };
  const roots = inTrace.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId));
  lines.push(`trace ${traceId}`);
  for (const root of roots) {
    if (root.parentSpanId) lines.push(`(parent span ${root.parentSpanId}: the caller's)`);
    describe(root, 0);
  }
  for (const batch of linked) {
    lines.push("", `linked trace ${batch.traceId} (links to ${batch.links.length} call(s))`);
    const sub = renderTrace(spans, batch.traceId).split("\n").slice(1);
    lines.push(...sub);
  }
  return lines.join("\n");
}
