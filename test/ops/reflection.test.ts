import { Readable } from "node:stream";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const exec = promisify(execFile);

/** The buf CLI from the @bufbuild/buf package, as an operator would run `npx buf curl`. */
async function bufCurl(args: string[]): Promise<string> {
  const { stdout } = await exec(`${ROOT}node_modules/.bin/buf`, ["curl", "--http2-prior-knowledge", ...args], {
    cwd: "/tmp", // no buf.yaml or proto/ around: everything must come from reflection
    timeout: 30_000,
  });
  return stdout;
}

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

const apiMethods = DashboardService.methods.map((m) => `dashboard.v1.DashboardService/${m.name}`);

describe("server reflection through buf curl (no schema file)", () => {
  it("lists the service and every method (reflection v1)", async () => {
    const methods = (await bufCurl(["--list-methods", server.baseUrl])).trim().split("\n");
    expect(methods).toEqual(expect.arrayContaining([...apiMethods, "grpc.health.v1.Health/Check"]));
    const services = (await bufCurl(["--list-services", server.baseUrl])).trim().split("\n");
    expect(services).toContain("dashboard.v1.DashboardService");
  });

  it("lists the methods over reflection v1alpha too", async () => {
    const methods = (await bufCurl(["--list-methods", "--reflect-protocol", "grpc-v1alpha", server.baseUrl]))
      .trim()
      .split("\n");
    expect(methods).toEqual(expect.arrayContaining(apiMethods));
  });

  it("describes the service well enough to call it: buf curl encodes the request and decodes the answer from reflection", async () => {
    const token = await callerToken({ org: "org-reflect", admin: true, sub: "refl" });
    const created = JSON.parse(
      await bufCurl([
        "--protocol",
        "grpc",
        "-H",
        `authorization: Bearer ${token}`,
        "-d",
        JSON.stringify({ tenantId: "t-1", workspaceId: "ws-1", name: "Reflected" }),
        `${server.baseUrl}/dashboard.v1.DashboardService/CreateDashboard`,
      ]),
    ) as { dashboard: { name: string; createdAt: string; organizationId: string } };
    expect(created.dashboard.name).toBe("Reflected");
    expect(created.dashboard.organizationId).toBe("org-reflect");
    // A well-known type from a dependency file, rendered as its JSON form: the imports were served too.
    expect(created.dashboard.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
  });
});

/** The items as a client stream, handed out one by one. */
function streamOf<T>(items: T[]): AsyncIterable<T> {
  return Readable.from(items, { objectMode: true }) as AsyncIterable<T>;
}

describe("server reflection through a generated client", () => {
  type Req = MessageInitShape<typeof ServerReflectionRequestSchema>;
  async function ask(...requests: Req[]) {
    const client = createClient(ServerReflection, createGrpcTransport({ baseUrl: server.baseUrl }));
    const answers = [];
    for await (const a of client.serverReflectionInfo(streamOf(requests))) answers.push(a);
    return answers;
  }

  it("answers a symbol with its file and every file it imports, enough to rebuild the service", async () => {
    const [answer] = await ask({
      messageRequest: { case: "fileContainingSymbol", value: "dashboard.v1.DashboardService.GetDashboard" },
    });
    expect(answer!.messageResponse.case).toBe("fileDescriptorResponse");
    const files = (answer!.messageResponse.value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto.map(
      (b) => fromBinary(FileDescriptorProtoSchema, b),
    );
    expect(files[0]!.name).toBe("dashboard/v1/dashboard_service.proto");
    expect(files.map((f) => f.name)).toEqual(
      expect.arrayContaining(["dashboard/v1/dashboard.proto", "google/protobuf/timestamp.proto"]),
    );
    // Each file after the files it imports, as a FileDescriptorSet must be (protobuf-es's resolver form of
    // createFileRegistry does not order siblings that import each other, as embed_settings.proto and
    // iframe_token.proto, both imported by the service's file, are).
    const byName = new Map(files.map((f) => [f.name, f]));
    const ordered: typeof files = [];
    const place = (name: string) => {
      const file = byName.get(name);
      expect(file, `${name} is in the answer`).toBeDefined();
      if (ordered.includes(file!)) return;
      file!.dependency.forEach(place);
      ordered.push(file!);
    };
    place(files[0]!.name);
    expect(ordered).toHaveLength(files.length);
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
    const service = registry.getService("dashboard.v1.DashboardService");
    expect(service?.methods.map((m) => [m.name, m.input.typeName, m.output.typeName])).toEqual(
      DashboardService.methods.map((m) => [m.name, m.input.typeName, m.output.typeName]),
    );
  });

  it("answers several requests on one stream, by file name and by message, and reports unknown symbols", async () => {
    const answers = await ask(
      { host: "h", messageRequest: { case: "fileByFilename", value: "health/v1/health.proto" } },
      { messageRequest: { case: "fileContainingSymbol", value: "dashboard.v1.Dashboard" } },
      { messageRequest: { case: "fileContainingSymbol", value: "no.such.Symbol" } },
      { messageRequest: { case: "listServices", value: "*" } },
      { messageRequest: { case: "allExtensionNumbersOfType", value: "dashboard.v1.Dashboard" } },
    );
    expect(answers).toHaveLength(5);
    expect(answers[0]!.validHost).toBe("h");
    expect(answers[0]!.originalRequest?.messageRequest).toEqual({
      case: "fileByFilename",
      value: "health/v1/health.proto",
    });
    const first = fromBinary(
      FileDescriptorProtoSchema,
      (answers[0]!.messageResponse.value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto[0]!,
    );
    expect(first.package).toBe("grpc.health.v1");
    const second = fromBinary(
      FileDescriptorProtoSchema,
      (answers[1]!.messageResponse.value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto[0]!,
    );
    expect(second.name).toBe("dashboard/v1/dashboard.proto");
    expect(answers[2]!.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
    const listed = answers[3]!.messageResponse;
    expect(listed.case).toBe("listServicesResponse");
    expect((listed.value as { service: { name: string }[] }).service.map((s) => s.name)).toEqual(
      expect.arrayContaining([
        "dashboard.v1.DashboardService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
      ]),
    );
    expect(answers[4]!.messageResponse).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "dashboard.v1.Dashboard", extensionNumber: [] },
    });
  });
});
