import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { failureOf } from "../helpers/errors.js";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";

let a: TestServer;
let b: TestServer;
let clientA: DashboardClient;
let clientB: DashboardClient;
let admin: ReturnType<typeof bearer>;

beforeAll(async () => {
  a = await startTestServer();
  b = await startTestServer({}, a.db);
  clientA = dashboardClient(createConnectTransport({ baseUrl: a.baseUrl, httpVersion: "1.1" }));
  clientB = dashboardClient(createConnectTransport({ baseUrl: b.baseUrl, httpVersion: "1.1" }));
  admin = bearer(await callerToken({ org: "cached", admin: true }));
});
afterAll(async () => {
  await b.app.stop(1000);
  await a.stop();
});

async function eventually(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

const listeners = async () =>
  (
    await queryDatabase<{ n: number }>(
      a.db.url,
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'dashboard-service-listener' AND datname = current_database()",
    )
  )[0]!.n;

describe("dashboard reads cached on two replicas", () => {
  it("see a delete and a re-create made on the other replica", async () => {
    const created = (await clientA.createDashboard({ tenantId: "t", workspaceId: "w", name: "v1" }, admin)).dashboard!;
    expect((await clientA.getDashboard({ tenantId: "t" }, admin)).dashboard?.id).toBe(created.id);
    expect((await clientA.getDashboard({ tenantId: "t" }, admin)).dashboard?.id).toBe(created.id);

    await clientB.deleteDashboard({ tenantId: "t" }, admin);
    // Until B's notice reaches A, A may still answer from its cache: a success is "not yet", not a failure.
    await eventually(() =>
      clientA.getDashboard({ tenantId: "t" }, admin).then(
        () => false,
        (err: unknown) => ConnectError.from(err).code === Code.NotFound,
      ),
    );
    // Minting must not find the deleted dashboard through the cache either.
    expect(
      await failureOf(clientA.createIframeToken({ tenantId: "t", workspaceId: "w", dashboardId: created.id }, admin)),
    ).toMatchObject({ code: Code.NotFound });

    const again = (await clientB.createDashboard({ tenantId: "t", workspaceId: "w", name: "v2" }, admin)).dashboard!;
    expect((await clientA.getDashboard({ tenantId: "t" }, admin)).dashboard).toMatchObject({
      id: again.id,
      name: "v2",
    });
  });

  it("see an update made on the other replica: the new version, and a pause that stops minting", async () => {
    const created = (await clientA.createDashboard({ tenantId: "upd", workspaceId: "w", name: "v1" }, admin))
      .dashboard!;
    // Cached on A.
    expect((await clientA.getDashboard({ tenantId: "upd" }, admin)).dashboard).toEqual(created);
    expect((await clientA.getDashboard({ tenantId: "upd" }, admin)).dashboard).toEqual(created);

    const { dashboard: updated } = await clientB.updateDashboard(
      {
        dashboard: { tenantId: "upd", name: "v2", embeddingEnabled: false },
        updateMask: { paths: ["name", "embedding_enabled"] },
      },
      admin,
    );
    await eventually(async () => (await clientA.getDashboard({ tenantId: "upd" }, admin)).dashboard!.name === "v2");
    expect((await clientA.getDashboard({ tenantId: "upd" }, admin)).dashboard).toEqual(updated);
    // A's mint reads the dashboard through the same cache: the pause holds there too.
    expect(
      await failureOf(clientA.createIframeToken({ tenantId: "upd", workspaceId: "w", dashboardId: created.id }, admin)),
    ).toMatchObject({ code: Code.FailedPrecondition, reason: "EMBEDDING_PAUSED" });
    // An update from A's (stale) etag is refused on A, though A had cached that version.
    expect(
      await failureOf(
        clientA.updateDashboard({ dashboard: { tenantId: "upd", name: "v3", etag: created.etag } }, admin),
      ),
    ).toMatchObject({ code: Code.Aborted, reason: "ETAG_MISMATCH" });
  });

  it("reads the same replica's own writes at once", async () => {
    await clientA.createDashboard({ tenantId: "own", workspaceId: "w", name: "n" }, admin);
    await clientA.getDashboard({ tenantId: "own" }, admin);
    await clientA.deleteDashboard({ tenantId: "own" }, admin);
    expect(await failureOf(clientA.getDashboard({ tenantId: "own" }, admin))).toMatchObject({ code: Code.NotFound });
  });

  it("forget everything when their change listener reconnects, so a missed notice cannot leave a stale read", async () => {
    await eventually(async () => (await listeners()) === 2);
    const d = (await clientA.createDashboard({ tenantId: "missed", workspaceId: "w", name: "n" }, admin)).dashboard!;
    expect((await clientA.getDashboard({ tenantId: "missed" }, admin)).dashboard?.id).toBe(d.id);

    await queryDatabase(
      a.db.url,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'dashboard-service-listener' AND datname = current_database()",
    );
    // A change nobody is told about: straight to the table, no notice.
    await queryDatabase(a.db.url, "DELETE FROM dashboards WHERE organization_id = 'cached' AND tenant_id = 'missed'");
    await eventually(async () => (await listeners()) === 2);
    expect(await failureOf(clientA.getDashboard({ tenantId: "missed" }, admin))).toMatchObject({ code: Code.NotFound });
  });
});
