import { reasonDefinition } from "../errors/registry.js";
import type { ServiceError } from "../errors/service-error.js";
import type { HeaderMap } from "../edge/http-types.js";
import { failure, type RestResponse } from "./envelope.js";

/**
 * An error as the guide's error envelope: the status and the reason from the
 * registry (so a REST 409 is never ambiguous: its code field names the
 * reason), field violations named as the REST route names its fields, and
 * WWW-Authenticate where the registry says the answer challenges.
 */
export function restErrorResponse(err: ServiceError, fieldName: (field: string) => string = (f) => f): RestResponse {
  const definition = reasonDefinition(err.reason);
  const headers: HeaderMap = {};
  if (definition.challenge) headers["www-authenticate"] = 'Bearer realm="dashboard-service"';
  return failure(definition.httpStatus, err.reason, messageOf(err, fieldName), headers);
}

function messageOf(err: ServiceError, fieldName: (field: string) => string): string {
  const violations = err.details.fieldViolations;
  if (!violations?.length) return err.message;
  return violations.map((v) => `${fieldName(v.field)}: ${v.description}`).join("; ");
}
