import { context, propagation, trace } from "@opentelemetry/api";
import type { TracingConfig } from "../config/config.js";
import type { Logger } from "../log/logger.js";
import { setTracing } from "./spans.js";

export interface Tracing {
  /** Exports what is still queued (bounded by the export timeout), then stops tracing. */
  shutdown(): Promise<void>;
}

const OFF: Tracing = { shutdown: () => Promise.resolve() };

/**
 * Starts the OpenTelemetry SDK when the configuration turns tracing on. When it is off the SDK and
 * its exporter are not even loaded (hence the dynamic imports): the API's no-op tracer stays in place
 * and the span helpers short-circuit, so an untraced replica pays nothing for the feature.
 */
export async function startTracing(config: TracingConfig, log: Logger): Promise<Tracing> {
  if (!config.enabled) return OFF;
  const [sdk, { AsyncLocalStorageContextManager }, { W3CTraceContextPropagator }, resources, exporterModule] =
    await Promise.all([
      import("@opentelemetry/sdk-trace"),
      import("@opentelemetry/context-async-hooks"),
      import("@opentelemetry/core"),
      import("@opentelemetry/resources"),
      config.exporter.protocol === "http/json"
        ? import("@opentelemetry/exporter-trace-otlp-http")
        : import("@opentelemetry/exporter-trace-otlp-proto"),
    ]);
  const exporter = new exporterModule.OTLPTraceExporter({
    url: config.exporter.url,
    headers: config.exporter.headers,
    timeoutMillis: config.exporter.timeoutMs,
    // The exporter's CompressionAlgorithm enum has exactly these string values.
    compression: config.exporter.compression as never,
  });
  const ratio = new sdk.TraceIdRatioBasedSampler(config.sampler.ratio);
  const root = {
    always_on: new sdk.AlwaysOnSampler(),
    always_off: new sdk.AlwaysOffSampler(),
    traceidratio: ratio,
    parentbased_always_on: new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() }),
    parentbased_always_off: new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() }),
    parentbased_traceidratio: new sdk.ParentBasedSampler({ root: ratio }),
  }[config.sampler.name];
  const provider = new sdk.TracerProvider({
    sampler: root,
    resource: resources
      .defaultResource()
      .merge(resources.resourceFromAttributes({ ...config.resourceAttributes, "service.name": config.serviceName })),
    spanProcessors: [
      new sdk.BatchSpanProcessor({
        exporter,
        scheduledDelayMillis: config.batch.scheduleDelayMs,
        exportTimeoutMillis: config.batch.exportTimeoutMs,
        maxQueueSize: config.batch.maxQueueSize,
        maxExportBatchSize: config.batch.maxExportBatchSize,
      }),
    ],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  setTracing(true);
  // The URL may carry credentials in its user part; the headers certainly may: neither is logged.
  log.info(
    { endpoint: new URL(config.exporter.url).origin, protocol: config.exporter.protocol, sampler: config.sampler.name },
    "tracing: exporting OpenTelemetry spans over OTLP/HTTP",
  );
  return {
    async shutdown() {
      setTracing(false);
      await provider.shutdown().catch((err: unknown) => log.warn({ err }, "tracing: final export failed"));
    },
  };
}
