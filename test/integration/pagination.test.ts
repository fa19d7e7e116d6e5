import { Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { failureOf } from "../helpers/errors.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";

let server: TestServer;
let client: DashboardClient;
let admin: ReturnType<typeof bearer>;
const created: string[] = [];

beforeAll(async () => {
  server = await startTestServer();
  client = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "2" }));
  admin = bearer(await callerToken({ org: "pager", admin: true, sub: "pager-admin" }));
  for (let i = 0; i < 25; i++) {
    const { dashboard } = await client.createDashboard(
      { tenantId: `t${String(i).padStart(2, "0")}`, workspaceId: "w", name: `D${i}` },
      admin,
    );
    created.push(dashboard!.id);
  }
});
afterAll(() => server.stop());

async function listAll(pageSize: number, headers = admin): Promise<string[]> {
  const ids: string[] = [];
  let pageToken = "";
  do {
    const page = await client.listDashboards({ pageSize, pageToken }, headers);
    ids.push(...page.dashboards.map((d) => d.id));
    pageToken = page.nextPageToken;
  } while (pageToken);
  return ids;
}

describe("ListDashboards paging (AIP-158)", () => {
  it("returns everything once, oldest first, across pages", async () => {
    expect(await listAll(7)).toEqual(created);
    const first = await client.listDashboards({ pageSize: 7 }, admin);
    expect(first.dashboards).toHaveLength(7);
    expect(first.totalSize).toBe(25);
  });

  it("defaults page_size 0 to 100 and coerces more than 1000 to 1000", async () => {
    expect((await client.listDashboards({ pageSize: 0 }, admin)).dashboards).toHaveLength(25);
    const big = await client.listDashboards({ pageSize: 5000 }, admin);
    expect(big.dashboards).toHaveLength(25);
    expect(big.nextPageToken).toBe("");
  });

  it("refuses a negative page_size or skip", async () => {
    expect(await failureOf(client.listDashboards({ pageSize: -1 }, admin))).toMatchObject({
      code: Code.InvalidArgument,
      reason: "VALIDATION_ERROR",
      fields: ["page_size"],
    });
    expect(await failureOf(client.listDashboards({ skip: -3 }, admin))).toMatchObject({ fields: ["skip"] });
  });

  it("skips results, also after a page token", async () => {
    const skipped = await client.listDashboards({ pageSize: 5, skip: 3 }, admin);
    expect(skipped.dashboards.map((d) => d.id)).toEqual(created.slice(3, 8));
    const next = await client.listDashboards({ pageSize: 5, skip: 2, pageToken: skipped.nextPageToken }, admin);
    expect(next.dashboards.map((d) => d.id)).toEqual(created.slice(10, 15));
    const past = await client.listDashboards({ skip: 100 }, admin);
    expect(past.dashboards).toEqual([]);
    expect(past.totalSize).toBe(25);
  });

  it("refuses forged, altered and foreign page tokens", async () => {
    const { nextPageToken } = await client.listDashboards({ pageSize: 2 }, admin);
    const invalid = { code: Code.InvalidArgument, reason: "VALIDATION_ERROR", fields: ["page_token"] };
    expect(await failureOf(client.listDashboards({ pageToken: "garbage" }, admin))).toMatchObject(invalid);

    // Point the cursor at another position, keeping the signature.
    const [body, mac] = nextPageToken.split(".");
    const decoded = JSON.parse(Buffer.from(body!, "base64url").toString()) as { a: string };
    const moved = Buffer.from(JSON.stringify({ ...decoded, a: created[20] })).toString("base64url");
    expect(await failureOf(client.listDashboards({ pageToken: `${moved}.${mac}` }, admin))).toMatchObject(invalid);

    // Another organization's caller, and another caller of the same organization, cannot use it.
    const stranger = bearer(await callerToken({ org: "elsewhere", admin: true, sub: "pager-admin" }));
    expect(await failureOf(client.listDashboards({ pageToken: nextPageToken }, stranger))).toMatchObject(invalid);
    const colleague = bearer(await callerToken({ org: "pager", tenants: ["t00", "t01", "t02"], sub: "colleague" }));
    expect(await failureOf(client.listDashboards({ pageToken: nextPageToken }, colleague))).toMatchObject(invalid);
  });

  it("neither repeats nor loses rows when dashboards are created while a client pages", async () => {
    const org = bearer(await callerToken({ org: "busy", admin: true }));
    const before: string[] = [];
    for (let i = 0; i < 30; i++) {
      before.push(
        (await client.createDashboard({ tenantId: `b${i}`, workspaceId: "w", name: "n" }, org)).dashboard!.id,
      );
    }
    // A writer inserts concurrently with every page read.
    let writing = true;
    let n = 0;
    const writer = (async () => {
      while (writing) await client.createDashboard({ tenantId: `new${n++}`, workspaceId: "w", name: "n" }, org);
    })();
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await client.listDashboards({ pageSize: 4, pageToken }, org);
      seen.push(...page.dashboards.map((d) => d.id));
      pageToken = page.nextPageToken;
      await new Promise((r) => setTimeout(r, 5));
    } while (pageToken && seen.length < 1000);
    writing = false;
    await writer;
    expect(n).toBeGreaterThan(0);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.slice(0, before.length)).toEqual(before);
  });
});
