/**
 * The PROXY protocol (HAProxy's, versions 1 and 2), which L4 load balancers
 * put before the first byte of a connection to say whom it is really from.
 * Parsed only on connections from trusted proxies, when the listener is told
 * to expect it; anyone else could name any address.
 */
export type ProxyHeader =
  /** The header is complete: consumed bytes, and the client's address (undefined: LOCAL/UNKNOWN, use the peer). */
  | { kind: "done"; length: number; sourceAddress: string | undefined }
  | { kind: "need-more" }
  | { kind: "invalid"; problem: string };

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from("PROXY ");
/** The longest a version 1 line may be (spec: 107 bytes, CRLF included). */
const V1_MAX = 107;
/** Version 2 addresses: at most the 216 bytes of two AF_UNIX paths, plus generous room for TLVs. */
const V2_MAX_PAYLOAD = 4096;

export function parseProxyHeader(buffer: Buffer): ProxyHeader {
  const n = Math.min(buffer.length, V2_SIGNATURE.length);
  if (buffer.subarray(0, n).equals(V2_SIGNATURE.subarray(0, n))) {
    return buffer.length < 16 ? { kind: "need-more" } : parseV2(buffer);
  }
  const m = Math.min(buffer.length, V1_PREFIX.length);
  if (buffer.subarray(0, m).equals(V1_PREFIX.subarray(0, m))) {
    return buffer.length < V1_PREFIX.length ? { kind: "need-more" } : parseV1(buffer);
  }
  return { kind: "invalid", problem: "the connection did not start with a PROXY protocol header" };
}

function parseV1(buffer: Buffer): ProxyHeader {
  const end = buffer.indexOf("\r\n");
  if (end === -1) {
    return buffer.length >= V1_MAX ? { kind: "invalid", problem: "PROXY v1 line too long" } : { kind: "need-more" };
  }
  if (end + 2 > V1_MAX) return { kind: "invalid", problem: "PROXY v1 line too long" };
  const parts = buffer.subarray(0, end).toString("latin1").split(" ");
  if (parts[1] === "UNKNOWN") return { kind: "done", length: end + 2, sourceAddress: undefined };
  if (parts.length !== 6 || (parts[1] !== "TCP4" && parts[1] !== "TCP6")) {
    return { kind: "invalid", problem: "malformed PROXY v1 line" };
  }
  return { kind: "done", length: end + 2, sourceAddress: parts[2] };
}

function parseV2(buffer: Buffer): ProxyHeader {
  const versionCommand = buffer[12]!;
  if (versionCommand >> 4 !== 2) return { kind: "invalid", problem: "unsupported PROXY protocol version" };
  const command = versionCommand & 0x0f;
  const family = buffer[13]! >> 4;
  const length = buffer.readUInt16BE(14);
  if (length > V2_MAX_PAYLOAD) return { kind: "invalid", problem: "PROXY v2 header too long" };
  if (buffer.length < 16 + length) return { kind: "need-more" };
  const total = 16 + length;
  // LOCAL: a health check by the proxy itself; the peer is the connection's own.
  if (command === 0) return { kind: "done", length: total, sourceAddress: undefined };
  if (command !== 1) return { kind: "invalid", problem: "unsupported PROXY v2 command" };
  if (family === 1 && length >= 12) {
    return { kind: "done", length: total, sourceAddress: [...buffer.subarray(16, 20)].join(".") };
  }
  if (family === 2 && length >= 36) {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(buffer.readUInt16BE(16 + 2 * i).toString(16));
    return { kind: "done", length: total, sourceAddress: groups.join(":") };
  }
  // AF_UNSPEC or AF_UNIX: no client address to name.
  return { kind: "done", length: total, sourceAddress: undefined };
}
