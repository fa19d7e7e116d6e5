import { ServiceError } from "../errors/service-error.js";

/**
 * The body as a JSON object. Malformed JSON, or JSON that is not an object, is
 * VALIDATION_ERROR (422), as the guide answers it.
 */
export function parseJsonObject(body: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    throw new ServiceError("VALIDATION_ERROR", "the request body is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ServiceError("VALIDATION_ERROR", "the request body must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}
