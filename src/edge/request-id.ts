import { randomUUID } from "node:crypto";

export const REQUEST_ID_HEADER = "x-request-id";

/** What a client may send as its request id: short and printable, so it cannot forge log lines. */
const ACCEPTABLE = /^[A-Za-z0-9._:/+=-]{1,128}$/;

/** The client's x-request-id when it is acceptable, otherwise a fresh one. */
export function requestIdFor(sent: string | string[] | undefined): string {
  const value = Array.isArray(sent) ? sent[0] : sent;
  return value !== undefined && ACCEPTABLE.test(value) ? value : randomUUID();
}
