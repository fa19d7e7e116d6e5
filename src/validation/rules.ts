import { invalidArgument, type FieldViolation } from "../errors/service-error.js";

/**
 * Request validation, declared once per request message. The Buf Schema
 * Registry (and so protovalidate's annotations) is out of reach here, so the
 * rules live in this one module instead of in the proto; handlers on every
 * path call `validate(schema, input)` and get a VALIDATION_ERROR listing every
 * bad field, named as in the proto.
 */

const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
// C0 and C1 controls (this includes NUL, newlines and DEL).
const CONTROL_CHARACTERS = /\p{Cc}/u;

export function isValidId(value: string): boolean {
  return ID_PATTERN.test(value);
}

/** The problem with a value, or none. */
export type Check = (value: unknown) => string | undefined;
/** As Check, but a problem may name a nested field itself (a oneof's member, say). */
type FieldCheck = (value: unknown) => string | FieldViolation | undefined;

/** A tenant, workspace, dashboard or organization id. */
export const id: Check = (v) => {
  if (typeof v !== "string" || v === "") return "is required";
  return isValidId(v) ? undefined : "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -";
};

/** Free text of min..max characters (code points), well-formed and without control characters. */
export const text =
  (min: number, max: number): Check =>
  (v) => {
    if (v === undefined || v === null) return min > 0 ? "is required" : undefined;
    if (typeof v !== "string") return "must be a string";
    if (!v.isWellFormed()) return "must be valid Unicode";
    const length = [...v].length;
    if (length < min) return min === 1 ? "is required" : `must be at least ${min} characters`;
    if (length > max) return `must be at most ${max} characters`;
    if (CONTROL_CHARACTERS.test(v)) return "must not contain control characters";
    if (min > 0 && v.trim() === "") return "must not be blank";
    return undefined;
  };

export const optional =
  (check: Check): Check =>
  (v) =>
    v === undefined ? undefined : check(v);

export const integer =
  (min: number, max: number): Check =>
  (v) => {
    if (typeof v !== "number" || !Number.isSafeInteger(v)) return "must be an integer";
    if (v < min) return `must be at least ${min}`;
    if (v > max) return `must be at most ${max}`;
    return undefined;
  };

/** Maps each input property to the proto field it came from and the check it must pass. */
export type Schema<T> = { [K in keyof T]-?: { field: string; check: FieldCheck } };

export function violationsOf<T extends object>(schema: Schema<T>, input: T): FieldViolation[] {
  const violations: FieldViolation[] = [];
  for (const key of Object.keys(schema) as (keyof T)[]) {
    const { field, check } = schema[key];
    const problem = check(input[key]);
    if (typeof problem === "string") violations.push({ field, description: problem });
    else if (problem) violations.push(problem);
  }
  return violations;
}

/** Throws VALIDATION_ERROR naming every bad field; returns the input typed as valid. */
export function validate<T extends object>(schema: Schema<T>, input: T): T {
  const violations = violationsOf(schema, input);
  if (violations.length > 0) throw invalidArgument(violations);
  return input;
}
