import type { Deadline } from "../call/deadline.js";
import { ServiceError } from "../errors/service-error.js";
import type { Exchange } from "./exchange.js";
import { isHttp2 } from "./http-types.js";

export type TooLarge = (maxBytes: number, size?: number) => ServiceError;

/** As connect-node words it, so clients see the same message from either. */
export const tooLarge: TooLarge = (maxBytes, size) =>
  new ServiceError(
    "MESSAGE_TOO_LARGE",
    size === undefined
      ? `message size is larger than configured readMaxBytes ${maxBytes}`
      : `message size ${size} is larger than configured readMaxBytes ${maxBytes}`,
  );

/**
 * Feeds a request's body to onChunk as it arrives, every byte counted
 * against the process-wide budget while the request lasts, until the body
 * ends (resolves) or onChunk refuses it, the deadline passes or the client
 * goes away (rejects with that reason). On refusal nothing more is taken: what
 * the client still sends is discarded by the server, never buffered. Nothing
 * is read unless a call asks for it, so a request refused from its headers
 * (unauthenticated, malformed) costs its sender nothing here.
 */
export function consumeBody(
  x: Exchange,
  deadline: Deadline,
  authenticated: boolean,
  onChunk: (chunk: Buffer) => void,
): void | Promise<void> {
  const req = x.req;
  const ended = deadline.reasonNow();
  if (ended) throw ended;
  // An HTTP/1.1 body that has all arrived (a small request, in the packets of its headers) is in the
  // request's buffer already: taken from it at once (returning, or throwing the refusal, with no
  // promise), with no listeners and no turn of the event loop. (HTTP/2's request reads from its
  // stream on demand, so it is never complete before it is read.)
  if (req.complete && req.readableFlowing === null && !isHttp2(req)) {
    let chunk: Buffer | null;
    while ((chunk = req.read() as Buffer | null) !== null) {
      x.reserve(chunk.length, authenticated);
      onChunk(chunk);
    }
    return;
  }
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let stopWaiting = () => {};
    const settle = (err: Error | undefined) => {
      if (settled) return;
      settled = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
      stopWaiting();
      if (err === undefined) resolve();
      else {
        req.pause();
        reject(err);
      }
    };
    const onData = (chunk: Buffer) => {
      try {
        x.reserve(chunk.length, authenticated);
        onChunk(chunk);
      } catch (err) {
        settle(err as Error);
      }
    };
    const onEnd = () => settle(undefined);
    const onError = () => settle(new ServiceError("CANCELED", "the client broke off the request"));
    const onClose = () => {
      if (!req.complete) settle(new ServiceError("CANCELED", "the client broke off the request"));
    };
    stopWaiting = deadline.onDone(settle);
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onError);
    req.once("close", onClose);
  });
}

/**
 * A request's whole body, refused (in the wire's words) as soon as it passes
 * maxBytes: at once when Content-Length says so, else while it streams. A body
 * that has all arrived is returned (or refused) at once, with no promise.
 */
export function readBody(
  x: Exchange,
  maxBytes: number,
  deadline: Deadline,
  authenticated: boolean,
  refusal: TooLarge = tooLarge,
): Buffer | Promise<Buffer> {
  const declared = Number(x.req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) throw refusal(maxBytes, declared);
  const chunks: Buffer[] = [];
  let size = 0;
  const whole = () => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
  const consumed = consumeBody(x, deadline, authenticated, (chunk) => {
    size += chunk.length;
    if (size > maxBytes) throw refusal(maxBytes);
    chunks.push(chunk);
  });
  return consumed instanceof Promise ? consumed.then(whole) : whole();
}
