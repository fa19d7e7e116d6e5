import {
  create,
  fromBinary,
  fromJsonString,
  isMessage,
  toBinary,
  toJsonString,
  type DescMessage,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { encodedOnce } from "../../call/shared-answers.js";
import { malformed } from "../../errors/service-error.js";

/** How long a decode error's message may get: it may quote the request, which is the sender's to fill. */
const MAX_ERROR_TEXT = 300;

/**
 * A request message from its bytes, in the format the request declared. As
 * connect: unknown JSON fields are ignored, so older servers accept newer
 * clients. Anything that does not decode is MALFORMED_REQUEST, with
 * protobuf-es's own explanation made safe to send back (well-formed, bounded).
 */
export function decodeMessage<Desc extends DescMessage>(
  schema: Desc,
  bytes: Uint8Array,
  binary: boolean,
): MessageShape<Desc> {
  try {
    if (binary) return fromBinary(schema, bytes);
    // As connect-node: bytes that are not UTF-8 become U+FFFD, so the field's own rule names what is wrong.
    return fromJsonString(schema, new TextDecoder().decode(bytes), { ignoreUnknownFields: true });
  } catch (err) {
    throw malformed(describeDecodeError(err, binary), err);
  }
}

/** protobuf-es's explanation, worded as connect-node words it ("parse binary: …"), made safe to send back. */
function describeDecodeError(err: unknown, binary: boolean): string {
  const text = err instanceof Error ? err.message : String(err);
  const safe = text.toWellFormed();
  const bounded = safe.length > MAX_ERROR_TEXT ? `${safe.slice(0, MAX_ERROR_TEXT)}…` : safe;
  return binary ? `parse binary: ${bounded}` : bounded;
}

/** An answer, whether the handler returned a message or the shape to make one of. */
export function answerMessage<Desc extends DescMessage>(
  schema: Desc,
  value: MessageShape<Desc> | MessageInitShape<Desc>,
): MessageShape<Desc> {
  return isMessage(value, schema) ? value : create(schema, value);
}

export function encodeMessage<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>,
  binary: boolean,
): Uint8Array {
  return encodedOnce(message, binary, () =>
    binary ? toBinary(schema, message) : Buffer.from(toJsonString(schema, message)),
  );
}
