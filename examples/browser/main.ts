// A browser front end on a different origin than the API: it calls the service
// with the generated Connect client over connect-web (CORS), lists the
// organization's dashboards and, on a click, mints an iframe token.
import { createClient, ConnectError, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";

/**
 * What the page's own backend hands it (here: config.json from the example
 * server). In a real app the caller token is minted by your backend for the
 * signed-in user, short-lived and scoped to what that user may see; it never
 * ships in the bundle.
 */
interface PageConfig {
  apiBaseUrl: string;
  callerToken: string;
  /** Where the dashboard renderer lives; the iframe URL is built from it. */
  embedBaseUrl: string;
}

const statusEl = document.getElementById("status")!;
const listEl = document.getElementById("dashboards")!;
const iframeUrlEl = document.getElementById("iframe-url")!;

function showStatus(text: string, isError = false): void {
  statusEl.textContent = text;
  statusEl.className = isError ? "error" : "";
}

function describe(err: unknown): string {
  const e = ConnectError.from(err);
  return `${e.code === undefined ? "error" : `[${e.code}]`} ${e.rawMessage}`;
}

async function main(): Promise<void> {
  const config = (await (await fetch("./config.json")).json()) as PageConfig;
  const withToken: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${config.callerToken}`);
    return next(req);
  };
  const client = createClient(
    DashboardService,
    // GET for NO_SIDE_EFFECTS methods (ListDashboards, GetDashboard), so reads are cacheable.
    createConnectTransport({ baseUrl: config.apiBaseUrl, useHttpGet: true, interceptors: [withToken] }),
  );

  let listed;
  try {
    listed = await client.listDashboards({ pageSize: 100 });
  } catch (err) {
    showStatus(`Could not list dashboards: ${describe(err)}`, true);
    return;
  }
  showStatus(`${listed.totalSize} dashboard(s)`);
  listEl.replaceChildren(
    ...listed.dashboards.map((d) => {
      const item = document.createElement("li");
      item.dataset.tenantId = d.tenantId;
      const button = document.createElement("button");
      button.textContent = "Embed";
      const embed = async () => {
        const minted = await client.createIframeToken({
          tenantId: d.tenantId,
          workspaceId: d.workspaceId,
          dashboardId: d.id,
        });
        const url = new URL(`${config.embedBaseUrl}/${encodeURIComponent(minted.dashboardId)}`);
        url.searchParams.set("token", minted.token);
        iframeUrlEl.textContent = url.toString();
        iframeUrlEl.dataset.expiresAt = minted.expiresAt.toString();
      };
      button.addEventListener("click", () => {
        embed().catch((err: unknown) => showStatus(`Could not mint an iframe token: ${describe(err)}`, true));
      });
      item.append(`${d.name} (tenant ${d.tenantId}) `, button);
      return item;
    }),
  );
}

main().catch((err: unknown) => showStatus(`The example failed: ${describe(err)}`, true));
