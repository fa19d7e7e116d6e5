/**
 * The tracing part of the configuration, read only from the standard OTEL_* variables
 * (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/), so an operator
 * configures this service as any other OpenTelemetry one. Parsed here, once, rather than by the SDK:
 * the SDK is not even loaded when tracing is off, and a bad value stops start-up like any other.
 */
export type TracingConfig = { enabled: false } | EnabledTracing;

export interface EnabledTracing {
  enabled: true;
  /** OTEL_SERVICE_NAME, else service.name from OTEL_RESOURCE_ATTRIBUTES, else "dashboard-service". */
  serviceName: string;
  /** OTEL_RESOURCE_ATTRIBUTES, decoded. */
  resourceAttributes: Record<string, string>;
  exporter: {
    /** The full traces URL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces. */
    url: string;
    protocol: "http/protobuf" | "http/json";
    /** May hold a collector's credentials: never logged. */
    headers: Record<string, string>;
    timeoutMs: number;
    compression: "gzip" | "none";
  };
  sampler: {
    name:
      | "always_on"
      | "always_off"
      | "traceidratio"
      | "parentbased_always_on"
      | "parentbased_always_off"
      | "parentbased_traceidratio";
    /** For the ratio samplers: the share of traces kept, 0–1. */
    ratio: number;
  };
  batch: { scheduleDelayMs: number; exportTimeoutMs: number; maxQueueSize: number; maxExportBatchSize: number };
}

const SAMPLERS = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;

/** Returns the tracing configuration and every problem found (reported with the rest of the configuration's). */
export function tracingConfigFrom(env: Record<string, string | undefined>): {
  tracing: TracingConfig;
  problems: string[];
} {
  const problems: string[] = [];
  const get = (name: string) => {
    const v = env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  };
  // The signal-specific variable wins over the general one, as the specification says.
  const either = (general: string) =>
    get(general.replace("OTEL_EXPORTER_OTLP_", "OTEL_EXPORTER_OTLP_TRACES_")) ?? get(general);
  const tracesEndpoint = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT");
  const disabled = get("OTEL_SDK_DISABLED")?.toLowerCase() === "true";
  const exporterName = get("OTEL_TRACES_EXPORTER")?.toLowerCase() ?? "otlp";
  if (exporterName !== "otlp" && exporterName !== "none") {
    problems.push(`OTEL_TRACES_EXPORTER: must be otlp or none (got "${exporterName}")`);
  }
  // Off unless an endpoint is named: OTel's default of localhost:4318 would send a process's traces
  // somewhere nobody asked for.
  if (disabled || exporterName === "none" || (tracesEndpoint === undefined && endpoint === undefined)) {
    return { tracing: { enabled: false }, problems };
  }

  let url = tracesEndpoint ?? `${endpoint!.replace(/\/+$/, "")}/v1/traces`;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error("not http");
    url = parsed.href;
  } catch {
    problems.push(
      `${tracesEndpoint ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT"}: must be an http:// or https:// URL`,
    );
  }

  const protocol = either("OTEL_EXPORTER_OTLP_PROTOCOL") ?? "http/protobuf";
  if (protocol !== "http/protobuf" && protocol !== "http/json") {
    problems.push(`OTEL_EXPORTER_OTLP_PROTOCOL: must be http/protobuf or http/json (got "${protocol}")`);
  }
  const compression = either("OTEL_EXPORTER_OTLP_COMPRESSION") ?? "none";
  if (compression !== "gzip" && compression !== "none") {
    problems.push(`OTEL_EXPORTER_OTLP_COMPRESSION: must be gzip or none (got "${compression}")`);
  }
  const headers = keyValueList(either("OTEL_EXPORTER_OTLP_HEADERS"), "OTEL_EXPORTER_OTLP_HEADERS", problems);
  const resourceAttributes = keyValueList(get("OTEL_RESOURCE_ATTRIBUTES"), "OTEL_RESOURCE_ATTRIBUTES", problems);

  const number = (name: string, def: number, min: number, max: number) => {
    const raw = name.startsWith("OTEL_EXPORTER_OTLP_") ? either(name) : get(name);
    if (raw === undefined) return def;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) {
      problems.push(`${name}: must be a number from ${min} to ${max} (got "${raw}")`);
      return def;
    }
    return n;
  };
  const timeoutMs = number("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000, 1, 600_000);
  const batch = {
    scheduleDelayMs: number("OTEL_BSP_SCHEDULE_DELAY", 5_000, 0, 600_000),
    exportTimeoutMs: number("OTEL_BSP_EXPORT_TIMEOUT", 30_000, 1, 600_000),
    maxQueueSize: number("OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, 1_000_000),
    maxExportBatchSize: number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1, 1_000_000),
  };
  if (batch.maxExportBatchSize > batch.maxQueueSize) {
    problems.push("OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must not exceed OTEL_BSP_MAX_QUEUE_SIZE");
  }

  const samplerName = (get("OTEL_TRACES_SAMPLER") ?? "parentbased_always_on").toLowerCase();
  if (!(SAMPLERS as readonly string[]).includes(samplerName)) {
    problems.push(`OTEL_TRACES_SAMPLER: must be one of ${SAMPLERS.join(", ")} (got "${samplerName}")`);
  }
  const ratio = samplerName.endsWith("traceidratio") ? number("OTEL_TRACES_SAMPLER_ARG", 1, 0, 1) : 1;

  return {
    tracing: {
      enabled: true,
      serviceName: get("OTEL_SERVICE_NAME") ?? resourceAttributes["service.name"] ?? "dashboard-service",
      resourceAttributes,
      exporter: {
        url,
        protocol: protocol as EnabledTracing["exporter"]["protocol"],
        headers,
        timeoutMs,
        compression: compression as EnabledTracing["exporter"]["compression"],
      },
      sampler: { name: samplerName as EnabledTracing["sampler"]["name"], ratio },
      batch,
    },
    problems,
  };
}

/** The W3C Baggage-like lists OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES use: k=v,k2=v2, percent-encoded. */
function keyValueList(raw: string | undefined, name: string, problems: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const entry of raw.split(",")) {
    if (entry.trim() === "") continue;
    const eq = entry.indexOf("=");
    try {
      if (eq <= 0) throw new Error("no key");
      out[decodeURIComponent(entry.slice(0, eq).trim())] = decodeURIComponent(entry.slice(eq + 1).trim());
    } catch {
      // The entry itself is not repeated: a header's value may be a credential.
      problems.push(`${name}: every entry must be key=value (percent-encoded)`);
      return {};
    }
  }
  return out;
}
