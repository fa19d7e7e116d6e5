import { describe, expect, it } from "vitest";
import { ServiceError } from "../../src/errors/service-error.js";
import { createDashboardRules, createIframeTokenRules, listDashboardsRules } from "../../src/validation/requests.js";
import { validate, violationsOf } from "../../src/validation/rules.js";
import { match } from "../helpers/matchers.js";

const dashboard = { tenantId: "t-1", workspaceId: "w.1", name: "Sales", description: undefined };

describe("request rules", () => {
  it("accept ids of 1 to 128 characters of [A-Za-z0-9._:-]", () => {
    for (const id of ["a", "A.b_c:d-e", "x".repeat(128), "0"]) {
      expect(violationsOf(createDashboardRules, { ...dashboard, tenantId: id })).toEqual([]);
    }
  });

  it("refuse other ids, naming the proto field", () => {
    for (const id of ["", "x".repeat(129), "a b", "a/b", "ä", "a\n", "'; DROP TABLE dashboards;--", "t\u0000"]) {
      expect(violationsOf(createDashboardRules, { ...dashboard, tenantId: id })).toEqual([
        { field: "tenant_id", description: match.any(String) },
      ]);
    }
  });

  it("count name length in characters, not bytes, and refuse control characters and blank names", () => {
    expect(violationsOf(createDashboardRules, { ...dashboard, name: "é".repeat(200) })).toEqual([]);
    expect(violationsOf(createDashboardRules, { ...dashboard, name: "😀".repeat(200) })).toEqual([]);
    expect(violationsOf(createDashboardRules, { ...dashboard, name: "😀".repeat(201) })[0]?.field).toBe("name");
    for (const name of ["", "   ", "tab\there", "bell\u0007", "del\u007f", "c1\u0085"]) {
      expect(violationsOf(createDashboardRules, { ...dashboard, name })[0]?.field, JSON.stringify(name)).toBe("name");
    }
  });

  it("refuse lone surrogates, which cannot be stored as UTF-8", () => {
    expect(violationsOf(createDashboardRules, { ...dashboard, name: "bad\ud800" })[0]?.description).toBe(
      "must be valid Unicode",
    );
  });

  it("allow an empty description and up to 2000 characters", () => {
    expect(violationsOf(createDashboardRules, { ...dashboard, description: "" })).toEqual([]);
    expect(violationsOf(createDashboardRules, { ...dashboard, description: "d".repeat(2000) })).toEqual([]);
    expect(violationsOf(createDashboardRules, { ...dashboard, description: "d".repeat(2001) })[0]?.field).toBe(
      "description",
    );
  });

  it("list every bad field at once in a VALIDATION_ERROR", () => {
    try {
      validate(createDashboardRules, { tenantId: "", workspaceId: "", name: "" });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ServiceError);
      expect((err as ServiceError).reason).toBe("VALIDATION_ERROR");
      expect((err as ServiceError).details.fieldViolations?.map((v) => v.field)).toEqual([
        "tenant_id",
        "workspace_id",
        "name",
      ]);
    }
  });

  it("refuse negative paging numbers and non-integer valid_until", () => {
    expect(violationsOf(listDashboardsRules, { pageSize: -1, pageToken: "", skip: -1 }).map((v) => v.field)).toEqual([
      "page_size",
      "skip",
    ]);
    expect(violationsOf(listDashboardsRules, { pageSize: 5000, pageToken: "", skip: 0 })).toEqual([]);
    const mint = { tenantId: "t", workspaceId: "w", dashboardId: "d" };
    expect(violationsOf(createIframeTokenRules, { ...mint, validUntil: Number.NaN })[0]?.field).toBe("valid_until");
    expect(violationsOf(createIframeTokenRules, { ...mint, validUntil: undefined })).toEqual([]);
  });
});
