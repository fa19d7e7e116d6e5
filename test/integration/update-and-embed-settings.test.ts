import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditAction } from "../../gen/dashboard/v1/audit_event_pb.js";
import type { Dashboard } from "../../gen/dashboard/v1/dashboard_pb.js";
import { EmbedPermission, EmbedTheme } from "../../gen/dashboard/v1/embed_settings_pb.js";
import { dashboardClient, transports, type DashboardClient } from "../helpers/clients.js";
import { failureFrom, failureOf } from "../helpers/errors.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

/** Request fields beyond the ones a helper fills in, as the generated client's init objects take them. */
type Fields = Record<string, unknown>;
const mask = (...paths: string[]) => create(FieldMaskSchema, { paths });
const permissions = (...p: EmbedPermission[]) => ({ permissions: p });
const { FULLSCREEN, EXPORT_DATA, DRILL_THROUGH, DOWNLOAD_IMAGE } = EmbedPermission;

describe.each(Object.keys(transports("http://x")))("UpdateDashboard and embed settings over %s", (name) => {
  const org = `org-upd-${name.replace(/[^A-Za-z0-9]/g, "")}`;
  let client: DashboardClient;
  let admin: ReturnType<typeof bearer>;
  beforeAll(async () => {
    client = dashboardClient(transports(server.baseUrl)[name]!);
    admin = bearer(await callerToken({ org, admin: true, sub: "alice" }));
  });
  const createFor = async (tenantId: string, extra: Fields = {}) =>
    (
      await client.createDashboard(
        { tenantId, workspaceId: "ws-1", name: "Original", description: "kept", ...extra },
        admin,
      )
    ).dashboard!;
  const mintFor = (d: Dashboard, extra: Fields = {}) =>
    client.createIframeToken({ tenantId: d.tenantId, workspaceId: d.workspaceId, dashboardId: d.id, ...extra }, admin);

  it("changes only the masked paths, moves updated_at and the etag, and audits the changed paths", async () => {
    const before = await createFor("t-mask");
    const { dashboard: after } = await client.updateDashboard(
      // description is set in the request but not in the mask: it must not change.
      { dashboard: { tenantId: "t-mask", name: "Renamed", description: "ignored" }, updateMask: mask("name") },
      admin,
    );
    expect(after).toEqual({ ...before, name: "Renamed", updatedAt: after!.updatedAt, etag: after!.etag });
    expect(after!.etag).not.toBe(before.etag);
    const moved =
      Number(after!.updatedAt!.seconds) * 1e9 + after!.updatedAt!.nanos >
      Number(before.updatedAt!.seconds) * 1e9 + before.updatedAt!.nanos;
    expect(moved).toBe(true);
    expect((await client.getDashboard({ tenantId: "t-mask" }, admin)).dashboard).toEqual(after);

    // No mask: the fields the request sets (AIP-134).
    const { dashboard: described } = await client.updateDashboard(
      { dashboard: { tenantId: "t-mask", description: "new words" } },
      admin,
    );
    expect(described).toMatchObject({ name: "Renamed", description: "new words" });

    // To set a field to its zero value, name it in the mask.
    const { dashboard: paused } = await client.updateDashboard(
      { dashboard: { tenantId: "t-mask" }, updateMask: mask("embedding_enabled") },
      admin,
    );
    expect(paused!.embeddingEnabled).toBe(false);

    // "*" replaces every mutable field: a read dashboard sent back whole changes only what was edited in it.
    const read = (await client.getDashboard({ tenantId: "t-mask" }, admin)).dashboard!;
    const { dashboard: starred } = await client.updateDashboard(
      { dashboard: { ...read, embeddingEnabled: true }, updateMask: mask("*") },
      admin,
    );
    expect(starred).toEqual({ ...read, embeddingEnabled: true, updatedAt: starred!.updatedAt, etag: starred!.etag });

    const audit = await client.listAuditEvents({}, admin);
    const updates = audit.events.filter((e) => e.action === AuditAction.DASHBOARD_UPDATED && e.tenantId === "t-mask");
    expect(updates.map((e) => e.details.paths)).toEqual(
      expect.arrayContaining(["name", "description", "embedding_enabled"]),
    );
    expect(updates.every((e) => e.actor === "alice" && e.dashboardId === before.id)).toBe(true);
  });

  it("of two updates from the same etag exactly one wins; a stale etag is ABORTED and changes nothing", async () => {
    const d = await createFor("t-race");
    const outcomes = await Promise.allSettled(
      ["A", "B"].map((n) =>
        client.updateDashboard(
          { dashboard: { tenantId: "t-race", name: n, etag: d.etag }, updateMask: mask("name") },
          admin,
        ),
      ),
    );
    const won = outcomes.filter((o) => o.status === "fulfilled");
    const lost = outcomes.filter((o) => o.status === "rejected");
    expect([won.length, lost.length]).toEqual([1, 1]);
    expect(failureFrom(lost[0]!.reason)).toMatchObject({
      code: Code.Aborted,
      reason: "ETAG_MISMATCH",
    });
    const winner = won[0]!.value.dashboard!;
    expect((await client.getDashboard({ tenantId: "t-race" }, admin)).dashboard).toEqual(winner);

    // The same stale etag again: refused, and nothing changes.
    expect(
      await failureOf(
        client.updateDashboard(
          { dashboard: { tenantId: "t-race", name: "C", etag: d.etag }, updateMask: mask("name") },
          admin,
        ),
      ),
    ).toMatchObject({ code: Code.Aborted, reason: "ETAG_MISMATCH" });
    expect((await client.getDashboard({ tenantId: "t-race" }, admin)).dashboard).toEqual(winner);
    // Without an etag, the last write wins.
    await client.updateDashboard({ dashboard: { tenantId: "t-race", name: "D" }, updateMask: mask("name") }, admin);
    expect((await client.getDashboard({ tenantId: "t-race" }, admin)).dashboard!.name).toBe("D");
  });

  it("refuses an unknown or immutable mask path by name, and bad values, changing nothing", async () => {
    const d = await createFor("t-badmask");
    for (const [path, says] of [
      ["tenant_id", '"tenant_id" cannot be changed'],
      ["etag", '"etag" cannot be changed'],
      ["colour", '"colour" is not a field of Dashboard that can be updated'],
      ["embed_defaults.colour", '"embed_defaults.colour" is not a field of Dashboard that can be updated'],
    ] as const) {
      const failure = await failureOf(
        client.updateDashboard(
          { dashboard: { tenantId: "t-badmask", name: "x" }, updateMask: mask("name", path) },
          admin,
        ),
      );
      expect(failure).toMatchObject({ code: Code.InvalidArgument, fields: ["update_mask.paths[1]"] });
      expect(failure.message).toContain(says);
    }
    expect(
      await failureOf(client.updateDashboard({ dashboard: { tenantId: "t-badmask" }, updateMask: mask() }, admin)),
    ).toMatchObject({ code: Code.InvalidArgument, fields: ["update_mask"] });
    expect(
      await failureOf(
        client.updateDashboard(
          {
            dashboard: { tenantId: "t-badmask", name: "", allowedOrigins: ["not an origin"] },
            updateMask: mask("name", "allowed_origins"),
          },
          admin,
        ),
      ),
    ).toMatchObject({ code: Code.InvalidArgument, fields: ["dashboard.name", "dashboard.allowed_origins[0]"] });
    expect(
      await failureOf(client.updateDashboard({ dashboard: { tenantId: "nobody" }, updateMask: mask("name") }, admin)),
    ).toMatchObject({ code: Code.InvalidArgument, fields: ["dashboard.name"] });
    expect(
      await failureOf(client.updateDashboard({ dashboard: { tenantId: "nobody", name: "n" } }, admin)),
    ).toMatchObject({ code: Code.NotFound, reason: "NOT_FOUND" });
    expect((await client.getDashboard({ tenantId: "t-badmask" }, admin)).dashboard).toEqual(d);
  });

  it("a pause refuses mints and existing tokens; resuming makes the unexpired tokens verify again", async () => {
    const d = await createFor("t-pause");
    const { token } = await mintFor(d);
    await client.updateDashboard({ dashboard: { tenantId: "t-pause" }, updateMask: mask("embedding_enabled") }, admin);
    expect(await failureOf(mintFor(d))).toMatchObject({ code: Code.FailedPrecondition, reason: "EMBEDDING_PAUSED" });
    expect(await failureOf(client.verifyIframeToken({ token }, admin))).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "EMBEDDING_PAUSED",
    });
    await client.updateDashboard({ dashboard: { tenantId: "t-pause", embeddingEnabled: true } }, admin);
    expect((await client.verifyIframeToken({ token }, admin)).claims!.dashboardId).toBe(d.id);
    await mintFor(d);
  });

  it("narrowing allowed_origins fails the tokens bound to a removed origin, and only those", async () => {
    const d = await createFor("t-origins", { allowedOrigins: ["https://a.example", "https://b.example"] });
    const toA = (await mintFor(d, { origin: "https://a.example" })).token;
    const toB = (await mintFor(d, { origin: "https://b.example" })).token;
    await client.updateDashboard(
      {
        dashboard: { tenantId: "t-origins", allowedOrigins: ["https://a.example"] },
        updateMask: mask("allowed_origins"),
      },
      admin,
    );
    expect((await client.verifyIframeToken({ token: toA }, admin)).claims!.origin).toBe("https://a.example");
    expect(await failureOf(client.verifyIframeToken({ token: toB }, admin))).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "ORIGIN_NOT_ALLOWED",
    });
    expect(await failureOf(mintFor(d, { origin: "https://b.example" }))).toMatchObject({
      code: Code.InvalidArgument,
      fields: ["origin"],
    });
  });

  it("signs the embed settings, defaults where the mint is silent, and verifies them back", async () => {
    const d = await createFor("t-settings", {
      embedDefaults: {
        permissions: permissions(FULLSCREEN),
        locale: "fr-ca",
        timeZone: "europe/berlin",
        theme: EmbedTheme.DARK,
      },
      permissionCeiling: permissions(FULLSCREEN, EXPORT_DATA, DOWNLOAD_IMAGE),
    });
    expect(d.embedDefaults).toMatchObject({ locale: "fr-CA", timeZone: "Europe/Berlin", theme: EmbedTheme.DARK });

    const defaulted = await mintFor(d);
    expect(decodeJwt(defaulted.token)).toMatchObject({
      permissions: ["fullscreen"],
      locale: "fr-CA",
      time_zone: "Europe/Berlin",
      theme: "dark",
    });
    const chosen = await mintFor(d, {
      // Repeats and order do not matter: the set is signed in the closed set's order.
      permissions: permissions(FULLSCREEN, EXPORT_DATA, EXPORT_DATA),
      locale: "EN-us",
      timeZone: "UTC",
      theme: EmbedTheme.SYSTEM,
      viewer: { id: "user-42", displayName: "Grace" },
    });
    expect(decodeJwt(chosen.token)).toMatchObject({
      permissions: ["export_data", "fullscreen"],
      locale: "en-US",
      time_zone: "UTC",
      theme: "system",
      viewer: { id: "user-42", name: "Grace" },
    });
    const { claims } = await client.verifyIframeToken({ token: chosen.token }, admin);
    expect(claims).toMatchObject({
      permissions: [EXPORT_DATA, FULLSCREEN],
      locale: "en-US",
      timeZone: "UTC",
      theme: EmbedTheme.SYSTEM,
      viewer: { id: "user-42", displayName: "Grace" },
    });
    // An empty set is "nothing beyond viewing", not "the default".
    expect(decodeJwt((await mintFor(d, { permissions: permissions() })).token).permissions).toEqual([]);
    for (const [bad, field] of [
      [{ locale: "not a locale!" }, "locale"],
      [{ timeZone: "Mars/Olympus_Mons" }, "time_zone"],
      [{ theme: 99 as EmbedTheme }, "theme"],
      [{ permissions: permissions(EmbedPermission.UNSPECIFIED) }, "permissions.permissions[0]"],
      [{ viewer: { id: "", displayName: "" } }, "viewer.id"],
    ] as const) {
      expect(await failureOf(mintFor(d, bad))).toMatchObject({ code: Code.InvalidArgument, fields: [field] });
    }
  });

  it("never grants more than the ceiling, whoever asks; a tenant's caller cannot widen its own grant", async () => {
    const d = await createFor("t-ceiling", { permissionCeiling: permissions(FULLSCREEN, EXPORT_DATA) });
    const over = await failureOf(mintFor(d, { permissions: permissions(FULLSCREEN, DRILL_THROUGH) }));
    expect(over).toMatchObject({
      code: Code.InvalidArgument,
      reason: "VALIDATION_ERROR",
      fields: ["permissions.permissions"],
    });
    expect(over.message).toContain("DRILL_THROUGH is not allowed by this dashboard's permission ceiling");

    const tenant = bearer(await callerToken({ org, tenants: ["t-ceiling"], sub: "tenant-user" }));
    const asTenant = (dashboard: Fields, paths?: string[]) =>
      client.updateDashboard(
        { dashboard: { tenantId: "t-ceiling", ...dashboard }, updateMask: paths && mask(...paths) },
        tenant,
      );
    // What it may change:
    await asTenant(
      { name: "Ours", embedDefaults: { permissions: permissions(EXPORT_DATA), locale: "", timeZone: "", theme: 0 } },
      ["name", "embed_defaults.permissions"],
    );
    // Widening the ceiling, un-pausing, re-pointing origins or the workspace, directly or through "*" or an empty mask:
    for (const [dashboard, paths] of [
      [{ permissionCeiling: permissions(FULLSCREEN, EXPORT_DATA, DRILL_THROUGH) }, ["permission_ceiling"]],
      [{ embeddingEnabled: true }, undefined],
      [{ allowedOrigins: ["https://evil.example"] }, undefined],
      [{ workspaceId: "ws-2" }, ["workspace_id"]],
      [{ ...d, name: "All" }, ["*"]],
    ] as const) {
      expect(await failureOf(asTenant(dashboard as Fields, paths && [...paths]))).toMatchObject({
        code: Code.PermissionDenied,
        reason: "FORBIDDEN",
      });
    }
    // Defaults beyond the ceiling, and a mint beyond it:
    const defaultsOver = await failureOf(
      asTenant({ embedDefaults: { permissions: permissions(DRILL_THROUGH), locale: "", timeZone: "", theme: 0 } }, [
        "embed_defaults.permissions",
      ]),
    );
    expect(defaultsOver).toMatchObject({
      code: Code.InvalidArgument,
      fields: ["dashboard.embed_defaults.permissions.permissions"],
    });
    const tenantMint = client.createIframeToken(
      { tenantId: "t-ceiling", workspaceId: "ws-1", dashboardId: d.id, permissions: permissions(DOWNLOAD_IMAGE) },
      tenant,
    );
    expect(await failureOf(tenantMint)).toMatchObject({
      code: Code.InvalidArgument,
      fields: ["permissions.permissions"],
    });
    // Another tenant's dashboard is not its to change at all.
    await createFor("t-ceiling-other");
    expect(
      await failureOf(
        client.updateDashboard(
          { dashboard: { tenantId: "t-ceiling-other", name: "x" }, updateMask: mask("name") },
          tenant,
        ),
      ),
    ).toMatchObject({ code: Code.PermissionDenied });

    const now = (await client.getDashboard({ tenantId: "t-ceiling" }, admin)).dashboard!;
    expect(now.name).toBe("Ours");
    expect(now.permissionCeiling!.permissions).toEqual([EXPORT_DATA, FULLSCREEN]);
    expect(now.embedDefaults!.permissions!.permissions).toEqual([EXPORT_DATA]);
    expect(now.embeddingEnabled).toBe(true);
    // Lowering the ceiling under the defaults is refused: the defaults must stay within it.
    expect(
      await failureOf(
        client.updateDashboard(
          {
            dashboard: { tenantId: "t-ceiling", permissionCeiling: permissions(FULLSCREEN) },
            updateMask: mask("permission_ceiling"),
          },
          admin,
        ),
      ),
    ).toMatchObject({ code: Code.InvalidArgument, fields: ["dashboard.embed_defaults.permissions.permissions"] });
  });

  it("changing workspace_id revokes the dashboard's existing tokens, which carry the old workspace", async () => {
    const d = await createFor("t-move");
    const { token } = await mintFor(d);
    const { dashboard: moved } = await client.updateDashboard(
      { dashboard: { tenantId: "t-move", workspaceId: "ws-2" }, updateMask: mask("workspace_id") },
      admin,
    );
    expect(await failureOf(client.verifyIframeToken({ token }, admin))).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "TOKEN_REVOKED",
    });
    const fresh = await mintFor(moved!);
    expect((await client.verifyIframeToken({ token: fresh.token }, admin)).claims!.workspaceId).toBe("ws-2");
    // The old workspace no longer names the dashboard.
    expect(await failureOf(mintFor(d))).toMatchObject({ code: Code.NotFound });
  });
});

describe("locales and time zones at the RPC (Connect JSON; the rules are the same on every protocol)", () => {
  it("no string that Intl rejects is ever signed: a mint either refuses it by name or signs Intl's canonical form", async () => {
    const client = dashboardClient(transports(server.baseUrl)["Connect JSON (HTTP/1.1)"]!);
    const admin = bearer(await callerToken({ org: "org-intl-property", admin: true }));
    const d = (await client.createDashboard({ tenantId: "t-intl", workspaceId: "ws-1", name: "n" }, admin)).dashboard!;
    const text = fc.oneof(
      fc.string({ unit: "binary", maxLength: 70 }),
      fc.stringMatching(/^[A-Za-z]{1,9}(?:[-_/][A-Za-z0-9_+]{1,9}){0,3}$/),
      fc.constantFrom("EN-us", "europe/berlin", "+05:30", "i-klingon", "UTC", "und"),
    );
    await fc.assert(
      fc.asyncProperty(fc.record({ locale: text, timeZone: text }), async (settings) => {
        let minted: { token: string } | undefined;
        let refused: string[] = [];
        try {
          minted = await client.createIframeToken(
            { tenantId: "t-intl", workspaceId: "ws-1", dashboardId: d.id, ...settings },
            admin,
          );
        } catch (err) {
          const failure = failureFrom(err);
          expect(failure.code).toBe(Code.InvalidArgument);
          refused = failure.fields;
        }
        if (minted === undefined) {
          expect(refused.length).toBeGreaterThan(0);
          expect(refused.every((f) => f === "locale" || f === "time_zone")).toBe(true);
          return;
        }
        const claims = decodeJwt(minted.token) as { locale?: string; time_zone?: string };
        if (settings.locale === "") expect(claims.locale).toBeUndefined();
        else expect(Intl.getCanonicalLocales(claims.locale)).toEqual([claims.locale]);
        if (settings.timeZone === "") expect(claims.time_zone).toBeUndefined();
        else {
          const resolved = new Intl.DateTimeFormat("en-US", { timeZone: claims.time_zone! }).resolvedOptions();
          expect(resolved.timeZone).toBe(claims.time_zone);
        }
      }),
      // The failing call in the report, not only the counterexample.
      { numRuns: 60, includeErrorInReport: true },
    );
  });
});
