import proxyaddr from "proxy-addr";
import { z } from "zod";
import { FILTER_FIELD_PATTERN, namesTenantColumn } from "../tokens/filters.js";
import { tracingConfigFrom, type TracingConfig } from "./tracing-config.js";

export type { TracingConfig } from "./tracing-config.js";

/**
 * The one configuration object of the service. It is parsed from the
 * environment once, at start-up, and passed down; nothing else reads
 * process.env. Every variable is documented in the README.
 */
export interface Config {
  env: "development" | "test" | "production";
  host: string;
  port: number;
  /** Requests larger than this are refused before they are decoded. */
  maxRequestBytes: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** "json" (one object per line, for collectors) or "pretty" (human-readable; needs the pino-pretty dev dependency). */
  logFormat: "json" | "pretty";
  /** How long in-flight calls may take to finish after SIGTERM/SIGINT before connections are cut. */
  shutdownGraceMs: number;
  database: { kind: "postgres"; url: string; poolMax: number } | { kind: "embedded"; dataDir: string };
  redis: RedisConfig | undefined;
  auth: AuthConfig;
  embed: EmbedConfig;
  /** HMAC key for ListDashboards page tokens; generated and stored when unset. */
  pageTokenSecret: string | undefined;
  rateLimit: RateLimitConfig;
  /**
   * Browser origins allowed to call the RPC and REST paths (CORS); empty allows none. Renderer
   * origins may call only the renderer-facing RPC (VerifyIframeToken).
   */
  cors: { allowedOrigins: string[]; rendererOrigins: string[] };
  /** What the listener holds every connection to (see src/listener/limits.ts). */
  listener: ListenerLimits & {
    /** Expect a PROXY protocol header first on every connection (from TRUSTED_PROXIES only). */
    proxyProtocol: boolean;
  };
  edge: EdgeConfig;
  /** OpenTelemetry traces, from the standard OTEL_* variables (see tracing-config.ts). */
  tracing: TracingConfig;
  storage: StorageConfig;
}

/** Where a shared Redis is, and how: one node, a Sentinel-watched primary, or a Cluster. */
export interface RedisConfig {
  topology:
    | { kind: "node"; url: string }
    | { kind: "sentinel"; sentinels: HostPort[]; name: string; url: string | undefined }
    | { kind: "cluster"; nodes: HostPort[]; url: string | undefined };
  commandTimeoutMs: number;
}

export interface HostPort {
  host: string;
  port: number;
}

/** What the store holds itself to: liveness of the change listener, load shedding, fair shares, retention. */
export interface StorageConfig {
  /** The change listener's heartbeat; cached reads are at most 2 × this stale (see src/store/dashboard-cache.ts). */
  listenHeartbeatMs: number;
  /** Longest wait for a pooled connection before UNAVAILABLE (never past the call's deadline). */
  poolWaitMs: number;
  /** Calls that may wait for a pooled connection at once; more are refused UNAVAILABLE at once. */
  poolMaxWaiting: number;
  /**
   * The most pooled connections one organization's calls may hold at once (its fair share; see
   * src/store/organization-shares.ts). Its calls past it wait in its own queue (at most poolMaxWaiting).
   */
  organizationShare: number;
  /** Mint audit rows that may wait for their group commit; more are refused UNAVAILABLE at once. */
  mintAuditQueueMax: number;
  /** create_requests older than this are deleted by the retention job (their retry window is over); fractions allowed. */
  createRequestRetentionHours: number;
  /** How often every retention job runs; undefined: each at its own pace (revocations 1 min, requests 10, audit 60). */
  retentionIntervalMs: number | undefined;
  /** audit_events older than this are deleted by the retention job; undefined keeps them forever. */
  auditRetentionDays: number | undefined;
  /** Rows one retention statement deletes, so no job holds long locks. */
  retentionBatchSize: number;
}

/** What the listener enforces on every connection, before any request reaches the edge. */
export interface ListenerLimits {
  /** HTTP/1.1: a request's line and headers must arrive within this, from the connection's start or the last answer. */
  headersTimeoutMs: number;
  /** A request's body must arrive within this of its headers (HTTP/1.1, and per HTTP/2 stream). */
  bodyTimeoutMs: number;
  /** HTTP/1.1: an idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** HTTP/2: a session with no open stream is closed (GOAWAY) after this. */
  sessionIdleTimeoutMs: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS. */
  maxConcurrentStreams: number;
  /** HTTP/2: what nghttp2 may buffer per session, in MB (Node's maxSessionMemory). */
  maxSessionMemoryMb: number;
  /** Request headers, all together: HTTP/1.1 maxHeaderSize, HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE. */
  maxHeaderBytes: number;
  /** Open connections at once; more are closed as they arrive. */
  maxConnections: number;
}

export interface EdgeConfig {
  /** Proxies whose forwarding header names the client (CIDRs, or loopback/linklocal/uniquelocal); empty trusts none. */
  trustedProxies: string[];
  /** The header those proxies write. */
  forwardedHeader: "x-forwarded-for" | "forwarded";
  /** Request bytes all calls may hold in memory at once, and of those, calls without a verified caller. */
  maxBufferedRequestBytes: number;
  maxUnauthenticatedBufferedBytes: number;
  /** A client deadline above this is refused; a unary call without one gets rpcDefaultTimeoutMs. */
  rpcMaxTimeoutMs: number;
  rpcDefaultTimeoutMs: number;
  /** Concurrent grpc.health.v1 Watch streams, per connection and per process. */
  healthWatchesPerConnection: number;
  healthWatchesMax: number;
}

export type AuthConfig = {
  issuer: string | undefined;
  audience: string | undefined;
  clockToleranceSeconds: number;
  /** Caller tokens longer than this are refused before they are parsed. */
  maxTokenBytes: number;
  /** The memory the verified-token cache may take (estimated bytes). */
  tokenCacheMaxBytes: number;
} & (
  | { mode: "secret"; secret: string }
  | { mode: "jwks"; jwksUrl: string; algorithms: string[] }
  | { mode: "public-key"; publicKeyPem: string; algorithms: string[] }
  /** No credentials configured outside production: a generated secret kept in DATA_DIR. */
  | { mode: "development"; secretFile: string }
);

export interface EmbedConfig {
  /** A private JWK (JSON) to sign iframe tokens with; generated and stored when unset. */
  signingKeyJwk: string | undefined;
  issuer: string;
  audience: string;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
  /** The closed set of field names locked filters may use; undefined accepts any well-formed name. */
  filterFields: string[] | undefined;
  /** KEY_ENCRYPTION_KEYS, newest (the one that seals) first; undefined outside production means the development key. */
  keyEncryptionKeys: KeyEncryptionKey[] | undefined;
  /** Where the development key-encryption key is kept when KEY_ENCRYPTION_KEYS is unset. */
  devKeyEncryptionKeyFile: string;
  /** The most keys one organization may have published (active, next and retired in their window). */
  maxPublishedKeysPerOrganization: number;
  /** How often the background job purges retired keys' material and rows. */
  keyPurgeIntervalMs: number;
}

/** A key-encryption key: an id stored beside what it sealed, and 32 bytes for AES-256-GCM. */
export interface KeyEncryptionKey {
  id: string;
  key: Uint8Array;
}

export interface RateLimitConfig {
  iframeTokenPerMinute: number;
  /** Calls made with an iframe token as the credential (a renderer checking its status), per token. */
  iframeTokenStatusPerMinute: number;
  defaultPerMinute: number;
  failedAuthPerMinute: number;
  /** 0 disables the per-organization ceiling. */
  organizationPerMinute: number;
  /** RotateSigningKey calls each organization may make per keyRotationWindowSeconds. */
  keyRotationsPerOrganization: number;
  keyRotationWindowSeconds: number;
  /** Prefix of every rate-limit key in Redis, so deployments (and tests) sharing a Redis stay apart. */
  redisKeyPrefix: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

const ASYMMETRIC_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
];

const blankToUndefined = (v: unknown) => (typeof v === "string" && v.trim() === "" ? undefined : v);
const optionalString = z.preprocess(blankToUndefined, z.string().optional());
/** A comma-separated list of browser origins, each exactly as a browser sends it in Origin. */
const originList = optionalString.pipe(
  z
    .string()
    .superRefine((list, ctx) => {
      for (const origin of splitList(list)) {
        const problem = originProblem(origin);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      }
    })
    .optional(),
);
/** "host:port,host:port" ("[v6]:port" too), as Sentinel and Cluster nodes are given. */
const hostPortList = z.string().transform((value, ctx): HostPort[] => {
  const nodes: HostPort[] = [];
  for (const entry of splitList(value)) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(entry);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535) {
      ctx.addIssue({ code: "custom", message: `"${entry}" is not host:port` });
      return z.NEVER;
    }
    nodes.push({ host: m[1]!.replace(/^\[|\]$/g, ""), port });
  }
  if (nodes.length === 0) ctx.addIssue({ code: "custom", message: "must list at least one host:port" });
  return nodes;
});
const int = (def: number, min: number, max: number) =>
  z.preprocess(blankToUndefined, z.coerce.number().int().min(min).max(max).default(def));

const EnvSchema = z
  .object({
    NODE_ENV: z.preprocess(blankToUndefined, z.enum(["development", "test", "production"]).default("development")),
    HOST: z.preprocess(blankToUndefined, z.string().default("0.0.0.0")),
    PORT: int(8080, 0, 65535),
    MAX_REQUEST_BYTES: int(1024 * 1024, 1024, 64 * 1024 * 1024),
    CORS_ALLOWED_ORIGINS: originList,
    CORS_RENDERER_ORIGINS: originList,
    LOG_LEVEL: z.preprocess(
      blankToUndefined,
      z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    ),
    LOG_FORMAT: z.preprocess(blankToUndefined, z.enum(["json", "pretty"]).default("json")),
    SHUTDOWN_GRACE_SECONDS: int(10, 0, 3600),
    DATABASE_URL: optionalString.pipe(
      z
        .string()
        .regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL")
        .optional(),
    ),
    DATABASE_POOL_MAX: int(10, 1, 1000),
    DATA_DIR: z.preprocess(blankToUndefined, z.string().default("./data")),
    REDIS_URL: optionalString.pipe(
      z
        .string()
        .regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")
        .optional(),
    ),
    REDIS_COMMAND_TIMEOUT_MS: int(100, 1, 60_000),
    REDIS_SENTINELS: optionalString.pipe(hostPortList.optional()),
    REDIS_SENTINEL_NAME: optionalString,
    REDIS_CLUSTER_NODES: optionalString.pipe(hostPortList.optional()),
    AUTH_JWT_SECRET: optionalString.pipe(
      z
        .string()
        .refine((s) => Buffer.byteLength(s) >= 32, "must be at least 32 bytes (256 bits) for HS256")
        .optional(),
    ),
    AUTH_JWKS_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
    AUTH_JWT_PUBLIC_KEY: optionalString,
    AUTH_JWT_ALGORITHMS: optionalString.pipe(
      z
        .string()
        .refine(
          (v) => splitList(v).every((alg) => ASYMMETRIC_ALGORITHMS.includes(alg)),
          `must list only ${ASYMMETRIC_ALGORITHMS.join(", ")}`,
        )
        .optional(),
    ),
    AUTH_ISSUER: optionalString,
    AUTH_AUDIENCE: optionalString,
    AUTH_CLOCK_TOLERANCE_SECONDS: int(5, 0, 300),
    AUTH_MAX_TOKEN_BYTES: int(8 * 1024, 256, 64 * 1024),
    AUTH_TOKEN_CACHE_MAX_BYTES: int(16 * 1024 * 1024, 0, 1024 * 1024 * 1024),
    EMBED_SIGNING_KEY: optionalString.pipe(
      z
        .string()
        .superRefine((v, ctx) => {
          const problem = privateJwkProblem(v);
          if (problem) ctx.addIssue({ code: "custom", message: problem });
        })
        .optional(),
    ),
    KEY_ENCRYPTION_KEYS: optionalString.pipe(
      z
        .string()
        .superRefine((v, ctx) => {
          const problem = keyEncryptionKeysProblem(v);
          if (problem) ctx.addIssue({ code: "custom", message: problem });
        })
        .optional(),
    ),
    SIGNING_KEYS_MAX_PER_ORGANIZATION: int(20, 3, 10_000),
    SIGNING_KEY_PURGE_INTERVAL_SECONDS: int(60, 1, 86_400),
    EMBED_TOKEN_ISSUER: z.preprocess(blankToUndefined, z.string().default("dashboard-service")),
    EMBED_TOKEN_AUDIENCE: z.preprocess(blankToUndefined, z.string().default("dashboard-embed")),
    EMBED_TOKEN_DEFAULT_TTL_SECONDS: int(600, 1, 31 * 24 * 3600),
    EMBED_TOKEN_MAX_TTL_SECONDS: int(86400, 1, 31 * 24 * 3600),
    EMBED_FILTER_FIELDS: optionalString.pipe(
      z
        .string()
        .refine(
          (v) => splitList(v).every((f) => FILTER_FIELD_PATTERN.test(f) && !namesTenantColumn(f)),
          "must be a comma-separated list of column names (tenant_id is always filtered by the server)",
        )
        .optional(),
    ),
    PAGE_TOKEN_SECRET: optionalString.pipe(
      z
        .string()
        .refine((s) => Buffer.byteLength(s) >= 32, "must be at least 32 bytes")
        .optional(),
    ),
    RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: int(10, 1, 1_000_000_000),
    RATE_LIMIT_TOKEN_STATUS_PER_MINUTE: int(30, 1, 1_000_000_000),
    RATE_LIMIT_DEFAULT_PER_MINUTE: int(600, 1, 1_000_000_000),
    RATE_LIMIT_FAILED_AUTH_PER_MINUTE: int(30, 1, 1_000_000_000),
    RATE_LIMIT_ORGANIZATION_PER_MINUTE: int(0, 0, 1_000_000_000),
    RATE_LIMIT_KEY_ROTATIONS: int(1, 1, 1_000_000_000),
    RATE_LIMIT_KEY_ROTATION_SECONDS: int(600, 1, 86_400),
    HTTP_HEADERS_TIMEOUT_SECONDS: int(10, 1, 600),
    HTTP_BODY_TIMEOUT_SECONDS: int(30, 1, 3600),
    HTTP_KEEPALIVE_TIMEOUT_SECONDS: int(5, 1, 600),
    HTTP2_IDLE_TIMEOUT_SECONDS: int(60, 1, 86_400),
    HTTP2_MAX_CONCURRENT_STREAMS: int(100, 1, 10_000),
    HTTP2_MAX_SESSION_MEMORY_MB: int(8, 1, 1024),
    HTTP_MAX_HEADER_BYTES: int(16 * 1024, 1024, 1024 * 1024),
    MAX_CONNECTIONS: int(2000, 1, 1_000_000),
    PROXY_PROTOCOL: z.preprocess(blankToUndefined, z.enum(["true", "false"]).default("false")),
    TRUSTED_PROXIES: optionalString.pipe(
      z
        .string()
        .superRefine((list, ctx) => {
          try {
            proxyaddr.compile(splitList(list));
          } catch (err) {
            ctx.addIssue({
              code: "custom",
              message: `must be comma-separated IP addresses or CIDRs (${(err as Error).message})`,
            });
          }
        })
        .optional(),
    ),
    TRUSTED_PROXY_HEADER: z.preprocess(
      blankToUndefined,
      z.enum(["x-forwarded-for", "forwarded"]).default("x-forwarded-for"),
    ),
    MAX_BUFFERED_REQUEST_BYTES: int(64 * 1024 * 1024, 64 * 1024, 16 * 1024 * 1024 * 1024),
    MAX_UNAUTHENTICATED_BUFFERED_BYTES: int(4 * 1024 * 1024, 64 * 1024, 16 * 1024 * 1024 * 1024),
    RPC_MAX_TIMEOUT_SECONDS: int(300, 1, 86_400),
    RPC_DEFAULT_TIMEOUT_SECONDS: int(30, 1, 86_400),
    HEALTH_WATCHES_PER_CONNECTION: int(8, 1, 10_000),
    HEALTH_WATCHES_MAX: int(1000, 1, 1_000_000),
    RATE_LIMIT_REDIS_KEY_PREFIX: z.preprocess(blankToUndefined, z.string().max(200).default("dashboard-service:rl")),
    LISTEN_HEARTBEAT_MS: int(2_000, 50, 60_000),
    DATABASE_POOL_WAIT_MS: int(2_000, 1, 60_000),
    DATABASE_POOL_MAX_WAITING: int(100, 0, 100_000),
    DATABASE_ORGANIZATION_SHARE: z.preprocess(blankToUndefined, z.coerce.number().int().min(1).max(1000).optional()),
    MINT_AUDIT_QUEUE_MAX: int(2_000, 1, 1_000_000),
    // Fractions allowed (0.002 h is 7.2 s), so a soak can watch the table stay flat.
    CREATE_REQUEST_RETENTION_HOURS: z.preprocess(
      blankToUndefined,
      z.coerce
        .number()
        .min(1 / 3600)
        .max(24 * 365)
        .default(24),
    ),
    RETENTION_INTERVAL_SECONDS: z.preprocess(blankToUndefined, z.coerce.number().int().min(1).max(86_400).optional()),
    AUDIT_RETENTION_DAYS: z.preprocess(blankToUndefined, z.coerce.number().int().min(1).max(36_500).optional()),
    RETENTION_BATCH_SIZE: int(500, 1, 100_000),
  })
  // Cross-field rules; they run once every field parsed (field problems are all reported first).
  .superRefine((env, ctx) => {
    const modes = [env.AUTH_JWT_SECRET, env.AUTH_JWKS_URL, env.AUTH_JWT_PUBLIC_KEY].filter((v) => v !== undefined);
    if (modes.length > 1) {
      ctx.addIssue({
        code: "custom",
        path: ["AUTH_JWT_SECRET"],
        message: "set only one of AUTH_JWT_SECRET, AUTH_JWKS_URL and AUTH_JWT_PUBLIC_KEY",
      });
    }
    if (modes.length === 0 && env.NODE_ENV === "production") {
      ctx.addIssue({
        code: "custom",
        path: ["AUTH_JWT_SECRET"],
        message: "production needs one of AUTH_JWT_SECRET, AUTH_JWKS_URL or AUTH_JWT_PUBLIC_KEY",
      });
    }
    if (env.NODE_ENV === "production" && env.AUTH_JWKS_URL !== undefined && !isHttpsOrLoopback(env.AUTH_JWKS_URL)) {
      ctx.addIssue({
        code: "custom",
        path: ["AUTH_JWKS_URL"],
        message: "production fetches caller-token keys only over https:// (plain http:// only from a loopback address)",
      });
    }
    if (env.NODE_ENV === "production" && env.DATABASE_URL === undefined) {
      ctx.addIssue({ code: "custom", path: ["DATABASE_URL"], message: "production needs a PostgreSQL DATABASE_URL" });
    }
    if (env.NODE_ENV === "production" && env.KEY_ENCRYPTION_KEYS === undefined && env.EMBED_SIGNING_KEY === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["KEY_ENCRYPTION_KEYS"],
        message:
          "production seals the signing keys it keeps in the database: set KEY_ENCRYPTION_KEYS (or EMBED_SIGNING_KEY)",
      });
    }
    if (env.PROXY_PROTOCOL === "true" && env.TRUSTED_PROXIES === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["PROXY_PROTOCOL"],
        message: "needs TRUSTED_PROXIES: a PROXY header is believed only from the proxies listed there",
      });
    }
    if (env.RPC_DEFAULT_TIMEOUT_SECONDS > env.RPC_MAX_TIMEOUT_SECONDS) {
      ctx.addIssue({
        code: "custom",
        path: ["RPC_DEFAULT_TIMEOUT_SECONDS"],
        message: "must not exceed RPC_MAX_TIMEOUT_SECONDS",
      });
    }
    if (env.REDIS_SENTINELS && env.REDIS_CLUSTER_NODES) {
      ctx.addIssue({ code: "custom", path: ["REDIS_CLUSTER_NODES"], message: "cannot be set with REDIS_SENTINELS" });
    }
    if (env.REDIS_SENTINELS && !env.REDIS_SENTINEL_NAME) {
      ctx.addIssue({
        code: "custom",
        path: ["REDIS_SENTINEL_NAME"],
        message: "must name the primary the sentinels watch when REDIS_SENTINELS is set",
      });
    }
    if (env.REDIS_SENTINEL_NAME && !env.REDIS_SENTINELS) {
      ctx.addIssue({ code: "custom", path: ["REDIS_SENTINELS"], message: "must be set when REDIS_SENTINEL_NAME is" });
    }
    if (env.DATABASE_ORGANIZATION_SHARE !== undefined && env.DATABASE_ORGANIZATION_SHARE > env.DATABASE_POOL_MAX) {
      ctx.addIssue({
        code: "custom",
        path: ["DATABASE_ORGANIZATION_SHARE"],
        message: "must not exceed DATABASE_POOL_MAX (equal to it means no fair share)",
      });
    }
    if (env.EMBED_TOKEN_DEFAULT_TTL_SECONDS > env.EMBED_TOKEN_MAX_TTL_SECONDS) {
      ctx.addIssue({
        code: "custom",
        path: ["EMBED_TOKEN_DEFAULT_TTL_SECONDS"],
        message: "must not exceed EMBED_TOKEN_MAX_TTL_SECONDS",
      });
    }
  });

/**
 * All but two of the pool's connections (at least half of a small pool): one organization alone still
 * gets most of the pool, and however busy it is, at least two connections stay free for everyone else.
 */
export function defaultOrganizationShare(poolMax: number): number {
  return Math.max(1, Math.ceil(poolMax / 2), poolMax - 2);
}

/** Keys fetched over plain HTTP can be swapped by anyone on the path; only the machine itself is trusted that way. */
function isHttpsOrLoopback(url: string): boolean {
  const u = new URL(url);
  if (u.protocol === "https:") return true;
  const host = u.hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

function redisConfigOf(env: z.infer<typeof EnvSchema>): RedisConfig | undefined {
  const commandTimeoutMs = env.REDIS_COMMAND_TIMEOUT_MS;
  if (env.REDIS_SENTINELS && env.REDIS_SENTINEL_NAME) {
    const topology = {
      kind: "sentinel",
      sentinels: env.REDIS_SENTINELS,
      name: env.REDIS_SENTINEL_NAME,
      url: env.REDIS_URL,
    } as const;
    return { topology, commandTimeoutMs };
  }
  if (env.REDIS_CLUSTER_NODES) {
    return { topology: { kind: "cluster", nodes: env.REDIS_CLUSTER_NODES, url: env.REDIS_URL }, commandTimeoutMs };
  }
  return env.REDIS_URL ? { topology: { kind: "node", url: env.REDIS_URL }, commandTimeoutMs } : undefined;
}

function splitList(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** CORS compares origins byte for byte, so each entry must be exactly what a browser sends in Origin. */
function originProblem(origin: string): string | undefined {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return `"${origin}" is not an origin (scheme://host[:port])`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return `"${origin}" must be http:// or https://`;
  if (url.origin !== origin)
    return `"${origin}" must be written as its origin "${url.origin}" (no path, lowercase host, no default port)`;
  return undefined;
}

function privateJwkProblem(text: string): string | undefined {
  let jwk: unknown;
  try {
    jwk = JSON.parse(text);
  } catch {
    return "must be a private JWK in JSON";
  }
  if (typeof jwk !== "object" || jwk === null) return "must be a private JWK in JSON";
  const k = jwk as Record<string, unknown>;
  if (k.kty !== "OKP" || k.crv !== "Ed25519") return 'must be an Ed25519 key ("kty": "OKP", "crv": "Ed25519")';
  if (typeof k.d !== "string" || typeof k.x !== "string") return "must be a private key (with both d and x)";
  return undefined;
}

const KEK_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** `id:key,id:key`; each key exactly 32 bytes in base64 or base64url; ids distinct. */
function parseKeyEncryptionKeys(text: string): KeyEncryptionKey[] | string {
  const keys: KeyEncryptionKey[] = [];
  for (const entry of splitList(text)) {
    const colon = entry.indexOf(":");
    const id = colon < 0 ? "" : entry.slice(0, colon);
    const encoded = entry.slice(colon + 1);
    if (!KEK_ID_PATTERN.test(id)) return "must be a comma-separated list of id:key pairs (ids of A-Z a-z 0-9 _ -)";
    // base64 and base64url both decode here; the length check catches anything that was neither.
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(encoded)) return `key "${id}" must be base64 or base64url`;
    const key = Buffer.from(encoded.replace(/-/g, "+").replace(/_/g, "/"), "base64");
    if (key.byteLength !== 32) return `key "${id}" must be 32 bytes (it is ${key.byteLength})`;
    if (keys.some((k) => k.id === id)) return `key id "${id}" is listed twice`;
    keys.push({ id, key: new Uint8Array(key) });
  }
  return keys.length > 0 ? keys : "must list at least one id:key pair";
}

function keyEncryptionKeysProblem(text: string): string | undefined {
  const parsed = parseKeyEncryptionKeys(text);
  return typeof parsed === "string" ? parsed : undefined;
}

/** Parses and validates the environment; throws ConfigError listing every problem at once. */
export function loadConfig(environment: Record<string, string | undefined>): Config {
  const parsed = EnvSchema.safeParse(environment);
  const { tracing, problems: tracingProblems } = tracingConfigFrom(environment);
  if (!parsed.success || tracingProblems.length > 0) {
    const issues = parsed.error?.issues ?? [];
    throw new ConfigError([
      ...issues.map((i) => `${i.path.join(".") || "environment"}: ${i.message}`),
      ...tracingProblems,
    ]);
  }
  const env = parsed.data;
  const algorithms = env.AUTH_JWT_ALGORITHMS ? splitList(env.AUTH_JWT_ALGORITHMS) : ASYMMETRIC_ALGORITHMS;
  const common = {
    issuer: env.AUTH_ISSUER,
    audience: env.AUTH_AUDIENCE,
    clockToleranceSeconds: env.AUTH_CLOCK_TOLERANCE_SECONDS,
    maxTokenBytes: env.AUTH_MAX_TOKEN_BYTES,
    tokenCacheMaxBytes: env.AUTH_TOKEN_CACHE_MAX_BYTES,
  };
  const auth: AuthConfig = env.AUTH_JWT_SECRET
    ? { ...common, mode: "secret", secret: env.AUTH_JWT_SECRET }
    : env.AUTH_JWKS_URL
      ? { ...common, mode: "jwks", jwksUrl: env.AUTH_JWKS_URL, algorithms }
      : env.AUTH_JWT_PUBLIC_KEY
        ? { ...common, mode: "public-key", publicKeyPem: env.AUTH_JWT_PUBLIC_KEY, algorithms }
        : { ...common, mode: "development", secretFile: `${env.DATA_DIR}/dev-auth-secret` };

  return {
    env: env.NODE_ENV,
    host: env.HOST,
    port: env.PORT,
    maxRequestBytes: env.MAX_REQUEST_BYTES,
    logLevel: env.LOG_LEVEL,
    logFormat: env.LOG_FORMAT,
    shutdownGraceMs: env.SHUTDOWN_GRACE_SECONDS * 1000,
    database: env.DATABASE_URL
      ? { kind: "postgres", url: env.DATABASE_URL, poolMax: env.DATABASE_POOL_MAX }
      : { kind: "embedded", dataDir: env.DATA_DIR },
    redis: redisConfigOf(env),
    auth,
    embed: {
      signingKeyJwk: env.EMBED_SIGNING_KEY,
      issuer: env.EMBED_TOKEN_ISSUER,
      audience: env.EMBED_TOKEN_AUDIENCE,
      defaultTtlSeconds: env.EMBED_TOKEN_DEFAULT_TTL_SECONDS,
      maxTtlSeconds: env.EMBED_TOKEN_MAX_TTL_SECONDS,
      filterFields: env.EMBED_FILTER_FIELDS ? splitList(env.EMBED_FILTER_FIELDS) : undefined,
      keyEncryptionKeys: env.KEY_ENCRYPTION_KEYS
        ? (parseKeyEncryptionKeys(env.KEY_ENCRYPTION_KEYS) as KeyEncryptionKey[])
        : undefined,
      devKeyEncryptionKeyFile: `${env.DATA_DIR}/dev-key-encryption-key`,
      maxPublishedKeysPerOrganization: env.SIGNING_KEYS_MAX_PER_ORGANIZATION,
      keyPurgeIntervalMs: env.SIGNING_KEY_PURGE_INTERVAL_SECONDS * 1000,
    },
    pageTokenSecret: env.PAGE_TOKEN_SECRET,
    cors: {
      allowedOrigins: env.CORS_ALLOWED_ORIGINS ? splitList(env.CORS_ALLOWED_ORIGINS) : [],
      rendererOrigins: env.CORS_RENDERER_ORIGINS ? splitList(env.CORS_RENDERER_ORIGINS) : [],
    },
    listener: {
      headersTimeoutMs: env.HTTP_HEADERS_TIMEOUT_SECONDS * 1000,
      bodyTimeoutMs: env.HTTP_BODY_TIMEOUT_SECONDS * 1000,
      keepAliveTimeoutMs: env.HTTP_KEEPALIVE_TIMEOUT_SECONDS * 1000,
      sessionIdleTimeoutMs: env.HTTP2_IDLE_TIMEOUT_SECONDS * 1000,
      maxConcurrentStreams: env.HTTP2_MAX_CONCURRENT_STREAMS,
      maxSessionMemoryMb: env.HTTP2_MAX_SESSION_MEMORY_MB,
      maxHeaderBytes: env.HTTP_MAX_HEADER_BYTES,
      maxConnections: env.MAX_CONNECTIONS,
      proxyProtocol: env.PROXY_PROTOCOL === "true",
    },
    edge: {
      trustedProxies: env.TRUSTED_PROXIES ? splitList(env.TRUSTED_PROXIES) : [],
      forwardedHeader: env.TRUSTED_PROXY_HEADER,
      maxBufferedRequestBytes: env.MAX_BUFFERED_REQUEST_BYTES,
      maxUnauthenticatedBufferedBytes: env.MAX_UNAUTHENTICATED_BUFFERED_BYTES,
      rpcMaxTimeoutMs: env.RPC_MAX_TIMEOUT_SECONDS * 1000,
      rpcDefaultTimeoutMs: env.RPC_DEFAULT_TIMEOUT_SECONDS * 1000,
      healthWatchesPerConnection: env.HEALTH_WATCHES_PER_CONNECTION,
      healthWatchesMax: env.HEALTH_WATCHES_MAX,
    },
    storage: {
      listenHeartbeatMs: env.LISTEN_HEARTBEAT_MS,
      poolWaitMs: env.DATABASE_POOL_WAIT_MS,
      poolMaxWaiting: env.DATABASE_POOL_MAX_WAITING,
      organizationShare: env.DATABASE_ORGANIZATION_SHARE ?? defaultOrganizationShare(env.DATABASE_POOL_MAX),
      mintAuditQueueMax: env.MINT_AUDIT_QUEUE_MAX,
      createRequestRetentionHours: env.CREATE_REQUEST_RETENTION_HOURS,
      retentionIntervalMs:
        env.RETENTION_INTERVAL_SECONDS === undefined ? undefined : env.RETENTION_INTERVAL_SECONDS * 1000,
      auditRetentionDays: env.AUDIT_RETENTION_DAYS,
      retentionBatchSize: env.RETENTION_BATCH_SIZE,
    },
    rateLimit: {
      iframeTokenPerMinute: env.RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE,
      iframeTokenStatusPerMinute: env.RATE_LIMIT_TOKEN_STATUS_PER_MINUTE,
      defaultPerMinute: env.RATE_LIMIT_DEFAULT_PER_MINUTE,
      failedAuthPerMinute: env.RATE_LIMIT_FAILED_AUTH_PER_MINUTE,
      organizationPerMinute: env.RATE_LIMIT_ORGANIZATION_PER_MINUTE,
      keyRotationsPerOrganization: env.RATE_LIMIT_KEY_ROTATIONS,
      keyRotationWindowSeconds: env.RATE_LIMIT_KEY_ROTATION_SECONDS,
      redisKeyPrefix: env.RATE_LIMIT_REDIS_KEY_PREFIX,
    },
    tracing,
  };
}
