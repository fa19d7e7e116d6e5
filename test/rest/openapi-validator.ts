import { Ajv2020 } from "ajv/dist/2020.js";
import formats from "ajv-formats";
import { expect } from "vitest";
import { openApiDocument } from "../../src/rest/openapi.js";

// ajv-formats is CommonJS; under NodeNext its default export arrives wrapped.
const addFormats = ((formats as unknown as { default?: typeof formats }).default ?? formats) as unknown as (
  ajv: Ajv2020,
) => void;

const DOC_ID = "https://dashboard-service.test/openapi.json";
const doc = openApiDocument as unknown as OpenApi;

interface ResponseObject {
  $ref?: string;
  headers?: Record<string, { required?: boolean }>;
  content?: Record<string, { schema: object }>;
}
interface OpenApi {
  paths: Record<string, Record<string, { responses: Record<string, ResponseObject> }>>;
  components: { responses: Record<string, ResponseObject> };
}

// OpenAPI 3.1 schemas are JSON Schema 2020-12; the document is registered whole so its $refs resolve.
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(openApiDocument, DOC_ID);

/** Which documented path template a concrete request path is, if any. */
export function templateOf(method: string, path: string): string | undefined {
  const p = path.split("?")[0]!;
  if (p === "/api/v1/dashboards" || p === "/api/v1/openapi.json") return p;
  if (p === "/api/v1/dashboards/iframe-token" && method === "POST") return p;
  if (/^\/api\/v1\/dashboards\/[^/]+$/.test(p)) return "/api/v1/dashboards/{tenant_id}";
  return undefined;
}

/** Every (template, method, status) an answer was checked for, so a test can assert coverage. */
export const observed = new Set<string>();

const pointer = (...parts: string[]) =>
  "#/" + parts.map((p) => p.replaceAll("~", "~0").replaceAll("/", "~1")).join("/");

/**
 * Asserts that a real answer is one the OpenAPI document describes: the status
 * is documented for the operation, required headers are present and the body
 * validates against the response schema. Unknown routes must be the error envelope.
 */
export function expectMatchesOpenApi(
  method: string,
  path: string,
  answer: { status: number; headers: Headers; body: unknown },
): void {
  const template = templateOf(method, path);
  const operation = template ? doc.paths[template]?.[method.toLowerCase()] : undefined;
  if (!template || !operation) {
    expect(answer.status, `${method} ${path} is not a documented operation`).toBe(404);
    validate(pointer("components", "schemas", "ErrorEnvelope"), answer.body);
    return;
  }
  const status = String(answer.status);
  let response = operation.responses[status];
  expect(response, `${method} ${template} answered ${status}, which the document does not list`).toBeDefined();
  let schemaPointer = pointer(
    "paths",
    template,
    method.toLowerCase(),
    "responses",
    status,
    "content",
    "application/json",
    "schema",
  );
  if (response!.$ref) {
    const name = response!.$ref.split("/").at(-1)!;
    response = doc.components.responses[name];
    schemaPointer = pointer("components", "responses", name, "content", "application/json", "schema");
  }
  for (const [header, spec] of Object.entries(response!.headers ?? {})) {
    if (spec.required)
      expect(answer.headers.get(header), `${header} on ${method} ${template} ${status}`).not.toBeNull();
  }
  validate(schemaPointer, answer.body);
  observed.add(`${method} ${template} ${status}`);
}

function validate(schemaPointer: string, body: unknown): void {
  const check = ajv.getSchema(`${DOC_ID}${schemaPointer}`);
  expect(check, `no schema at ${schemaPointer}`).toBeDefined();
  const ok = check!(body);
  expect(ok, `${schemaPointer}: ${ajv.errorsText(check!.errors)}\n${JSON.stringify(body)}`).toBe(true);
}
