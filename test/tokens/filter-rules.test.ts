import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  filtersFromClaim,
  FILTER_OPERATORS,
  filterClaims,
  tenantFilter,
  type LockedFilter,
} from "../../src/tokens/filters.js";
import { filterViolations, webOrigin } from "../../src/validation/requests.js";

describe("locked filter rules", () => {
  it("never accepts a caller's tenant_id filter, whatever its operator or values", () => {
    fc.assert(
      fc.property(fc.constantFrom(...FILTER_OPERATORS), fc.array(fc.string(), { maxLength: 3 }), (operator, values) => {
        const fields = filterViolations([{ field: "tenant_id", operator, values }], undefined).map((v) => v.field);
        expect(fields).toContain("filters[0].field");
      }),
    );
  });

  it("never accepts a name that a renderer's SQL would read as the tenant column: any case, any qualifier", () => {
    const anyCase = fc
      .array(fc.boolean(), { minLength: 9, maxLength: 9 })
      .map((upper) => [..."tenant_id"].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join(""));
    const qualifier = fc.option(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/), { nil: undefined });
    fc.assert(
      fc.property(anyCase, qualifier, (column, table) => {
        const field = table === undefined ? column : `${table}.${column}`;
        const violations = filterViolations([{ field, operator: "eq", values: ["other-tenant"] }], undefined);
        expect(violations.map((v) => v.field)).toContain("filters[0].field");
      }),
    );
    for (const field of ["TENANT_ID", "Tenant_Id", "dashboards.tenant_id", "x.tenant_id"]) {
      expect(filterViolations([{ field, operator: "eq", values: ["t"] }], undefined)).toHaveLength(1);
    }
    // Names that merely contain it are other columns.
    expect(filterViolations([{ field: "tenant_id_old", operator: "eq", values: ["t"] }], undefined)).toEqual([]);
    expect(filterViolations([{ field: "tenant_id.region", operator: "eq", values: ["t"] }], undefined)).toEqual([]);
  });

  it("accepts only column-shaped field names, and only listed ones when a list is configured", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (field) => {
        const ok = filterViolations([{ field, operator: "eq", values: ["v"] }], undefined).length === 0;
        const column = field.slice(field.lastIndexOf(".") + 1);
        expect(ok).toBe(
          /^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/.test(field) &&
            column.toLowerCase() !== "tenant_id",
        );
      }),
    );
    expect(filterViolations([{ field: "region", operator: "eq", values: ["EU"] }], ["plan"])).toEqual([
      { field: "filters[0].field", description: "is not a filterable field (one of: plan)" },
    ]);
  });

  it("round-trips every valid filter through the token claim, and refuses claims it did not write", () => {
    const filter = fc.record({
      field: fc.stringMatching(/^[a-z_][a-z0-9_]{0,10}$/),
      operator: fc.constantFrom(...FILTER_OPERATORS),
      values: fc.array(fc.string(), { minLength: 1, maxLength: 4 }),
    });
    fc.assert(
      fc.property(fc.array(filter, { maxLength: 5 }), (filters: LockedFilter[]) => {
        const all = [tenantFilter("t-1"), ...filters];
        expect(filtersFromClaim(JSON.parse(JSON.stringify(filterClaims(all))))).toEqual(all);
      }),
    );
    expect(filtersFromClaim([{ field: "a", op: "like", values: ["%"] }])).toBeUndefined();
    expect(filtersFromClaim([{ field: "a", op: "eq", values: [1] }])).toBeUndefined();
    expect(filtersFromClaim("tenant_id = 1")).toBeUndefined();
  });

  it("accepts an origin only in the exact form a browser sends", () => {
    expect(webOrigin("https://app.example.com")).toBeUndefined();
    expect(webOrigin("http://localhost:3000")).toBeUndefined();
    for (const bad of [
      "https://app.example.com/",
      "https://APP.example.com",
      "https://app.example.com:443",
      "ftp://x.test",
      "null",
      "",
      "*",
    ]) {
      expect(webOrigin(bad), bad).toBeDefined();
    }
  });
});
