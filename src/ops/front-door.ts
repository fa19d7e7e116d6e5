import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { serviceErrorToConnect } from "../errors/connect-error.js";
import { ServiceError } from "../errors/service-error.js";
import type { RequestHandler } from "../server/one-port-listener.js";
import { attachRecord, type RequestRecord } from "./request-context.js";
import { REQUEST_ID_HEADER, requestIdFor } from "./request-id.js";

export interface FrontDoor {
  handler: RequestHandler;
  /** From now on, new calls are answered UNAVAILABLE; calls already inside carry on. */
  startDraining(): void;
}

type Req = Parameters<RequestHandler>[0];
type Res = Parameters<RequestHandler>[1];

/** Called when an answer has been sent, with what the request's work recorded. */
export type AnswerObserver = (req: Req, res: Res, record: RequestRecord, seconds: number) => void;

/**
 * What every request passes before routing: it gets a request id (the
 * client's x-request-id, or a new one; echoed in the response headers and
 * seen by the call log), and once draining has started, a call that arrives
 * is refused with UNAVAILABLE in its own protocol, so clients retry elsewhere
 * instead of seeing a reset. The decision is made when the request arrives:
 * a call already being read when draining starts is served to the end.
 * `servedWhileDraining` names what is still answered (probes, metrics).
 */
export function frontDoor(
  handler: RequestHandler,
  servedWhileDraining: (req: Req) => boolean,
  onAnswered?: AnswerObserver,
): FrontDoor {
  let draining = false;
  return {
    startDraining() {
      draining = true;
    },
    handler(req, res) {
      const id = requestIdFor(req.headers[REQUEST_ID_HEADER]);
      // Normalized in place so the Connect handler (and the call log) sees the same id the client gets back.
      req.headers[REQUEST_ID_HEADER] = id;
      res.setHeader(REQUEST_ID_HEADER, id);
      if (draining) {
        // An HTTP/1.1 connection is not reused for another call while draining.
        if (req.httpVersionMajor === 1) res.setHeader("connection", "close");
        if (!servedWhileDraining(req)) {
          refuseUnavailable(req, res);
          return;
        }
      }
      // Read now: once the answer is finished Node detaches the socket from the request.
      const record: RequestRecord = { requestId: id, clientAddress: req.socket?.remoteAddress };
      if (onAnswered) {
        const started = performance.now();
        res.once("finish", () => onAnswered(req, res, record, (performance.now() - started) / 1000));
      }
      attachRecord(req, record);
      handler(req, res);
    },
  };
}

const SHUTTING_DOWN = () =>
  serviceErrorToConnect(
    new ServiceError("UNAVAILABLE", "the server is shutting down; retry the call", { retryAfterMs: 1000 }),
  );

/** The longest a refused call's body is read before answering anyway. */
const REFUSAL_BODY_WAIT_MS = 1_000;

function refuseUnavailable(req: Req, res: Res): void {
  // Answer only once the body has arrived (it is read and dropped): answering and closing while the
  // client still writes would make it see EPIPE or a reset instead of UNAVAILABLE.
  let answered = false;
  const answer = () => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    writeRefusal(req, res);
  };
  const timer = setTimeout(answer, REFUSAL_BODY_WAIT_MS);
  req.once("end", answer);
  req.once("error", answer);
  req.resume();
}

function writeRefusal(req: Req, res: Res): void {
  const contentType = req.headers["content-type"] ?? "";
  const error = SHUTTING_DOWN();
  if (contentType.startsWith("application/grpc")) {
    // gRPC and gRPC-Web: a "trailers-only" answer, the status in the headers of an HTTP 200.
    const status = setTrailerStatus(new Headers(), error);
    res.writeHead(200, { "content-type": contentType, ...Object.fromEntries(status) });
    res.end();
    return;
  }
  // Connect (and anything else): the Connect error JSON, which HTTP 503 maps to unavailable.
  res.writeHead(503, { "content-type": "application/json", "retry-after": "1" });
  res.end(errorToJsonBytes(error, {}));
}
