import { AuditStore } from "./audit-store.js";
import { CreateRequestStore } from "./create-request-store.js";
import { DashboardStore } from "./dashboard-store.js";
import { RevocationStore } from "./revocation-store.js";
import { OrganizationKeyStore, PrivateKeyStore, SigningKeyStore } from "./signing-key-store.js";
import type { Deadline } from "../call/deadline.js";
import type { Sql } from "./sql.js";

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
}

/**
 * Runs fn with stores bound to one transaction, so a change and its audit row commit (or fail) together;
 * never committed once the deadline has passed.
 */
export type InTransaction = <T>(fn: (stores: Stores) => Promise<T>, deadline?: Deadline) => Promise<T>;

export function storesOn(sql: Sql): Stores {
  return {
    dashboards: new DashboardStore(sql),
    audit: new AuditStore(sql),
    revocations: new RevocationStore(sql),
    signingKeys: new SigningKeyStore(sql),
    organizationKeys: new OrganizationKeyStore(sql),
    privateKeys: new PrivateKeyStore(sql),
    createRequests: new CreateRequestStore(sql),
  };
}

export function inTransaction(sql: Sql): InTransaction {
  return (fn, deadline) => sql.transaction((tx) => fn(storesOn(tx)), deadline);
}
