import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { ContextValues, HandlerContext } from "@connectrpc/connect";
import type { Deadline } from "../../call/deadline.js";
import type { HttpRequest } from "../http-types.js";

/**
 * The context a unary (or client-streaming) handler runs with: connect's
 * public HandlerContext interface, made for one call. connect's
 * createHandlerContext builds two AbortControllers, a deadline timer and three
 * Headers per call, and its abort() at the end makes a DOMException; on a
 * cached read that was a sixth of the service's CPU. Here the signal is the
 * call's own Deadline (which fires when it passes or the client goes away),
 * and each Headers is made only when the handler touches it. Streaming calls
 * keep createHandlerContext: their context must end with the stream.
 */
export class CallContext implements HandlerContext {
  #requestHeader: Headers | undefined;
  #responseHeader: Headers | undefined;
  #responseTrailer: Headers | undefined;

  constructor(
    readonly service: DescService,
    readonly method: DescMethod,
    readonly protocolName: string,
    readonly requestMethod: string,
    readonly url: string,
    readonly values: ContextValues,
    private readonly deadline: Deadline,
    private readonly headers: HttpRequest["headers"],
  ) {}

  get signal(): AbortSignal {
    return this.deadline.signal;
  }

  readonly timeoutMs = (): number | undefined => this.deadline.remainingMs();

  get requestHeader(): Headers {
    return (this.#requestHeader ??= new Headers(plainHeaders(this.headers)));
  }

  get responseHeader(): Headers {
    return (this.#responseHeader ??= new Headers());
  }

  get responseTrailer(): Headers {
    return (this.#responseTrailer ??= new Headers());
  }

  /** The headers the handler set, if it set any. */
  get setHeader(): Headers | undefined {
    return this.#responseHeader;
  }

  /** The trailers the handler set, if it set any. */
  get setTrailer(): Headers | undefined {
    return this.#responseTrailer;
  }
}

/** Request headers for a handler context: pseudo-headers dropped, repeated ones joined. */
export function plainHeaders(headers: HttpRequest["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) {
    if (name.startsWith(":")) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}
