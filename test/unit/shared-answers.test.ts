import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { GetDashboardResponseSchema } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { sharedAnswer } from "../../src/call/shared-answers.js";
import { encodeMessage } from "../../src/edge/rpc/messages.js";
import { toDashboardMessage } from "../../src/service/connect-service.js";
import type { DashboardRecord } from "../../src/store/dashboard-store.js";

const record = (version: number, name: string): DashboardRecord => ({
  id: "3f1c2f4e-8a47-4a9e-9d55-7d8f2b0c9a11",
  organizationId: "org",
  tenantId: "t",
  workspaceId: "w",
  name,
  description: "",
  createdBy: "admin",
  version,
  allowedOrigins: ["https://app.example"],
  embeddingEnabled: true,
  embedDefaults: { permissions: ["export_data"], locale: "de-DE", timeZone: "Europe/Berlin", theme: "dark" },
  permissionCeiling: ["export_data", "fullscreen"],
  createdAt: new Date(1_700_000_000_000),
  updatedAt: new Date(1_700_000_000_000 + version),
});

const make = (r: DashboardRecord) => create(GetDashboardResponseSchema, { dashboard: toDashboardMessage(r) });

describe("answers shared by a cached record", () => {
  it("are made once per record and encoded once per format, to exactly the bytes a fresh encoding gives", () => {
    const answers = new WeakMap<DashboardRecord, ReturnType<typeof make>>();
    const v1 = record(1, "Sales");
    const first = sharedAnswer(answers, v1, make);
    expect(sharedAnswer(answers, v1, make)).toBe(first);

    const binary = encodeMessage(GetDashboardResponseSchema, first, true);
    const json = encodeMessage(GetDashboardResponseSchema, first, false);
    expect(encodeMessage(GetDashboardResponseSchema, first, true)).toBe(binary);
    expect(encodeMessage(GetDashboardResponseSchema, first, false)).toBe(json);
    // The general path: a new message from the same record, encoded from scratch.
    expect(Buffer.from(binary)).toEqual(Buffer.from(toBinary(GetDashboardResponseSchema, make(v1))));
    expect(Buffer.from(json).toString()).toBe(toJsonString(GetDashboardResponseSchema, make(v1)));
  });

  it("never serve a newer version the older one's bytes: each record object has its own", () => {
    const answers = new WeakMap<DashboardRecord, ReturnType<typeof make>>();
    const older = encodeMessage(GetDashboardResponseSchema, sharedAnswer(answers, record(1, "Sales"), make), false);
    const newer = encodeMessage(GetDashboardResponseSchema, sharedAnswer(answers, record(2, "Revenue"), make), false);
    expect(Buffer.from(older).toString()).toContain('"name":"Sales"');
    expect(Buffer.from(newer).toString()).toContain('"name":"Revenue"');
  });

  it("leave every other message encoded afresh, so a message changed after encoding is never stale", () => {
    const message = make(record(1, "Sales"));
    const before = encodeMessage(GetDashboardResponseSchema, message, false);
    message.dashboard!.name = "Changed";
    const after = encodeMessage(GetDashboardResponseSchema, message, false);
    expect(after).not.toBe(before);
    expect(Buffer.from(after).toString()).toContain('"name":"Changed"');
  });
});
