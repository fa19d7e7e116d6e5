import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from "jose";
import type { SigningKeyStore } from "../store/signing-key-store.js";

export const EMBED_ALGORITHM = "EdDSA";

/**
 * How long a replica trusts its copy of the stored keys. A rotation made by
 * another replica is seen within this time (and at once on an unknown kid), so
 * a retired key may still sign here for up to this long: the retirement grace
 * period includes it.
 */
export const KEY_REFRESH_MS = 5_000;
/** An unknown kid forces a re-read at most this often, so tokens with made-up kids cannot hammer the database. */
const UNKNOWN_KID_REFRESH_MS = 1_000;

interface RingKey {
  kid: string;
  /** The published form: public members only, plus kid, alg and use. */
  publicJwk: JWK;
  privateJwk: JWK;
  /** Signs new tokens (the configured key, else the stored active one). */
  signs: boolean;
  /** When a retired key stops verifying; undefined while it is active or configured. */
  verifyUntil: Date | undefined;
}

export interface KeyRingOptions {
  /** EMBED_SIGNING_KEY: when set it signs every token, whatever storage says. */
  configuredKeyJwk: string | undefined;
  now?: () => number;
}

/**
 * The iframe-token keys every replica agrees on: the active signer, the next
 * key (published ahead of its activation), and the retired keys still inside
 * their verification window, read from storage and cached briefly. A key configured by environment wins as the signer; stored
 * keys stay published beside it so tokens they signed keep verifying.
 */
export class KeyRing {
  private snapshot: { loadedAt: number; keys: RingKey[] } | undefined;
  private loading: Promise<RingKey[]> | undefined;
  private lastForcedRefresh = 0;
  private readonly imported = new Map<string, Promise<CryptoKey>>();
  private readonly now: () => number;

  private constructor(
    private readonly store: SigningKeyStore,
    private readonly configured: RingKey | undefined,
    options: KeyRingOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Opens the ring; without a configured key, the first replica generates and stores the first key. */
  static async open(store: SigningKeyStore, options: KeyRingOptions): Promise<KeyRing> {
    const configured = options.configuredKeyJwk ? await configuredKey(options.configuredKeyJwk) : undefined;
    if (!configured) {
      if (!(await store.active())) await store.activateIfNone(await generateSigningKey());
      // Published from the start, so even the first rotation activates a key renderers already know.
      await store.prepareNextIfNone(await generateSigningKey());
    }
    return new KeyRing(store, configured, options);
  }

  /** True when EMBED_SIGNING_KEY is set: rotation is then the operator's job, not storage's. */
  get isConfiguredByEnvironment(): boolean {
    return this.configured !== undefined;
  }

  async signingKey(): Promise<{ kid: string; key: CryptoKey }> {
    const signer = this.configured ?? (await this.keys()).find((k) => k.signs);
    if (!signer) throw new Error("no active iframe-token signing key");
    return { kid: signer.kid, key: await this.importKey(signer, "private") };
  }

  /** The public key for kid if it may still verify tokens, re-reading storage once on an unknown kid. */
  async verificationKey(kid: string): Promise<CryptoKey | undefined> {
    let key = this.find(await this.keys(), kid);
    if (!key && this.now() - this.lastForcedRefresh >= UNKNOWN_KID_REFRESH_MS) {
      this.lastForcedRefresh = this.now();
      key = this.find(await this.keys(true), kid);
    }
    return key && this.importKey(key, "public");
  }

  /** Every key that may verify a token right now, public members only: the JWKS. */
  async published(): Promise<JWK[]> {
    const keys = await this.keys();
    return keys.filter((k) => this.isLive(k)).map((k) => ({ ...k.publicJwk }));
  }

  /** Forgets the cached keys (after this replica rotated them). */
  invalidate(): void {
    this.snapshot = undefined;
  }

  private find(keys: RingKey[], kid: string): RingKey | undefined {
    return keys.find((k) => k.kid === kid && this.isLive(k));
  }

  private isLive(k: RingKey): boolean {
    return k.verifyUntil === undefined || k.verifyUntil.getTime() > this.now();
  }

  private async keys(force = false): Promise<RingKey[]> {
    const fresh = this.snapshot && this.now() - this.snapshot.loadedAt < KEY_REFRESH_MS;
    if (fresh && !force) return this.snapshot!.keys;
    // One read in flight per replica, however many calls need it.
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<RingKey[]> {
    const loadedAt = this.now();
    const stored = await this.store.live(new Date(loadedAt));
    const keys: RingKey[] = stored.map((k) => ({
      kid: k.kid,
      publicJwk: publishedForm(k.publicJwk, k.kid),
      privateJwk: k.privateJwk,
      signs: k.role === "active" && !this.configured,
      verifyUntil: k.role === "retired" ? k.verifyUntil : undefined,
    }));
    if (this.configured) keys.unshift(this.configured);
    this.snapshot = { loadedAt, keys };
    return keys;
  }

  private importKey(k: RingKey, half: "private" | "public"): Promise<CryptoKey> {
    const cacheKey = `${half}:${k.kid}`;
    let imported = this.imported.get(cacheKey);
    if (!imported) {
      const jwk = half === "private" ? k.privateJwk : k.publicJwk;
      imported = importJWK({ ...jwk, alg: EMBED_ALGORITHM }, EMBED_ALGORITHM) as Promise<CryptoKey>;
      this.imported.set(cacheKey, imported);
    }
    return imported;
  }
}

/** A fresh Ed25519 key whose kid is its RFC 7638 thumbprint. */
export async function generateSigningKey(): Promise<{ kid: string; privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey } = await generateKeyPair(EMBED_ALGORITHM, { crv: "Ed25519", extractable: true });
  const privateJwk = await exportJWK(privateKey);
  const publicJwk = publicMembers(privateJwk);
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, privateJwk: { ...privateJwk, kid }, publicJwk: publishedForm(publicJwk, kid) };
}

async function configuredKey(text: string): Promise<RingKey> {
  const privateJwk = JSON.parse(text) as JWK;
  const kid = privateJwk.kid ?? (await calculateJwkThumbprint(publicMembers(privateJwk)));
  return { kid, privateJwk, publicJwk: publishedForm(privateJwk, kid), signs: true, verifyUntil: undefined };
}

/** Only the members an Ed25519 public key has: whatever else a stored or configured JWK carries never leaks. */
function publicMembers(jwk: JWK): JWK {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
}

function publishedForm(jwk: JWK, kid: string): JWK {
  return { ...publicMembers(jwk), kid, alg: EMBED_ALGORITHM, use: "sig" };
}
