import type { Logger } from "pino";
import { DASHBOARD_CHANGES_CHANNEL, parseChangeNotice, type DashboardCache } from "./dashboard-cache.js";
import type { Notifications, Unlisten } from "./sql.js";

/** Keeps this replica's dashboard cache in step with changes committed by any replica. */
export async function followDashboardChanges(db: Notifications, cache: DashboardCache, log: Logger): Promise<Unlisten> {
  let listening: boolean | undefined;
  let closing = false;
  const unlisten = await db.listen(
    DASHBOARD_CHANGES_CHANNEL,
    (payload) => {
      const notice = parseChangeNotice(payload);
      if (notice) cache.forget(...notice);
    },
    (now) => {
      cache.setListening(now);
      if (!closing && listening !== undefined && listening !== now) {
        if (now) log.info("dashboard change notices resumed: reads are cached again");
        else log.warn("dashboard change notices lost: reads go to the database until they resume");
      }
      listening = now;
    },
  );
  return () => {
    closing = true;
    return unlisten();
  };
}
