import { malformed, ServiceError } from "../../errors/service-error.js";
import { tooLarge } from "../body.js";

/** The length-prefixed framing shared by gRPC, gRPC-Web and Connect streaming: a flags byte, a 4-byte length. */
export interface Envelope {
  flags: number;
  data: Uint8Array;
}

export const FLAG_COMPRESSED = 0x01;
/** Connect streaming: the last frame, a JSON end-of-stream message. */
export const FLAG_END_STREAM = 0x02;
/** gRPC-Web: the last frame, the trailers. */
export const FLAG_TRAILER = 0x80;

export function encodeEnvelope(flags: number, data: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + data.byteLength);
  frame[0] = flags;
  frame.writeUInt32BE(data.byteLength, 1);
  frame.set(data, 5);
  return frame;
}

/**
 * Splits a byte stream into envelopes, checking each length against maxBytes
 * before a byte of it is kept, so a frame that claims 4 GiB is refused on its
 * header (MESSAGE_TOO_LARGE), not buffered.
 */
export class EnvelopeSplitter {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly maxBytes: number) {}

  /** The envelopes completed by chunk, in order. */
  push(chunk: Buffer): Envelope[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Envelope[] = [];
    while (this.pending.length >= 5) {
      const length = this.pending.readUInt32BE(1);
      if (length > this.maxBytes) throw tooLarge(this.maxBytes, length);
      if (this.pending.length < 5 + length) break;
      out.push({ flags: this.pending[0]!, data: this.pending.subarray(5, 5 + length) });
      this.pending = this.pending.subarray(5 + length);
    }
    return out;
  }

  /** Bytes held for an envelope not yet complete. */
  get buffered(): number {
    return this.pending.length;
  }

  /** At the end of the stream: a partial frame left over is a framing error. */
  end(): void {
    if (this.pending.length > 0) throw malformed("protocol error: incomplete envelope");
  }
}

/** A unary method's request carries exactly one message; connect answers a stream to it UNIMPLEMENTED. */
export const missingMessage = () =>
  new ServiceError("WRONG_MESSAGE_COUNT", "protocol error: missing input message for unary method");
export const extraMessage = () =>
  new ServiceError("WRONG_MESSAGE_COUNT", "protocol error: received extra input message for unary method");
