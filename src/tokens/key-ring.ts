import { createHash } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from "jose";
import { LRUCache } from "lru-cache";
import type {
  LiveSigningKey,
  NewSigningKey,
  OrganizationKeyStore,
  PrivateKeyStore,
  SigningKeyStore,
} from "../store/signing-key-store.js";
import { KeySealError, type KeySealer } from "./key-sealing.js";

export const EMBED_ALGORITHM = "EdDSA";

/**
 * How long a replica trusts its copy of an organization's stored keys. A
 * rotation made by another replica is seen within this time (and at once on an
 * unknown kid), so a retired key may still sign here for up to this long: the
 * retirement grace period includes it.
 */
export const KEY_REFRESH_MS = 5_000;
/** An unknown kid forces a re-read of that ring at most this often, so made-up kids cannot hammer the database. */
const UNKNOWN_KID_REFRESH_MS = 1_000;
/**
 * Rings (and rendered key sets) kept in memory. Organization ids reach here
 * from unauthenticated key-set requests and unverified token claims, so the
 * cache is bounded; a ring that fell out is one indexed read away.
 */
const MAX_CACHED_RINGS = 10_000;
/** The previous release's ring for the whole service, under a name no organization id can take. */
const GLOBAL = "";

interface RingKey extends LiveSigningKey {
  /** The published form: public members only, plus kid, alg and use. */
  published: JWK;
}

/** The organization's signer: its kid, and its private key imported for signing. */
export interface SigningKey {
  kid: string;
  key: CryptoKey;
}

interface Ring {
  loadedAt: number;
  keys: RingKey[];
}

/** A key set rendered once per change of its keys, not per request. */
export interface PublishedKeySet {
  /** The kids it holds, in order: what decides whether it changed. */
  kids: string;
  body: Buffer;
  etag: string;
  empty: boolean;
}

export interface KeyRingStores {
  organizations: OrganizationKeyStore;
  global: SigningKeyStore;
  privateKeys: PrivateKeyStore;
}

export interface KeyRingOptions {
  /** EMBED_SIGNING_KEY: when set it signs every organization's tokens, whatever storage says. */
  configuredKeyJwk: string | undefined;
  sealer: KeySealer;
  now?: () => number;
}

/**
 * The iframe-token keys every replica agrees on, one ring per organization:
 * its active signer, its next key (published ahead of its activation) and its
 * retired keys still inside their verification window, read from storage and
 * cached briefly. An organization's ring is created by its first mint or
 * rotation, never by a read. A key configured by environment wins as the
 * signer for everyone and is published in every set. The previous release's
 * global ring only verifies, until the tokens it signed have expired.
 */
export class KeyRing {
  private readonly rings = new LRUCache<string, Ring>({ max: MAX_CACHED_RINGS });
  private readonly loading = new Map<string, Promise<Ring>>();
  private readonly forcedRefreshAt = new LRUCache<string, number>({ max: MAX_CACHED_RINGS });
  private readonly keySets = new LRUCache<string, PublishedKeySet>({ max: MAX_CACHED_RINGS });
  /** Keys imported for WebCrypto, by "private:kid" or "public:kid"; `key` once the import has finished. */
  private readonly imported = new LRUCache<string, { promise: Promise<CryptoKey>; key?: CryptoKey }>({
    max: MAX_CACHED_RINGS,
  });
  private readonly now: () => number;

  private constructor(
    private readonly stores: KeyRingStores,
    private readonly configured: RingKey | undefined,
    private readonly configuredPrivate: JWK | undefined,
    readonly sealer: KeySealer,
    options: KeyRingOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Opens the rings after checking that the configured key-encryption keys
   * open what storage holds: a missing or wrong key stops the start here, with
   * the reason, instead of at some later mint.
   */
  static async open(stores: KeyRingStores, options: KeyRingOptions): Promise<KeyRing> {
    for (const sample of await stores.privateKeys.sealedSamples()) {
      try {
        await options.sealer.unseal(sample.sealed, { organizationId: sample.organizationId, kid: sample.kid });
      } catch (err) {
        if (!(err instanceof KeySealError)) throw err;
        throw new KeySealError(
          `${err.message}. Refusing to start: configure that key in KEY_ENCRYPTION_KEYS (keep old keys listed until \`npm run keys -- reseal\` has run)`,
        );
      }
    }
    let configured: RingKey | undefined;
    let configuredPrivate: JWK | undefined;
    if (options.configuredKeyJwk) {
      configuredPrivate = JSON.parse(options.configuredKeyJwk) as JWK;
      const kid = configuredPrivate.kid ?? (await calculateJwkThumbprint(publicMembers(configuredPrivate)));
      configured = {
        kid,
        publicJwk: publicMembers(configuredPrivate),
        published: publishedForm(configuredPrivate, kid),
        sealed: undefined,
        role: "active",
        verifyUntil: undefined,
        createdAt: new Date(0),
      };
    }
    return new KeyRing(stores, configured, configuredPrivate, options.sealer, options);
  }

  /** True when EMBED_SIGNING_KEY is set: rotation is then the operator's job, not storage's. */
  get isConfiguredByEnvironment(): boolean {
    return this.configured !== undefined;
  }

  get configuredKid(): string | undefined {
    return this.configured?.kid;
  }

  /** A fresh key for the organization, its private half sealed (bound to its kid and organization). */
  async newKey(organizationId: string): Promise<NewSigningKey> {
    const { kid, privateJwk, publicJwk } = await generateSigningKey();
    return { kid, publicJwk, sealed: await this.sealer.seal(privateJwk, { organizationId, kid }) };
  }

  /**
   * The key that signs the organization's tokens; its ring is created now if this is its first mint.
   * While the organization's ring is fresh and its signer imported (nearly every mint), it is given
   * at once, with no promise.
   */
  signingKey(organizationId: string): SigningKey | Promise<SigningKey> {
    return this.heldSigningKey(organizationId) ?? this.loadSigningKey(organizationId);
  }

  private heldSigningKey(organizationId: string): SigningKey | undefined {
    const kid = this.configured?.kid ?? this.freshRing(organizationId)?.keys.find((k) => k.role === "active")?.kid;
    const key = kid === undefined ? undefined : this.imported.get(`private:${kid}`)?.key;
    return key && kid !== undefined ? { kid, key } : undefined;
  }

  private async loadSigningKey(organizationId: string): Promise<SigningKey> {
    if (this.configured) {
      return {
        kid: this.configured.kid,
        key: await this.importKey(`private:${this.configured.kid}`, this.configuredPrivate!),
      };
    }
    let active = (await this.ring(organizationId)).keys.find((k) => k.role === "active");
    if (!active) {
      const [first, next] = await Promise.all([this.newKey(organizationId), this.newKey(organizationId)]);
      await this.stores.organizations.createIfNone(organizationId, first, next);
      active = (await this.ring(organizationId, true)).keys.find((k) => k.role === "active");
      if (!active) throw new Error(`no active iframe-token signing key for organization "${organizationId}"`);
    }
    const signer = active;
    const cacheKey = `private:${signer.kid}`;
    const cached = this.imported.get(cacheKey);
    if (cached) return { kid: signer.kid, key: await cached.promise };
    if (!signer.sealed) throw new Error(`the active signing key "${signer.kid}" has no private key stored`);
    const jwk = await this.sealer.unseal(signer.sealed, { organizationId, kid: signer.kid });
    return { kid: signer.kid, key: await this.importKey(cacheKey, jwk) };
  }

  /**
   * The public key for kid if it may verify the organization's tokens now:
   * one of its own live keys, the configured key, or a live key of the
   * previous release's global ring. An unknown kid re-reads storage (at most
   * once a second per ring), so a key another replica just made is found.
   */
  async verificationKey(organizationId: string, kid: string): Promise<CryptoKey | undefined> {
    if (this.configured?.kid === kid) return this.importKey(`public:${kid}`, this.configured.published);
    const find = async (scope: string, force: boolean) =>
      (await this.ring(scope, force)).keys.find((k) => k.kid === kid && this.isLive(k));
    let key = (await find(organizationId, false)) ?? (await find(GLOBAL, false));
    if (!key) {
      for (const scope of [organizationId, GLOBAL]) {
        if (this.now() - (this.forcedRefreshAt.get(scope) ?? 0) < UNKNOWN_KID_REFRESH_MS) continue;
        this.forcedRefreshAt.set(scope, this.now());
        key = await find(scope, true);
        if (key) break;
      }
    }
    return key && this.importKey(`public:${key.kid}`, key.published);
  }

  /** The organization's published key set (undefined: the previous release's global set), rendered once per change. */
  async keySet(organizationId: string | undefined): Promise<PublishedKeySet> {
    const scope = organizationId ?? GLOBAL;
    const keys = (await this.ring(scope)).keys.filter((k) => this.isLive(k)).map((k) => k.published);
    if (this.configured) keys.unshift(this.configured.published);
    const kids = keys.map((k) => k.kid).join(",");
    const cached = this.keySets.get(scope);
    if (cached?.kids === kids) return cached;
    const body = Buffer.from(JSON.stringify({ keys }));
    const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
    const rendered = { kids, body, etag, empty: keys.length === 0 };
    this.keySets.set(scope, rendered);
    return rendered;
  }

  /** Forgets the organization's cached keys (after this replica changed them). */
  invalidate(organizationId: string): void {
    this.rings.delete(organizationId);
  }

  private isLive(k: RingKey): boolean {
    return k.role !== "retired" || (k.verifyUntil !== undefined && k.verifyUntil.getTime() > this.now());
  }

  /** The scope's ring if this replica read it within KEY_REFRESH_MS. */
  private freshRing(scope: string): Ring | undefined {
    const cached = this.rings.get(scope);
    return cached && this.now() - cached.loadedAt < KEY_REFRESH_MS ? cached : undefined;
  }

  private async ring(scope: string, force = false): Promise<Ring> {
    const cached = force ? undefined : this.freshRing(scope);
    if (cached) return cached;
    // One read in flight per ring and replica, however many calls need it.
    let loading = this.loading.get(scope);
    if (!loading) {
      loading = this.load(scope).finally(() => this.loading.delete(scope));
      this.loading.set(scope, loading);
    }
    return loading;
  }

  private async load(scope: string): Promise<Ring> {
    const loadedAt = this.now();
    const stored =
      scope === GLOBAL
        ? await this.stores.global.live(new Date(loadedAt))
        : await this.stores.organizations.live(scope, new Date(loadedAt));
    const ring = { loadedAt, keys: stored.map((k) => ({ ...k, published: publishedForm(k.publicJwk, k.kid) })) };
    this.rings.set(scope, ring);
    return ring;
  }

  private importKey(cacheKey: string, jwk: JWK): Promise<CryptoKey> {
    let imported = this.imported.get(cacheKey);
    if (!imported) {
      const entry: { promise: Promise<CryptoKey>; key?: CryptoKey } = {
        promise: (importJWK({ ...jwk, alg: EMBED_ALGORITHM }, EMBED_ALGORITHM) as Promise<CryptoKey>).then(
          (key) => (entry.key = key),
          (err: unknown) => {
            // A failed import is not remembered: the next call tries again.
            this.imported.delete(cacheKey);
            throw err;
          },
        ),
      };
      imported = entry;
      this.imported.set(cacheKey, imported);
    }
    return imported.promise;
  }
}

/** A fresh Ed25519 key whose kid is its RFC 7638 thumbprint (so kids are unique across organizations). */
export async function generateSigningKey(): Promise<{ kid: string; privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey } = await generateKeyPair(EMBED_ALGORITHM, { crv: "Ed25519", extractable: true });
  const privateJwk = await exportJWK(privateKey);
  const publicJwk = publicMembers(privateJwk);
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, privateJwk: { ...privateJwk, kid }, publicJwk: publishedForm(publicJwk, kid) };
}

/** Only the members an Ed25519 public key has: whatever else a stored or configured JWK carries never leaks. */
function publicMembers(jwk: JWK): JWK {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
}

function publishedForm(jwk: JWK, kid: string): JWK {
  return { ...publicMembers(jwk), kid, alg: EMBED_ALGORITHM, use: "sig" };
}
