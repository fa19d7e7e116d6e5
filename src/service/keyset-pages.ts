import type { PageTokenCodec } from "../tokens/page-token.js";

/** AIP-158 sizes: 0 means the default; larger than the maximum is coerced, not refused. */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

export interface PageRequest {
  pageSize: number;
  pageToken: string;
  skip: number;
}

export interface Page<T> {
  items: T[];
  nextPageToken: string;
  totalSize: number;
}

/**
 * One page of a keyset-paginated list, for every List RPC alike: the token is
 * opened (and refused unless it was issued for scopeKey), one extra row tells
 * whether another page follows, and the next token points after the last row.
 */
export async function keysetPage<T extends { id: string }>(
  pageTokens: PageTokenCodec,
  scopeKey: string,
  request: PageRequest,
  fetch: (page: { afterId: string | undefined; skip: number; limit: number }) => Promise<T[]>,
  count: () => Promise<number>,
): Promise<Page<T>> {
  const cursor = request.pageToken === "" ? undefined : pageTokens.decode(request.pageToken, scopeKey);
  const pageSize = request.pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(request.pageSize, MAX_PAGE_SIZE);
  const [rows, totalSize] = await Promise.all([
    fetch({ afterId: cursor?.afterId, skip: request.skip, limit: pageSize + 1 }),
    count(),
  ]);
  const items = rows.slice(0, pageSize);
  const last = items.at(-1);
  const nextPageToken = rows.length > pageSize && last ? pageTokens.encode({ afterId: last.id }, scopeKey) : "";
  return { items, nextPageToken, totalSize };
}
