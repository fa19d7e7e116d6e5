import type { Deadline } from "../call/deadline.js";
import { ServiceError } from "../errors/service-error.js";
import type { Exchange } from "./exchange.js";

export const tooLarge = (limit: number) =>
  new ServiceError("MESSAGE_TOO_LARGE", `the request is larger than the ${limit}-byte limit`);

/**
 * A request's whole body, refused as soon as it passes maxBytes (at once when
 * Content-Length says so, else while it streams), with every byte counted
 * against the process-wide budget while the request lasts. It gives up when
 * the call's deadline passes or the client goes away, with that as the reason.
 * Nothing is read unless a call asks for it, so a request refused from its
 * headers (unauthenticated, malformed) costs its sender nothing here.
 */
export function readBody(x: Exchange, maxBytes: number, deadline: Deadline, authenticated: boolean): Promise<Buffer> {
  const declared = Number(x.req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(tooLarge(maxBytes));
  const req = x.req;
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (err: Error | undefined, body?: Buffer) => {
      if (settled) return;
      settled = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
      deadline.signal.removeEventListener("abort", onAbort);
      if (err === undefined) resolve(body!);
      else {
        // Stop taking bytes; what the client still sends is discarded by the server, never buffered.
        req.pause();
        reject(err);
      }
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) return settle(tooLarge(maxBytes));
      try {
        x.reserve(chunk.length, authenticated);
      } catch (err) {
        return settle(err as Error);
      }
      chunks.push(chunk);
    };
    const onEnd = () => settle(undefined, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    const onError = () => settle(new ServiceError("CANCELED", "the client broke off the request"));
    const onClose = () => {
      if (!req.complete) settle(new ServiceError("CANCELED", "the client broke off the request"));
    };
    const onAbort = () => settle(deadline.signal.reason as ServiceError);
    if (deadline.done) return settle(deadline.signal.reason as ServiceError);
    deadline.signal.addEventListener("abort", onAbort);
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onError);
    req.once("close", onClose);
  });
}
