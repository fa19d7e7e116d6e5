import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createConnectTransport } from "@connectrpc/connect-node";
import { decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardClient } from "../helpers/clients.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { spawnServer } from "../helpers/process.js";
import { bearer, callerToken, TEST_JWT_SECRET } from "../helpers/tokens.js";
import { TEST_KEY_ENCRYPTION_KEYS } from "../helpers/keys.js";

const run = promisify(execFile);
let db: TestDatabase;
let dataDir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = await mkdtemp(join(tmpdir(), "dashboard-embedded-"));
});
afterAll(async () => {
  await db.drop();
  await rm(dataDir, { recursive: true, force: true });
});

const clientFor = (baseUrl: string) => dashboardClient(createConnectTransport({ baseUrl, httpVersion: "1.1" }));

describe("the service as a process", () => {
  it("keeps dashboards and its signing key across a restart on PostgreSQL, and exits 0 on SIGTERM", async () => {
    const env = {
      DATABASE_URL: db.url,
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      KEY_ENCRYPTION_KEYS: TEST_KEY_ENCRYPTION_KEYS,
      NODE_ENV: "production",
    };
    const admin = bearer(await callerToken({ org: "durable", admin: true }));

    const first = await spawnServer(env);
    const created = (
      await clientFor(first.baseUrl).createDashboard({ tenantId: "t", workspaceId: "w", name: "Kept" }, admin)
    ).dashboard!;
    const before = await clientFor(first.baseUrl).createIframeToken(
      { tenantId: "t", workspaceId: "w", dashboardId: created.id },
      admin,
    );
    expect(await first.stop("SIGTERM")).toBe(0);

    const second = await spawnServer(env);
    try {
      const got = await clientFor(second.baseUrl).getDashboard({ tenantId: "t" }, admin);
      expect(got.dashboard).toEqual(created);
      const after = await clientFor(second.baseUrl).createIframeToken(
        { tenantId: "t", workspaceId: "w", dashboardId: created.id },
        admin,
      );
      expect(decodeProtectedHeader(after.token).kid).toBe(decodeProtectedHeader(before.token).kid);
    } finally {
      expect(await second.stop("SIGINT")).toBe(0);
    }
  });

  it("runs on the embedded defaults with no configuration, says so, and keeps data in DATA_DIR", async () => {
    const env = { DATA_DIR: dataDir };
    const first = await spawnServer(env, 60_000);
    const log = first.lines.join("\n");
    expect(log).toMatch(/embedded PostgreSQL \(PGlite\)/);
    expect(log).toMatch(/development secret/);

    // The README's way to get a token: npm run token, which reads the same development secret.
    const { stdout } = await run(
      process.execPath,
      ["--import", "tsx", "scripts/dev-token.ts", "--org", "newcomer", "--admin"],
      {
        env: { PATH: process.env.PATH ?? "", DATA_DIR: dataDir },
      },
    );
    const admin = bearer(stdout.trim());
    const created = (
      await clientFor(first.baseUrl).createDashboard({ tenantId: "t", workspaceId: "w", name: "Local" }, admin)
    ).dashboard!;
    expect(created.organizationId).toBe("newcomer");
    expect(await first.stop()).toBe(0);

    const second = await spawnServer(env, 60_000);
    try {
      const got = await clientFor(second.baseUrl).getDashboard({ tenantId: "t" }, admin);
      expect(got.dashboard?.id).toBe(created.id);
      const minted = await clientFor(second.baseUrl).createIframeToken(
        { tenantId: "t", workspaceId: "w", dashboardId: created.id },
        admin,
      );
      expect(minted.token.split(".")).toHaveLength(3);
      // A token signed with anything but the development secret is still refused.
      const forged = bearer(await callerToken({ org: "newcomer", admin: true }));
      await expect(clientFor(second.baseUrl).listDashboards({}, forged)).rejects.toThrow(/not valid/);
    } finally {
      await second.stop();
    }
  });

  it("refuses to start with bad configuration and names every problem", async () => {
    const err = await spawnServer({ NODE_ENV: "production", PORT: "99999", AUTH_JWT_SECRET: "short" }).catch(
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).toMatch(/exited with 2/);
    expect(message).toMatch(/PORT/);
    expect(message).toMatch(/AUTH_JWT_SECRET: must be at least 32 bytes/);
    expect(message).toMatch(/DATABASE_URL: production needs/);
  });
});
