import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { Deadline } from "../../call/deadline.js";
import { malformed, ServiceError } from "../../errors/service-error.js";
import { consumeBody } from "../body.js";
import type { Exchange } from "../exchange.js";
import type { HttpResponse } from "../http-types.js";
import type { Compression } from "./compression.js";
import { EnvelopeSplitter, extraMessage, FLAG_COMPRESSED, missingMessage, type Envelope } from "./envelope.js";
import { decodeMessage } from "./messages.js";

/** How an enveloped request (gRPC, gRPC-Web, Connect streaming) is decoded. */
export interface EnvelopedInput {
  schema: DescMessage;
  binary: boolean;
  compression: Compression | undefined;
  maxBytes: number;
  /** Flags a request frame may carry besides compression (none but data frames, for requests). */
  protocolName: string;
}

async function payloadOf(envelope: Envelope, o: EnvelopedInput): Promise<Uint8Array> {
  if ((envelope.flags & ~FLAG_COMPRESSED) !== 0) {
    throw malformed(`protocol error: unexpected ${o.protocolName} frame flags ${envelope.flags}`);
  }
  if ((envelope.flags & FLAG_COMPRESSED) === 0) return envelope.data;
  if (!o.compression) {
    throw new ServiceError("UNDECLARED_COMPRESSION", "received compressed envelope, but do not know how to decompress");
  }
  return o.compression.decompress(envelope.data, o.maxBytes);
}

/**
 * The one message a unary or server-streaming call's request carries. Frames
 * are split as the bytes arrive, so a frame that claims more than the limit is
 * refused on its header, and at most two frames are ever held (the second
 * only to say there was one too many).
 */
export async function readSingleEnveloped(
  x: Exchange,
  o: EnvelopedInput,
  deadline: Deadline,
  authenticated: boolean,
): Promise<MessageShape<DescMessage>> {
  const splitter = new EnvelopeSplitter(o.maxBytes);
  const envelopes: Envelope[] = [];
  await consumeBody(x, deadline, authenticated, (chunk) => {
    envelopes.push(...splitter.push(chunk));
    if (envelopes.length > 1) throw extraMessage();
  });
  splitter.end();
  if (envelopes.length === 0) throw missingMessage();
  return decodeMessage(o.schema, await payloadOf(envelopes[0]!, o), o.binary);
}

/**
 * The messages of a client- or bidirectional-streaming request, decoded as
 * they arrive. Bytes are counted against the body budget only while they wait
 * to be consumed, so a long stream of small messages holds little.
 */
export async function* readEnvelopedStream(
  x: Exchange,
  o: EnvelopedInput,
  deadline: Deadline,
  authenticated: boolean,
): AsyncGenerator<MessageShape<DescMessage>> {
  const splitter = new EnvelopeSplitter(o.maxBytes);
  let held = 0;
  try {
    for await (const chunk of x.req as AsyncIterable<Buffer>) {
      deadline.throwIfDone();
      x.reserve(chunk.length, authenticated);
      held += chunk.length;
      for (const envelope of splitter.push(chunk)) {
        const message = decodeMessage(o.schema, await payloadOf(envelope, o), o.binary);
        const consumed = held - splitter.buffered;
        x.release(consumed, authenticated);
        held -= consumed;
        yield message;
      }
    }
    splitter.end();
  } catch (err) {
    if (err instanceof ServiceError) throw err;
    const ended = deadline.reasonNow();
    if (ended) throw ended;
    throw new ServiceError("CANCELED", "the client broke off the request stream", { cause: err });
  } finally {
    if (held > 0) x.release(held, authenticated);
  }
}

/** Writes one chunk, waiting when the client is slow to read (backpressure); fails when it has gone. */
export function writeChunk(res: HttpResponse, chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    if (res.destroyed) {
      reject(new ServiceError("CANCELED", "the client went away"));
      return;
    }
    const ok = (res as NodeJS.WritableStream).write(chunk);
    if (ok) {
      resolve();
      return;
    }
    const onDrain = () => {
      res.off("close", onClose);
      resolve();
    };
    const onClose = () => {
      res.off("drain", onDrain);
      reject(new ServiceError("CANCELED", "the client went away"));
    };
    res.once("drain", onDrain);
    res.once("close", onClose);
  });
}
