import type { Clock } from "../clock.js";
import type { Config } from "../config/config.js";
import type { Logger } from "../log/logger.js";
import { AuditStore, type NewAuditEvent } from "../store/audit-store.js";
import { DashboardCache } from "../store/dashboard-cache.js";
import { followDashboardChanges } from "../store/dashboard-changes.js";
import { DashboardStore } from "../store/dashboard-store.js";
import { GroupCommit } from "../store/group-commit.js";
import { RevocationStore } from "../store/revocation-store.js";
import { sharedSecret } from "../store/secret-store.js";
import { OrganizationKeyStore, PrivateKeyStore, SigningKeyStore } from "../store/signing-key-store.js";
import type { Notifications, Sql, Unlisten } from "../store/sql.js";
import { inTransaction } from "../store/stores.js";
import { createEmbedSigner } from "../tokens/embed-signer.js";
import { createEmbedVerifier } from "../tokens/embed-verifier.js";
import { KeyRing } from "../tokens/key-ring.js";
import type { KeySealer } from "../tokens/key-sealing.js";
import type { Job } from "../jobs/job-runner.js";
import { PageTokenCodec } from "../tokens/page-token.js";
import { AuditEvents } from "./audit-events.js";
import { Dashboards } from "./dashboards.js";
import type { EmbedServices } from "./embed-services.js";
import { iframeTokenCredential, type IframeTokenCredential } from "./iframe-token-credential.js";
import { IframeTokens } from "./iframe-tokens.js";
import { signingKeyPurgeJob } from "./signing-key-jobs.js";
import { retentionJobs, type RetentionReporter } from "../store/retention.js";
import { SigningKeys, type RotationBudget } from "./signing-keys.js";
import { TenantPurge } from "./tenant-purge.js";

export interface Domain {
  dashboards: Dashboards;
  embed: EmbedServices;
  signingKeys: KeyRing;
  /** The background jobs the domain needs run (see jobs/). */
  jobs: Job[];
  /** Makes a bearer that is one of our iframe tokens a caller that may verify only itself. */
  iframeTokenCredential: IframeTokenCredential;
  /** Stops following other replicas' changes. */
  close: Unlisten;
}

/** The domain operations and what they stand on: stores, caches, keys. */
export async function createDomain(
  config: Config,
  sql: Sql & Notifications,
  clock: Clock,
  log: Logger,
  keys: { sealer: KeySealer; rotationBudget: RotationBudget },
  /** Where retention reports each batch (the composition root makes metrics of it). */
  retentionReport?: RetentionReporter,
): Promise<Domain> {
  const signingKeys = await KeyRing.open(
    {
      organizations: new OrganizationKeyStore(sql),
      global: new SigningKeyStore(sql),
      privateKeys: new PrivateKeyStore(sql),
    },
    { configuredKeyJwk: config.embed.signingKeyJwk, sealer: keys.sealer, now: clock },
  );
  const pageTokens = new PageTokenCodec(config.pageTokenSecret ?? (await sharedSecret(sql, "page_token_key")));
  // Page views read the same dashboards over and over: every replica caches them and forgets one the
  // moment any replica changes it.
  const dashboardCache = new DashboardCache(undefined, undefined, clock);
  const transaction = inTransaction(sql, dashboardCache);
  const close = await followDashboardChanges(sql, dashboardCache, log);
  const dashboards = new Dashboards({
    store: new DashboardStore(sql, dashboardCache),
    signer: createEmbedSigner(config.embed, signingKeys),
    pageTokens,
    embed: config.embed,
    transaction,
    mintAudit: new GroupCommit<NewAuditEvent>(
      (events) => new AuditStore(sql).recordMany(events),
      undefined,
      config.storage.mintAuditQueueMax,
      "group commit audit_events",
    ),
    now: clock,
  });
  const verifyEmbed = createEmbedVerifier(config.embed, signingKeys, clock);
  const embed: EmbedServices = {
    iframeTokens: new IframeTokens({
      verify: verifyEmbed,
      revocations: new RevocationStore(sql),
      transaction,
      embed: config.embed,
      now: clock,
    }),
    signingKeys: new SigningKeys({
      keys: signingKeys,
      transaction,
      embed: config.embed,
      rotationBudget: keys.rotationBudget,
      now: clock,
    }),
    auditEvents: new AuditEvents({ audit: new AuditStore(sql), pageTokens }),
    tenantPurge: new TenantPurge({ transaction, embed: config.embed, now: clock }),
  };
  const retention = retentionJobs(sql, {
    batchSize: config.storage.retentionBatchSize,
    maxBatches: 100,
    createRequestRetentionHours: config.storage.createRequestRetentionHours,
    auditRetentionDays: config.storage.auditRetentionDays,
    everyMs: config.storage.retentionIntervalMs,
    report: retentionReport,
  });
  const jobs: Job[] = [
    signingKeyPurgeJob(sql, config.embed.keyPurgeIntervalMs, log),
    ...retention.map((r) => ({
      name: r.name,
      everyMs: r.everyMs,
      run: async (now: Date) => {
        const { removed, batches, tables } = await r.run(now);
        if (removed > 0) log.info({ job: r.name, removed, batches, tables }, "retention removed rows");
      },
    })),
  ];
  const credential = iframeTokenCredential(verifyEmbed, config.auth.maxTokenBytes);
  return { dashboards, embed, signingKeys, jobs, iframeTokenCredential: credential, close };
}
