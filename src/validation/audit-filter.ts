import { ServiceError } from "../errors/service-error.js";

/**
 * ListAuditEvents' `filter`: a small, strict subset of AIP-160, parsed by hand.
 *
 *   filter     = comparison { "AND" comparison }
 *   comparison = "tenant_id" "=" value
 *              | "action" "=" value                   (AUDIT_ACTION_X or X, bare or quoted)
 *              | "occurred_at" (">=" | ">" | "<" | "<=") string   (RFC 3339, double quotes)
 *   value      = string | bare word
 *
 * Nothing else (OR, NOT, "-", ":", parentheses, functions, other fields) is accepted, and each is
 * refused by name rather than ignored, so a filter never means less than it says. A hand-written
 * parser instead of a general AIP-160 library: the subset is tiny, and a grammar we do not
 * implement in SQL is one we must refuse, which is simpler to prove here than to prune from a full
 * expression tree. The parse is linear and bounded: at most MAX_FILTER_BYTES of input (so at most
 * that many tokens) and MAX_FILTER_TERMS comparisons, and it never recurses.
 *
 * The result is plain values; the store turns it into parameters of fixed SQL (no text of the
 * filter ever reaches SQL).
 */

/** UTF-8 bytes: bounds the tokenizer's work and the error messages, whatever the characters. */
export const MAX_FILTER_BYTES = 1024;
/** More than the subset can meaningfully hold (each field once per operator: 6), fewer than an attacker wants. */
export const MAX_FILTER_TERMS = 8;

export type TimeOperator = ">=" | ">" | "<" | "<=";
const TIME_OPERATORS: readonly string[] = [">=", ">", "<", "<="];

export interface AuditFilter {
  tenantId?: string;
  /** The action's short name (IFRAME_TOKEN_MINTED), one of the names the caller passed in. */
  action?: string;
  /** RFC 3339 instants as written (validated), by operator; PostgreSQL reads them at full precision. */
  occurredAt: Partial<Record<TimeOperator, string>>;
}

const ACTION_PREFIX = "AUDIT_ACTION_";
// An id as everywhere else in the API (validation/rules.ts): bare values and tenant ids alike.
const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
// RFC 3339 date-time; at most microseconds, which is what PostgreSQL keeps (more would round silently).
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?([Zz]|([+-])(\d{2}):(\d{2}))$/;
const WORD_CHARACTER = /[A-Za-z0-9_.-]/;
const WHITESPACE = /[ \t\r\n]/;
const UNSUPPORTED_WORDS: Record<string, string> = {
  OR: "OR is not supported: only comparisons joined by AND",
  NOT: "NOT is not supported",
};

type Token =
  | { kind: "word"; text: string; at: number }
  | { kind: "string"; text: string; at: number }
  | { kind: "operator"; text: string; at: number };

/** The filter's one error: INVALID_FILTER with a BadRequest naming `filter`. */
export function invalidFilter(description: string): ServiceError {
  return new ServiceError("INVALID_FILTER", `filter: ${description}`, {
    fieldViolations: [{ field: "filter", description }],
  });
}

/** A short, printable excerpt of input for an error message (the input is already free of control characters). */
const excerpt = (text: string) => JSON.stringify(text.length > 32 ? `${text.slice(0, 32)}…` : text);

function tokenize(filter: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < filter.length) {
    const c = filter[i]!;
    if (WHITESPACE.test(c)) {
      i++;
    } else if (c === '"') {
      const start = i;
      let text = "";
      i++;
      for (;;) {
        if (i >= filter.length) throw invalidFilter(`the string starting at character ${start + 1} is not closed`);
        const d = filter[i]!;
        if (d === '"') break;
        if (d === "\\") {
          const next = filter[i + 1];
          if (next !== '"' && next !== "\\") {
            throw invalidFilter(`only \\" and \\\\ may be escaped in a string (character ${i + 1})`);
          }
          text += next;
          i += 2;
        } else {
          text += d;
          i++;
        }
      }
      i++;
      tokens.push({ kind: "string", text, at: start });
    } else if (c === "<" || c === ">" || c === "!") {
      const two = filter.slice(i, i + 2);
      const text = two === "<=" || two === ">=" || two === "!=" ? two : c;
      if (text === "!") throw invalidFilter(`unexpected "!" at character ${i + 1}`);
      tokens.push({ kind: "operator", text, at: i });
      i += text.length;
    } else if (c === "=" || c === ":") {
      tokens.push({ kind: "operator", text: c, at: i });
      i++;
    } else if (WORD_CHARACTER.test(c)) {
      const start = i;
      while (i < filter.length && WORD_CHARACTER.test(filter[i]!)) i++;
      tokens.push({ kind: "word", text: filter.slice(start, i), at: start });
    } else if (c === "(" || c === ")") {
      throw invalidFilter("parentheses are not supported: only comparisons joined by AND");
    } else {
      throw invalidFilter(`unexpected character ${excerpt(c)} at character ${i + 1}`);
    }
  }
  return tokens;
}

function checkTimestamp(text: string): string | undefined {
  const m = RFC3339.exec(text);
  if (!m) return 'must be an RFC 3339 timestamp such as "2026-01-01T00:00:00Z" (at most 6 fractional digits)';
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  // Dates roll Feb 30 over to March; a date that does not come back unchanged does not exist.
  // (setUTCFullYear, not Date.UTC, which reads years 0 to 99 as 1900 to 1999.)
  const probe = new Date(0);
  probe.setUTCFullYear(year, month - 1, day);
  const dateExists = probe.getUTCFullYear() === year && probe.getUTCMonth() === month - 1 && probe.getUTCDate() === day;
  const offsetOk = m[9] === undefined || (Number(m[10]) <= 23 && Number(m[11]) <= 59);
  if (year < 1 || !dateExists || hour > 23 || minute > 59 || second > 59 || !offsetOk) {
    return `${excerpt(text)} is not a valid RFC 3339 timestamp`;
  }
  return undefined;
}

/**
 * Parses a filter, or throws INVALID_FILTER saying what is wrong and where. `actions` are the
 * short names of the actions the trail records (the store's list), so the parser knows no store.
 * An empty (or all-whitespace) filter is no filter.
 */
export function parseAuditFilter(filter: string, actions: readonly string[]): AuditFilter {
  if (Buffer.byteLength(filter, "utf8") > MAX_FILTER_BYTES) {
    throw invalidFilter(`must be at most ${MAX_FILTER_BYTES} bytes`);
  }
  if (!filter.isWellFormed()) throw invalidFilter("must be valid Unicode");
  const tokens = tokenize(filter);
  // Counted before any comparison is read, so a long chain is refused as a whole, not at its first repeat.
  if (tokens.filter((t) => t.kind === "word" && t.text === "AND").length >= MAX_FILTER_TERMS) {
    throw invalidFilter(`must have at most ${MAX_FILTER_TERMS} comparisons`);
  }
  const result: AuditFilter = { occurredAt: {} };
  let i = 0;
  let terms = 0;
  const describe = (t: Token | undefined) => (t ? `${excerpt(t.text)} at character ${t.at + 1}` : "the end");
  while (i < tokens.length) {
    if (terms > 0) {
      const joiner = tokens[i]!;
      if (joiner.kind === "word" && UNSUPPORTED_WORDS[joiner.text])
        throw invalidFilter(UNSUPPORTED_WORDS[joiner.text]!);
      if (joiner.kind !== "word" || joiner.text !== "AND") {
        throw invalidFilter(`expected AND between comparisons, found ${describe(joiner)}`);
      }
      i++;
    }
    terms++;
    const [field, operator, value] = [tokens[i], tokens[i + 1], tokens[i + 2]];
    i += 3;
    if (field?.kind !== "word" || field.text === "AND") {
      throw invalidFilter(`expected a field name, found ${describe(field)}`);
    }
    if (UNSUPPORTED_WORDS[field.text]) throw invalidFilter(UNSUPPORTED_WORDS[field.text]!);
    if (operator?.kind !== "operator") throw invalidFilter(`expected an operator after ${describe(field)}`);
    if (value === undefined || value.kind === "operator") {
      throw invalidFilter(`expected a value after ${describe(operator)}`);
    }
    if (operator.text === ":") throw invalidFilter("the has operator (:) is not supported");
    if (operator.text === "!=") throw invalidFilter("!= is not supported");
    applyComparison(result, field.text, operator.text, value, actions);
  }
  return result;
}

function applyComparison(
  result: AuditFilter,
  field: string,
  operator: string,
  value: Token,
  actions: readonly string[],
): void {
  switch (field) {
    case "tenant_id": {
      if (operator !== "=") throw invalidFilter("tenant_id takes only =");
      if (result.tenantId !== undefined) throw invalidFilter("tenant_id may be compared only once");
      if (!ID_PATTERN.test(value.text)) {
        throw invalidFilter("tenant_id must be compared with 1 to 128 characters of A-Z a-z 0-9 . _ : -");
      }
      result.tenantId = value.text;
      return;
    }
    case "action": {
      if (operator !== "=") throw invalidFilter("action takes only =");
      if (result.action !== undefined) throw invalidFilter("action may be compared only once");
      const name = value.text.startsWith(ACTION_PREFIX) ? value.text.slice(ACTION_PREFIX.length) : value.text;
      if (!actions.includes(name)) {
        throw invalidFilter(`${excerpt(value.text)} is not an action (one of ${ACTION_PREFIX}${actions.join(", ")})`);
      }
      result.action = name;
      return;
    }
    case "occurred_at": {
      if (!TIME_OPERATORS.includes(operator)) throw invalidFilter("occurred_at takes >=, >, < or <=");
      const op = operator as TimeOperator;
      if (result.occurredAt[op] !== undefined) throw invalidFilter(`occurred_at ${op} may appear only once`);
      if (value.kind !== "string")
        throw invalidFilter("occurred_at must be compared with a timestamp in double quotes");
      const problem = checkTimestamp(value.text);
      if (problem) throw invalidFilter(`occurred_at ${problem}`);
      result.occurredAt[op] = value.text;
      return;
    }
    default:
      throw invalidFilter(`${excerpt(field)} is not a field the filter knows (tenant_id, action, occurred_at)`);
  }
}

/**
 * The filter in one canonical text, for binding page tokens to it: two filters that select the
 * same rows by the same comparisons bind alike, whatever their spacing, order or quoting.
 */
export function canonicalAuditFilter(f: AuditFilter): string {
  const time = (Object.keys(f.occurredAt) as TimeOperator[]).sort().map((op) => [op, f.occurredAt[op]]);
  return JSON.stringify([f.tenantId ?? null, f.action ?? null, time]);
}

export function isEmptyAuditFilter(f: AuditFilter): boolean {
  return f.tenantId === undefined && f.action === undefined && Object.keys(f.occurredAt).length === 0;
}
