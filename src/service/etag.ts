import { createHash } from "node:crypto";

/**
 * A dashboard's etag (AIP-154): opaque, strong, and different for every
 * version, quoted as an HTTP entity tag so the REST routes send it as is in
 * ETag and compare it with If-Match.
 */
export function etagOf(dashboard: { id: string; version: number }): string {
  return `"${createHash("sha256").update(`${dashboard.id}/${dashboard.version}`).digest("base64url").slice(0, 22)}"`;
}
