import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DashboardSchema } from "../../gen/dashboard/v1/dashboard_pb.js";

/** A dashboard shaped like the one the benchmark reads from the real service. */
export function sampleDashboard() {
  const id = "0190f3c2-0000-7000-8000-000000000001";
  const now = timestampFromDate(new Date("2026-01-01T00:00:00Z"));
  return create(DashboardSchema, {
    id,
    dashboardId: id,
    tenantId: "bench-tenant",
    workspaceId: "bench-workspace",
    name: "Benchmark dashboard",
    description: "",
    organizationId: "bench-org",
    createdBy: "bench",
    createdAt: now,
    updatedAt: now,
  });
}
