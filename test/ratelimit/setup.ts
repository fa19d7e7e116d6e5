import { createConnectTransport } from "@connectrpc/connect-node";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { outcomeOf } from "../helpers/errors.js";
import { bearer, callerToken } from "../helpers/tokens.js";

export const IFRAME_TOKEN_PATH = "/dashboard.v1.DashboardService/CreateIframeToken";

export interface MintTarget {
  tenantId: string;
  workspaceId: string;
  dashboardId: string;
}

export function connectClient(baseUrl: string): DashboardClient {
  return dashboardClient(createConnectTransport({ baseUrl, httpVersion: "1.1" }));
}

/** Creates a dashboard for tenant-1 of `org` (as an org admin whose own budget is not under test). */
export async function dashboardToMint(baseUrl: string, org: string): Promise<MintTarget> {
  const setup = bearer(await callerToken({ org, admin: true, sub: "setup-admin" }));
  const { dashboard } = await connectClient(baseUrl).createDashboard(
    { tenantId: "tenant-1", workspaceId: "ws-1", name: "Sales" },
    setup,
  );
  return { tenantId: "tenant-1", workspaceId: "ws-1", dashboardId: dashboard!.id };
}

/** One CreateIframeToken call over the Connect JSON protocol with plain fetch, to see the HTTP response itself. */
export async function mintWithFetch(baseUrl: string, token: string, target: MintTarget): Promise<Response> {
  return fetch(baseUrl + IFRAME_TOKEN_PATH, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(target),
  });
}

/** `calls` mints by one caller of `org`, alternating between two servers: "ok" or each refusal's reason. */
export async function alternateMints(
  baseUrls: [string, string],
  org: string,
  target: MintTarget,
  sub: string,
  calls: number,
): Promise<string[]> {
  const token = bearer(await callerToken({ org, admin: true, sub }));
  const clients = baseUrls.map(connectClient);
  const results: string[] = [];
  for (let i = 0; i < calls; i++) results.push(await outcomeOf(clients[i % 2]!.createIframeToken(target, token)));
  return results;
}
