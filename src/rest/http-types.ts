import type { PlainRoute } from "../server/http-handler.js";

/** The request and response a plain route receives: HTTP/1.1 or HTTP/2 (compatibility API). */
export type PlainRequest = Parameters<PlainRoute>[0];
export type PlainResponse = Parameters<PlainRoute>[1];
