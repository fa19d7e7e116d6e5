/**
 * Locked row-level filters: typed (a field, an operator from a closed set,
 * values), never SQL, so they cannot be aimed at the wrong dataset or widened
 * by string tricks. They travel in the token's `filters` claim, which the
 * renderer must apply to every query of the dashboard.
 */

/** The closed set of operators, as they appear in the token's claims. */
export const FILTER_OPERATORS = ["eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte"] as const;
export type FilterOperator = (typeof FILTER_OPERATORS)[number];

/** The field the server always filters on; callers can neither set nor override it. */
export const TENANT_FILTER_FIELD = "tenant_id";

/**
 * Whether a filter field names the tenant column as a renderer's SQL would
 * read it: unquoted identifiers are case-insensitive (TENANT_ID, Tenant_Id),
 * and a qualifier names a table, not another column (dashboards.tenant_id,
 * x.tenant_id). Any of these would let a caller add a tenant filter of its
 * own beside the server's.
 */
export function namesTenantColumn(field: string): boolean {
  const column = field.slice(field.lastIndexOf(".") + 1);
  return column.toLowerCase() === TENANT_FILTER_FIELD;
}

export const MAX_FILTERS = 20;
export const MAX_FILTER_VALUES = 100;
export const MAX_FILTER_VALUE_LENGTH = 256;
/** A column name, optionally qualified once (`orders.region`). */
export const FILTER_FIELD_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/;

export interface LockedFilter {
  field: string;
  operator: FilterOperator;
  values: string[];
}

/** Operators that compare with exactly one value; the others take a list. */
export function isSingleValued(op: FilterOperator): boolean {
  return op !== "in" && op !== "not_in";
}

export function tenantFilter(tenantId: string): LockedFilter {
  return { field: TENANT_FILTER_FIELD, operator: "eq", values: [tenantId] };
}

interface FilterClaim {
  field: string;
  op: FilterOperator;
  values: string[];
}

export function filterClaims(filters: LockedFilter[]): FilterClaim[] {
  return filters.map((f) => ({ field: f.field, op: f.operator, values: [...f.values] }));
}

/** Reads the `filters` claim back; undefined when it is not exactly what this service writes. */
export function filtersFromClaim(claim: unknown): LockedFilter[] | undefined {
  if (!Array.isArray(claim)) return undefined;
  const filters: LockedFilter[] = [];
  for (const c of claim as unknown[]) {
    if (typeof c !== "object" || c === null) return undefined;
    const { field, op, values } = c as Record<string, unknown>;
    if (typeof field !== "string" || !FILTER_OPERATORS.includes(op as FilterOperator)) return undefined;
    if (!Array.isArray(values) || !values.every((v) => typeof v === "string")) return undefined;
    filters.push({ field, operator: op as FilterOperator, values });
  }
  return filters;
}
