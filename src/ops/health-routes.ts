import { sendJson } from "../edge/plain-route.js";
import { plainRoute } from "../edge/plain-route.js";
import type { HttpRoute } from "../edge/routes.js";
import type { Health } from "./health.js";

export const LIVENESS_PATH = "/healthz";
export const READINESS_PATH = "/readyz";

// Probes must see the state now, never a cached answer.
const NO_STORE = { "cache-control": "no-store" };

/**
 * GET /healthz: the process is alive and its event loop turns (liveness; it
 * never looks at dependencies, so a database outage does not get pods killed).
 * GET /readyz: 200 when this replica should get traffic, 503 otherwise, with
 * the reasons in the body (readiness). Both keep answering while draining.
 */
export function healthRoutes(health: Health): { path: string; route: HttpRoute }[] {
  return [
    {
      path: LIVENESS_PATH,
      route: plainRoute({
        name: `GET ${LIVENESS_PATH}`,
        methods: ["GET", "HEAD"],
        servedWhileDraining: true,
        quiet: true,
        serve: (x) => sendJson(x, 200, { status: "alive" }, NO_STORE),
      }),
    },
    {
      path: READINESS_PATH,
      route: plainRoute({
        name: `GET ${READINESS_PATH}`,
        methods: ["GET", "HEAD"],
        servedWhileDraining: true,
        quiet: true,
        async serve(x) {
          const report = await health.readiness().catch(() => undefined);
          if (!report) return sendJson(x, 503, { status: "not ready" }, NO_STORE);
          sendJson(x, report.ready ? 200 : 503, { status: report.ready ? "ready" : "not ready", ...report }, NO_STORE);
        },
      }),
    },
  ];
}
