import { webcrypto } from "node:crypto";
import type { JWK } from "jose";
import type { KeyEncryptionKey } from "../config/config.js";

/** The format of a sealed private key; bumped if the record's layout or its associated data ever change. */
export const SEALED_KEY_VERSION = 1;

/** What the database holds instead of a private JWK: no member of it is key material in the clear. */
export interface SealedPrivateKey {
  v: typeof SEALED_KEY_VERSION;
  alg: "A256GCM";
  /** The id of the key-encryption key that sealed it (KEY_ENCRYPTION_KEYS). */
  kek: string;
  /** base64url */
  iv: string;
  /** base64url: the ciphertext with its 16-byte tag. */
  ct: string;
}

/** Which key a record belongs to; sealed into the associated data, so a record moved to another key does not open. */
export interface SealBinding {
  /** undefined for the global ring of the previous release. */
  organizationId: string | undefined;
  kid: string;
}

/** A sealed key that cannot be opened: unknown or wrong key-encryption key, or a damaged record. Never a fallback. */
export class KeySealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeySealError";
  }
}

const subtle = webcrypto.subtle;
type CryptoKey = webcrypto.CryptoKey;
const b64 = (bytes: ArrayBuffer | Uint8Array) => Buffer.from(bytes as Uint8Array).toString("base64url");

/**
 * Envelope encryption of the signing keys kept in the database: each private
 * JWK is sealed with AES-256-GCM (WebCrypto) under the first key-encryption
 * key, its kid and organization bound as associated data. Older keys are kept
 * to open what they sealed until `npm run keys -- reseal` has re-sealed it.
 */
export class KeySealer {
  private constructor(private readonly keys: Map<string, CryptoKey>) {}

  static async create(keks: readonly KeyEncryptionKey[]): Promise<KeySealer> {
    if (keks.length === 0) throw new KeySealError("no key-encryption key configured");
    const keys = new Map<string, CryptoKey>();
    for (const k of keks) {
      keys.set(k.id, await subtle.importKey("raw", k.key, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]));
    }
    return new KeySealer(keys);
  }

  /** The key-encryption key that seals (the first configured). */
  get currentKekId(): string {
    return this.keys.keys().next().value!;
  }

  has(kekId: string): boolean {
    return this.keys.has(kekId);
  }

  async seal(privateJwk: JWK, binding: SealBinding): Promise<SealedPrivateKey> {
    const kek = this.currentKekId;
    const iv = webcrypto.getRandomValues(new Uint8Array(12));
    const plaintext = new TextEncoder().encode(JSON.stringify(privateJwk));
    const ct = await subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: associatedData(binding) },
      this.keys.get(kek)!,
      plaintext,
    );
    return { v: SEALED_KEY_VERSION, alg: "A256GCM", kek, iv: b64(iv), ct: b64(ct) };
  }

  async unseal(record: unknown, binding: SealBinding): Promise<JWK> {
    const where = `signing key "${binding.kid}"${binding.organizationId ? ` of organization "${binding.organizationId}"` : ""}`;
    const r = record as Partial<SealedPrivateKey> | null;
    if (!r || typeof r !== "object" || r.v !== SEALED_KEY_VERSION || r.alg !== "A256GCM") {
      throw new KeySealError(`${where} is not a sealed key of a format this release reads`);
    }
    const key = typeof r.kek === "string" ? this.keys.get(r.kek) : undefined;
    if (!key) {
      throw new KeySealError(
        `${where} is sealed with key-encryption key "${String(r.kek)}", which KEY_ENCRYPTION_KEYS does not list`,
      );
    }
    let plaintext: ArrayBuffer;
    try {
      plaintext = await subtle.decrypt(
        { name: "AES-GCM", iv: Buffer.from(r.iv ?? "", "base64url"), additionalData: associatedData(binding) },
        key,
        Buffer.from(r.ct ?? "", "base64url"),
      );
    } catch {
      throw new KeySealError(
        `${where} does not open with key-encryption key "${r.kek}": the key is wrong or the record was altered or moved`,
      );
    }
    return JSON.parse(new TextDecoder().decode(plaintext)) as JWK;
  }
}

/** JSON of a fixed-length array: unambiguous whatever characters the ids hold. */
function associatedData({ organizationId, kid }: SealBinding): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify(["dashboard-service/signing-key", SEALED_KEY_VERSION, organizationId ?? null, kid]),
  );
}
