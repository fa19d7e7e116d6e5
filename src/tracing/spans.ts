import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanContext,
} from "@opentelemetry/api";

export { SpanKind, SpanStatusCode, type Attributes, type Span, type SpanContext };

/**
 * The spans every layer opens, behind one switch. Until startTracing() has started the SDK, each helper
 * runs its function and nothing else: no span object, no context switch, no attribute built (callers
 * pass attributes as functions for that reason). The switch is process-wide, as OpenTelemetry's own
 * global tracer provider is.
 */
let on = false;

/** Called by startTracing once the SDK is registered, and by its shutdown. */
export function setTracing(enabled: boolean): void {
  on = enabled;
}

export function tracing(): boolean {
  return on;
}

const tracer = () => trace.getTracer("dashboard-service");

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: () => Attributes;
}

/**
 * Runs fn inside a child span of the current one. A thrown error marks the span as failed with its
 * type (the error's reason where it has one), never its message: messages may quote what a caller sent.
 */
export function inSpan<T>(name: string, options: SpanOptions, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!on) return fn(undefined);
  return tracer().startActiveSpan(
    name,
    { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes?.() },
    async (span) => {
      try {
        return await fn(span);
      } catch (err) {
        failed(span, err);
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

/**
 * Runs fn in a span of its own trace, linked to the spans of the calls it works for (a group commit
 * serves many calls at once, and belongs to none of them).
 */
export function inLinkedSpan<T>(
  name: string,
  links: readonly (SpanContext | undefined)[],
  attributes: () => Attributes,
  fn: () => Promise<T>,
): Promise<T> {
  if (!on) return fn();
  const spanLinks: Link[] = [];
  for (const l of links) if (l) spanLinks.push({ context: l });
  return tracer().startActiveSpan(
    name,
    { kind: SpanKind.INTERNAL, root: true, links: spanLinks, attributes: attributes() },
    ROOT_CONTEXT,
    async (span) => {
      try {
        return await fn();
      } catch (err) {
        failed(span, err);
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

/** The span the code runs in now, to link to later; undefined when tracing is off. */
export function currentSpanContext(): SpanContext | undefined {
  if (!on) return undefined;
  return trace.getActiveSpan()?.spanContext();
}

export interface ServerSpan {
  span: Span;
  context: Context;
}

/**
 * Starts the server span of a request, a child of the caller's span when the request carries a W3C
 * traceparent (and tracestate); undefined when tracing is off.
 */
export function startServerSpan(headers: Record<string, string | string[] | undefined>): ServerSpan | undefined {
  if (!on) return undefined;
  const parent = propagation.extract(ROOT_CONTEXT, headers);
  const span = tracer().startSpan("HTTP", { kind: SpanKind.SERVER }, parent);
  return { span, context: trace.setSpan(parent, span) };
}

/** Runs fn with the server span as the current span, so every span opened on the way is its child. */
export function withServerSpan<T>(server: ServerSpan, fn: () => T): T {
  return context.with(server.context, fn);
}

export function failed(span: Span, err: unknown): void {
  const type =
    typeof err === "object" && err !== null && "reason" in err && typeof err.reason === "string"
      ? err.reason
      : err instanceof Error
        ? err.name
        : "Error";
  span.setAttribute("error.type", type);
  span.setStatus({ code: SpanStatusCode.ERROR });
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * With tracing off, the call log still names the caller's trace: the trace id of a well-formed incoming
 * traceparent (there is no span of ours to name).
 */
export function callerTraceId(traceparent: string | string[] | undefined): string | undefined {
  if (typeof traceparent !== "string") return undefined;
  const id = TRACEPARENT.exec(traceparent.trim())?.[1];
  return id === undefined || id === "00000000000000000000000000000000" ? undefined : id;
}
