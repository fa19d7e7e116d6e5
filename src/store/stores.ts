import { AuditStore } from "./audit-store.js";
import { CreateRequestStore } from "./create-request-store.js";
import { DashboardStore } from "./dashboard-store.js";
import { RevocationStore } from "./revocation-store.js";
import { OrganizationKeyStore, PrivateKeyStore, SigningKeyStore } from "./signing-key-store.js";
import type { Deadline } from "../call/deadline.js";
import type { Sql } from "./sql.js";
import type { DashboardCache } from "./dashboard-cache.js";

/** Every store, bound to one connection or transaction. */
export interface Stores {
  dashboards: DashboardStore;
  audit: AuditStore;
  revocations: RevocationStore;
  /** The previous release's global ring. */
  signingKeys: SigningKeyStore;
  organizationKeys: OrganizationKeyStore;
  privateKeys: PrivateKeyStore;
  createRequests: CreateRequestStore;
  /** Runs fn on stores bound to a SAVEPOINT of this transaction: its failure undoes only what fn did. */
  savepoint<T>(fn: (stores: Stores) => Promise<T>): Promise<T>;
}

/**
 * Runs fn with stores bound to one transaction, so a change and its audit row commit (or fail) together;
 * never committed once the deadline has passed. Its connection is charged to the organization's share.
 */
export type InTransaction = <T>(
  fn: (stores: Stores) => Promise<T>,
  deadline?: Deadline,
  organization?: string,
) => Promise<T>;

/** cache: the replica's dashboard cache, so that writes through these stores evict what they change. */
export function storesOn(sql: Sql, cache?: DashboardCache): Stores {
  return {
    dashboards: new DashboardStore(sql, cache),
    audit: new AuditStore(sql),
    revocations: new RevocationStore(sql),
    signingKeys: new SigningKeyStore(sql),
    organizationKeys: new OrganizationKeyStore(sql),
    privateKeys: new PrivateKeyStore(sql),
    createRequests: new CreateRequestStore(sql),
    savepoint: (fn) => sql.transaction((tx) => fn(storesOn(tx, cache))),
  };
}

export function inTransaction(sql: Sql, cache?: DashboardCache): InTransaction {
  return (fn, deadline, organization) => sql.transaction((tx) => fn(storesOn(tx, cache)), deadline, organization);
}
