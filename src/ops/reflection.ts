import { toBinary, type DescFile, type DescMessage } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  ServerReflection as ServerReflectionV1,
  type ServerReflectionRequest,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1Alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ServerReflectionResponseSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";

type ServiceDesc = { typeName: string; file: DescFile };
type ResponseInit = Omit<MessageInitShape<typeof ServerReflectionResponseSchema>, "$typeName">;

/** gRPC status codes carried inside ErrorResponse (the stream itself stays OK). */
const NOT_FOUND = 5;

/**
 * What reflection knows: the files of the served services and, transitively,
 * everything they import, indexed by file name and by every fully-qualified
 * symbol they declare (messages, fields, enums, values, services, methods,
 * extensions). Built once from the descriptors protoc-gen-es embeds in gen/,
 * so it always matches what the server actually speaks.
 */
export class DescriptorIndex {
  readonly serviceNames: string[];
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly extensionsOf = new Map<string, Map<number, DescFile>>();
  private readonly encoded = new Map<string, Uint8Array>();

  constructor(services: readonly ServiceDesc[]) {
    this.serviceNames = services.map((s) => s.typeName).sort();
    for (const s of services) this.addFile(s.file);
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    for (const dep of file.dependencies) this.addFile(dep);
    const addMessage = (m: DescMessage) => {
      this.symbols.set(m.typeName, file);
      for (const f of m.fields) this.symbols.set(`${m.typeName}.${f.name}`, file);
      for (const o of m.oneofs) this.symbols.set(`${m.typeName}.${o.name}`, file);
      for (const e of m.nestedEnums) this.addEnum(e, file);
      for (const x of m.nestedExtensions) this.addExtension(x, file);
      m.nestedMessages.forEach(addMessage);
    };
    file.messages.forEach(addMessage);
    for (const e of file.enums) this.addEnum(e, file);
    for (const x of file.extensions) this.addExtension(x, file);
    for (const s of file.services) {
      this.symbols.set(s.typeName, file);
      for (const m of s.methods) this.symbols.set(`${s.typeName}.${m.name}`, file);
    }
  }

  private addEnum(e: DescFile["enums"][number], file: DescFile): void {
    this.symbols.set(e.typeName, file);
    // Enum values are scoped to the enum's parent (protobuf scoping), e.g. pkg.Message.VALUE.
    const scope = e.typeName.slice(0, e.typeName.lastIndexOf("."));
    for (const v of e.values) this.symbols.set(scope ? `${scope}.${v.name}` : v.name, file);
  }

  private addExtension(x: DescFile["extensions"][number], file: DescFile): void {
    this.symbols.set(x.typeName, file);
    const byNumber = this.extensionsOf.get(x.extendee.typeName) ?? new Map<number, DescFile>();
    byNumber.set(x.number, file);
    this.extensionsOf.set(x.extendee.typeName, byNumber);
  }

  fileByName(name: string): DescFile | undefined {
    return this.files.get(name);
  }

  fileContainingSymbol(symbol: string): DescFile | undefined {
    return this.symbols.get(symbol.replace(/^\./, ""));
  }

  fileContainingExtension(typeName: string, number: number): DescFile | undefined {
    return this.extensionsOf.get(typeName)?.get(number);
  }

  /** Extension numbers of a message type, or undefined when the type is unknown. */
  extensionNumbers(typeName: string): number[] | undefined {
    if (!this.symbols.has(typeName)) return undefined;
    return [...(this.extensionsOf.get(typeName)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /** The file and everything it imports, the file first, each once, serialized. */
  withDependencies(file: DescFile): Uint8Array[] {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const visit = (f: DescFile) => {
      if (seen.has(f.proto.name)) return;
      seen.add(f.proto.name);
      out.push(this.serialized(f));
      f.dependencies.forEach(visit);
    };
    visit(file);
    return out;
  }

  private serialized(file: DescFile): Uint8Array {
    let bytes = this.encoded.get(file.proto.name);
    if (!bytes) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      this.encoded.set(file.proto.name, bytes);
    }
    return bytes;
  }
}

/** Answers one reflection request (v1 and v1alpha share the message shapes). */
export function answerReflection(index: DescriptorIndex, req: ServerReflectionRequest): ResponseInit {
  const files = (file: DescFile | undefined, what: string): ResponseInit["messageResponse"] =>
    file
      ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: index.withDependencies(file) } }
      : { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` } };
  const r = req.messageRequest;
  let messageResponse: ResponseInit["messageResponse"];
  switch (r.case) {
    case "listServices":
      messageResponse = {
        case: "listServicesResponse",
        value: { service: index.serviceNames.map((name) => ({ name })) },
      };
      break;
    case "fileByFilename":
      messageResponse = files(index.fileByName(r.value), `file ${r.value}`);
      break;
    case "fileContainingSymbol":
      messageResponse = files(index.fileContainingSymbol(r.value), `symbol ${r.value}`);
      break;
    case "fileContainingExtension":
      messageResponse = files(
        index.fileContainingExtension(r.value.containingType, r.value.extensionNumber),
        `extension ${r.value.extensionNumber} of ${r.value.containingType}`,
      );
      break;
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbers(r.value);
      messageResponse = numbers
        ? { case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: numbers } }
        : { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `type ${r.value} not found` } };
      break;
    }
    default:
      messageResponse = { case: "errorResponse", value: { errorCode: 3, errorMessage: "empty reflection request" } };
  }
  return { validHost: req.host, originalRequest: req, messageResponse };
}

/** grpc.reflection.v1.ServerReflection: one answer per request on the bidirectional stream. */
export function reflectionV1Impl(index: DescriptorIndex): ServiceImpl<typeof ServerReflectionV1> {
  return {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) yield answerReflection(index, req);
    },
  };
}

/** grpc.reflection.v1alpha.ServerReflection: older clients (grpcurl before 1.8.8, some IDEs) still ask for it. */
export function reflectionV1AlphaImpl(index: DescriptorIndex): ServiceImpl<typeof ServerReflectionV1Alpha> {
  return {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        // Same fields and numbers in both packages; only the type names differ, so re-tag the answer.
        const answer = answerReflection(index, {
          ...req,
          $typeName: "grpc.reflection.v1.ServerReflectionRequest",
        } as never);
        yield { ...answer, originalRequest: req } as never;
      }
    },
  };
}
