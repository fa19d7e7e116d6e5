import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";

export interface ErrorShape {
  code: Code;
  reason: string;
  message: string;
  fields: string[];
}

/** Awaits a call that must fail and returns its code, its one ErrorInfo reason and its BadRequest fields. */
export async function failureOf(call: Promise<unknown>): Promise<ErrorShape> {
  let caught: unknown;
  try {
    await call;
  } catch (err) {
    caught = err;
  }
  return failureFrom(caught);
}

/** The code, ErrorInfo reason and BadRequest fields of what a failed call was rejected with. */
export function failureFrom(caught: unknown): ErrorShape {
  expect(caught, "the call was expected to fail").toBeDefined();
  const err = ConnectError.from(caught);
  const infos = err.findDetails(ErrorInfoSchema);
  expect(infos, `exactly one ErrorInfo, in: ${Code[err.code]} ${err.rawMessage}`).toHaveLength(1);
  expect(infos[0]!.domain).toBe("dashboard-service");
  const fields = err.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => v.field));
  return { code: err.code, reason: infos[0]!.reason, message: err.rawMessage, fields };
}

/** "ok", or the ErrorInfo reason the call failed with: for tallying many calls' outcomes. */
export async function outcomeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "ok";
  } catch (err) {
    return failureFrom(err).reason;
  }
}
