import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ServiceError } from "../../src/errors/service-error.js";
import { AUDIT_ACTIONS } from "../../src/store/audit-store.js";
import {
  canonicalAuditFilter,
  MAX_FILTER_BYTES,
  MAX_FILTER_TERMS,
  parseAuditFilter,
  type AuditFilter,
} from "../../src/validation/audit-filter.js";

const parse = (filter: string) => parseAuditFilter(filter, AUDIT_ACTIONS);

/** The INVALID_FILTER refusal of a filter: its description, with the field checked to be `filter`. */
function refusal(filter: string): string {
  let caught: unknown;
  try {
    parse(filter);
  } catch (err) {
    caught = err;
  }
  expect(caught, `${JSON.stringify(filter.slice(0, 80))} should be refused`).toBeInstanceOf(ServiceError);
  const err = caught as ServiceError;
  expect(err.reason).toBe("INVALID_FILTER");
  expect(err.details.fieldViolations?.map((v) => v.field)).toEqual(["filter"]);
  return err.details.fieldViolations![0]!.description;
}

const RUNS = Number(process.env.PROPERTY_RUNS ?? 300);

describe("ListAuditEvents' filter (a strict AIP-160 subset)", () => {
  it("reads tenant, action (long and short names, bare or quoted) and time bounds joined by AND", () => {
    expect(parse("")).toEqual({ occurredAt: {} });
    expect(parse("  \n\t ")).toEqual({ occurredAt: {} });
    expect(parse('tenant_id = "tenant-1"')).toEqual({ tenantId: "tenant-1", occurredAt: {} });
    expect(parse("tenant_id=tenant-1")).toEqual({ tenantId: "tenant-1", occurredAt: {} });
    expect(parse('tenant_id = "a:b"').tenantId).toBe("a:b");
    expect(parse("action = AUDIT_ACTION_IFRAME_TOKEN_MINTED").action).toBe("IFRAME_TOKEN_MINTED");
    expect(parse("action = TENANT_PURGED").action).toBe("TENANT_PURGED");
    expect(parse('action = "AUDIT_ACTION_DASHBOARD_CREATED"').action).toBe("DASHBOARD_CREATED");
    expect(
      parse(
        'tenant_id = "t" AND action = DASHBOARD_DELETED AND occurred_at >= "2026-01-01T00:00:00Z"' +
          ' AND occurred_at < "2026-01-02T00:00:00.123456+05:30" AND occurred_at > "2025-12-31T23:59:59z"' +
          ' AND occurred_at <= "2026-01-01t12:00:00-01:00"',
      ),
    ).toEqual({
      tenantId: "t",
      action: "DASHBOARD_DELETED",
      occurredAt: {
        ">=": "2026-01-01T00:00:00Z",
        "<": "2026-01-02T00:00:00.123456+05:30",
        ">": "2025-12-31T23:59:59z",
        "<=": "2026-01-01t12:00:00-01:00",
      },
    });
    // An escaped quote ends no string; what it makes is then judged as a tenant id (and refused).
    expect(refusal('tenant_id = "a\\"b"')).toMatch(/1 to 128/);
  });

  it("binds alike what selects alike, whatever the spacing, order or quoting", () => {
    const a = parse('tenant_id="t" AND occurred_at>="2026-01-01T00:00:00Z" AND occurred_at<"2026-02-01T00:00:00Z"');
    const b = parse(
      'occurred_at < "2026-02-01T00:00:00Z"  AND\n action = AUDIT_ACTION_DASHBOARD_CREATED AND tenant_id = t AND occurred_at >= "2026-01-01T00:00:00Z"',
    );
    const withoutAction: AuditFilter = { ...b, action: undefined };
    delete withoutAction.action;
    expect(canonicalAuditFilter(a)).toBe(canonicalAuditFilter(withoutAction));
    expect(canonicalAuditFilter(a)).not.toBe(canonicalAuditFilter(b));
  });

  it.each([
    ['tenant_id = "t" OR tenant_id = "u"', /OR is not supported/],
    ['NOT tenant_id = "t"', /NOT is not supported/],
    ['-tenant_id = "t"', /not a field/],
    ['(tenant_id = "t")', /parentheses/],
    ['tenant_id : "t"', /has operator/],
    ['tenant_id != "t"', /!= is not supported/],
    ['tenant_id > "t"', /only =/],
    ['action >= "DASHBOARD_CREATED"', /only =/],
    ['occurred_at = "2026-01-01T00:00:00Z"', />=, >, < or <=/],
    ['name = "x"', /not a field/],
    ['organization_id = "other-org"', /not a field/],
    ['tenant_id = "t" tenant_id = "u"', /expected AND/],
    ['tenant_id = "t" and action = DASHBOARD_CREATED', /expected AND/],
    ['tenant_id = "t" AND', /expected a field name, found the end/],
    ["AND", /expected a field name/],
    ["tenant_id", /expected an operator/],
    ["tenant_id =", /expected a value/],
    ["tenant_id = =", /expected a value/],
    ['tenant_id = "t" AND tenant_id = "u"', /only once/],
    ["action = DASHBOARD_CREATED AND action = DASHBOARD_DELETED", /only once/],
    ['occurred_at > "2026-01-01T00:00:00Z" AND occurred_at > "2026-02-01T00:00:00Z"', /only once/],
    ["action = DROP_TABLE", /not an action/],
    ["action = AUDIT_ACTION_UNSPECIFIED", /not an action/],
    ['tenant_id = ""', /1 to 128/],
    [`tenant_id = "${"x".repeat(129)}"`, /1 to 128/],
    ['tenant_id = "tenant a"', /1 to 128/],
    ['tenant_id = "unterminated', /not closed/],
    ['tenant_id = "bad \\n escape"', /may be escaped/],
    ["tenant_id = 't'", /unexpected character "'"/],
    ["occurred_at >= 2026-01-01", /double quotes/],
    ['occurred_at >= "yesterday"', /RFC 3339/],
    ['occurred_at >= "2026-01-01"', /RFC 3339/],
    ['occurred_at >= "2026-02-30T00:00:00Z"', /not a valid/],
    ['occurred_at >= "2026-01-01T24:00:00Z"', /not a valid/],
    ['occurred_at >= "2026-01-01T00:00:60Z"', /not a valid/],
    ['occurred_at >= "2026-01-01T00:00:00+24:00"', /not a valid/],
    ['occurred_at >= "0000-01-01T00:00:00Z"', /not a valid/],
    ['occurred_at >= "2026-01-01T00:00:00.1234567Z"', /at most 6 fractional/],
    ['occurred_at >= "2026-01-01T00:00:00"', /RFC 3339/],
    ['tenant_id = "t"; DROP TABLE audit_events; --', /unexpected character ";"/],
    ["tenant_id = \"t' OR '1'='1\"", /1 to 128/],
    ['tenant_id = "t" AND 1=1', /not a field/],
    ['tenant_id = "t\u0000"', /1 to 128/],
    ["tenant_id\u0007 = t", /unexpected character/],
    ["has(tenant_id)", /parentheses/],
    ['tenant_id = "\uD800"', /valid Unicode/],
  ])("refuses %j by name", (filter, pattern) => {
    expect(refusal(filter)).toMatch(pattern);
  });

  it(`bounds the input to ${MAX_FILTER_BYTES} bytes and ${MAX_FILTER_TERMS} comparisons, before reading it`, () => {
    expect(refusal(`tenant_id = "${"a".repeat(MAX_FILTER_BYTES)}"`)).toMatch(/at most 1024 bytes/);
    // Multi-byte characters count as the bytes they are.
    expect(refusal(`tenant_id = "${"é".repeat(MAX_FILTER_BYTES / 2)}"`)).toMatch(/at most 1024 bytes/);
    const many = Array.from({ length: MAX_FILTER_TERMS + 1 }, () => 'tenant_id = "t"').join(" AND ");
    expect(refusal(many)).toMatch(/at most 8 comparisons/);
    // Deep nesting and a megabyte of quotes are refused as fast as anything else.
    const started = performance.now();
    expect(refusal("(".repeat(100_000))).toMatch(/at most 1024 bytes/);
    expect(refusal("(".repeat(500))).toMatch(/parentheses/);
    expect(refusal('"'.repeat(1_000_000))).toMatch(/at most 1024 bytes/);
    expect(refusal('"'.repeat(1023))).toMatch(/not closed|expected/);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it("answers any input with a filter or an INVALID_FILTER naming `filter`, never anything else", () => {
    const piece = fc.constantFrom(
      "tenant_id",
      "action",
      "occurred_at",
      "AND",
      "OR",
      "NOT",
      "=",
      ">=",
      "<",
      ":",
      "!=",
      "(",
      ")",
      '"',
      "\\",
      "'",
      ";",
      "--",
      "DROP TABLE audit_events",
      '"2026-01-01T00:00:00Z"',
      '"tenant-1"',
      "AUDIT_ACTION_IFRAME_TOKEN_MINTED",
      " ",
      "\u0000",
      "\uD800",
      "é",
    );
    const grammarish = fc.array(piece, { maxLength: 60 }).map((parts) => parts.join(" "));
    fc.assert(
      fc.property(fc.oneof(grammarish, fc.string({ unit: "binary", maxLength: 1200 })), (filter) => {
        let result: AuditFilter | undefined;
        try {
          result = parse(filter);
        } catch (err) {
          expect(err).toBeInstanceOf(ServiceError);
          expect((err as ServiceError).reason).toBe("INVALID_FILTER");
          expect((err as ServiceError).details.fieldViolations?.map((v) => v.field)).toEqual(["filter"]);
          // Messages quote at most a short excerpt of the input.
          expect((err as ServiceError).message.length).toBeLessThan(400);
          return;
        }
        // What parses is only ever the three fields, with values of their own shapes.
        expect(Object.keys(result).every((k) => ["tenantId", "action", "occurredAt"].includes(k))).toBe(true);
        if (result.tenantId !== undefined) expect(result.tenantId).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
        if (result.action !== undefined) expect(AUDIT_ACTIONS).toContain(result.action);
      }),
      { numRuns: RUNS },
    );
  });

  it("reads back every filter it can be given in its grammar", () => {
    const tenant = fc.stringMatching(/^[A-Za-z0-9._:-]{1,20}$/);
    const instant = fc
      .date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true })
      .map((d) => d.toISOString());
    const ops = fc.subarray([">=", ">", "<", "<="] as const);
    fc.assert(
      fc.property(
        fc.option(tenant, { nil: undefined }),
        fc.option(fc.constantFrom(...AUDIT_ACTIONS), { nil: undefined }),
        ops,
        instant,
        fc.boolean(),
        (tenantId, action, timeOps, at, longName) => {
          const terms = [
            ...(tenantId === undefined ? [] : [`tenant_id = ${JSON.stringify(tenantId)}`]),
            ...(action === undefined ? [] : [`action = ${longName ? "AUDIT_ACTION_" : ""}${action}`]),
            ...timeOps.map((op) => `occurred_at ${op} "${at}"`),
          ];
          const parsed = parse(terms.join(" AND "));
          expect(parsed.tenantId).toBe(tenantId);
          expect(parsed.action).toBe(action);
          expect(Object.keys(parsed.occurredAt).sort()).toEqual([...timeOps].sort());
        },
      ),
      { numRuns: RUNS },
    );
  });
});
