import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/config.js";
import { tracingConfigFrom } from "../../src/config/tracing-config.js";

const on = (env: Record<string, string>) => {
  const { tracing, problems } = tracingConfigFrom(env);
  expect(problems).toEqual([]);
  if (!tracing.enabled) throw new Error("expected tracing on");
  return tracing;
};

describe("tracing configuration (OTEL_*)", () => {
  it("is off without an OTLP endpoint, whatever else is set, so nothing goes to OTel's default localhost:4318", () => {
    expect(tracingConfigFrom({}).tracing).toEqual({ enabled: false });
    expect(tracingConfigFrom({ OTEL_SERVICE_NAME: "x", OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }).tracing).toEqual({
      enabled: false,
    });
    expect(loadConfig({}).tracing).toEqual({ enabled: false });
  });

  it("is off when OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none, even with an endpoint", () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" };
    expect(tracingConfigFrom({ ...endpoint, OTEL_SDK_DISABLED: "TRUE" }).tracing.enabled).toBe(false);
    expect(tracingConfigFrom({ ...endpoint, OTEL_TRACES_EXPORTER: "none" }).tracing.enabled).toBe(false);
    expect(tracingConfigFrom({ ...endpoint, OTEL_SDK_DISABLED: "false" }).tracing.enabled).toBe(true);
  });

  it("appends /v1/traces to the general endpoint and takes the traces endpoint as given; signal variables win", () => {
    expect(on({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }).exporter.url).toBe(
      "http://collector:4318/v1/traces",
    );
    const t = on({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://general:4318",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://traces.example.com/custom",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_HEADERS: "api-key=general",
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: "api-key=s%3Dcret,x-team=dash",
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "2500",
    });
    expect(t.exporter).toEqual({
      url: "https://traces.example.com/custom",
      protocol: "http/json",
      headers: { "api-key": "s=cret", "x-team": "dash" },
      timeoutMs: 2500,
      compression: "none",
    });
  });

  it("reads the service name, resource attributes, sampler and batch settings, with the specification's defaults", () => {
    const defaults = on({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" });
    expect(defaults.serviceName).toBe("dashboard-service");
    expect(defaults.exporter.protocol).toBe("http/protobuf");
    expect(defaults.sampler).toEqual({ name: "parentbased_always_on", ratio: 1 });
    expect(defaults.batch).toEqual({
      scheduleDelayMs: 5000,
      exportTimeoutMs: 30000,
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
    });
    const t = on({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
      OTEL_RESOURCE_ATTRIBUTES: "service.name=from-resource,deployment.environment.name=staging",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.25",
      OTEL_BSP_SCHEDULE_DELAY: "100",
    });
    expect(t.serviceName).toBe("from-resource");
    expect(t.resourceAttributes["deployment.environment.name"]).toBe("staging");
    expect(t.sampler).toEqual({ name: "parentbased_traceidratio", ratio: 0.25 });
    expect(t.batch.scheduleDelayMs).toBe(100);
    expect(on({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SERVICE_NAME: "svc" }).serviceName).toBe("svc");
  });

  it("stops start-up naming each bad value, without repeating header values (they may be credentials)", () => {
    let problems: string[] = [];
    try {
      loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318",
        OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
        OTEL_TRACES_SAMPLER: "sometimes",
        OTEL_TRACES_SAMPLER_ARG: "2",
        OTEL_EXPORTER_OTLP_HEADERS: "secret-without-equals",
        OTEL_BSP_SCHEDULE_DELAY: "soon",
      });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      problems = (err as ConfigError).problems;
    }
    expect(problems.map((p) => p.slice(0, p.indexOf(":")))).toEqual([
      "OTEL_EXPORTER_OTLP_ENDPOINT",
      "OTEL_EXPORTER_OTLP_PROTOCOL",
      "OTEL_EXPORTER_OTLP_HEADERS",
      "OTEL_BSP_SCHEDULE_DELAY",
      "OTEL_TRACES_SAMPLER",
    ]);
    expect(problems.join(" ")).not.toContain("secret-without-equals");
  });
});
