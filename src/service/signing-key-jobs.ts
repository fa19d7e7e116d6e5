import type { Job } from "../jobs/job-runner.js";
import type { Logger } from "../log/logger.js";
import { OrganizationKeyStore, SigningKeyStore } from "../store/signing-key-store.js";
import type { Sql } from "../store/sql.js";

/**
 * Retired keys, purged: a private half still stored for a key that no longer
 * signs is deleted, and a key's row goes once no token it signed can be
 * unexpired (its verify_until, which already covers the longest lifetime).
 */
export function signingKeyPurgeJob(sql: Sql, everyMs: number, log: Logger): Job {
  const organizations = new OrganizationKeyStore(sql);
  const global = new SigningKeyStore(sql);
  return {
    name: "signing-keys.purge",
    everyMs,
    async run(now) {
      const own = await organizations.purge(now);
      const previous = await global.purge(now);
      if (own.scrubbed + own.deleted + previous.scrubbed + previous.deleted > 0) {
        log.info({ organizationKeys: own, globalKeys: previous }, "purged retired signing keys");
      }
    },
  };
}
