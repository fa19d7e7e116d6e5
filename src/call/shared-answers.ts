/**
 * Answers many calls share, encoded once per wire format. A message is shared only when it is
 * made from an immutable record (a cached dashboard's version), so its bytes can never differ from
 * what encoding it again would give, and they go when the record leaves the cache (weak keys).
 */
const encodings = new WeakMap<object, { binary?: Uint8Array; json?: Uint8Array }>();

/** The one answer message for `record`, made on first use; marked so its encodings are kept. */
export function sharedAnswer<R extends object, M extends object>(
  answers: WeakMap<R, M>,
  record: R,
  make: (record: R) => M,
): M {
  let answer = answers.get(record);
  if (!answer) {
    answer = make(record);
    answers.set(record, answer);
    encodings.set(answer, {});
  }
  return answer;
}

/** A message's bytes: encoded once if the message is shared, else every time. */
export function encodedOnce(message: object, binary: boolean, encode: () => Uint8Array): Uint8Array {
  const slot = encodings.get(message);
  if (!slot) return encode();
  return binary ? (slot.binary ??= encode()) : (slot.json ??= encode());
}
