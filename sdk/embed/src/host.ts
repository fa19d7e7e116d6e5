import { EmbedTokenError, failureOf, type TokenGrant } from "./errors.js";
import { envelope, readRendererMessage, type HostMessage } from "./protocol.js";
import { RefreshScheduler, type RefreshFailure } from "./scheduler.js";

export { EmbedTokenError, embedTokenErrorFromConnect, type TokenGrant } from "./errors.js";
export { PROTOCOL, VERSION } from "./protocol.js";

export type EmbedEvent =
  | { type: "ready" }
  | { type: "token-refreshed"; expiresAt: number }
  /** reason: the ErrorInfo reason (TOKEN_REVOKED, EMBEDDING_PAUSED, RATE_LIMITED…). final: no more tokens. */
  | { type: "error"; reason: string; message: string; final: boolean }
  | { type: "resize"; height: number }
  | { type: "destroyed" };

export interface MountOptions {
  /** Where the iframe goes (it is appended to this element). */
  container: { appendChild(node: Node): unknown };
  /** The renderer's page. Carries no token: the token travels by postMessage only. */
  rendererUrl: string;
  /** Your call to your backend, which mints with CreateIframeToken. Throw an EmbedTokenError on failure. */
  fetchToken: () => Promise<TokenGrant>;
  /** Tabs share tokens under a key of the renderer's origin and these three. */
  organizationId: string;
  tenantId: string;
  dashboardId: string;
  onEvent?: (event: EmbedEvent) => void;
  /** Refresh once this fraction of a token's lifetime has passed. Default 0.75. */
  refreshAt?: number;
  /** Set the iframe's height from the renderer's resize messages. Default true. */
  autoHeight?: boolean;
  /** The iframe's title, for assistive technology. */
  title?: string;
  /** For tests: the clock and the jitter source. */
  now?: () => number;
  random?: () => number;
}

export interface MountedDashboard {
  /** Mints a new token now (visible or not), sharing an in-flight one. */
  refresh(): Promise<void>;
  destroy(): void;
  readonly iframe: HTMLIFrameElement;
}

/** Mounts the renderer in an iframe and keeps it supplied with fresh tokens. */
export function mountDashboard(options: MountOptions): MountedDashboard {
  const rendererOrigin = new URL(options.rendererUrl, location.href).origin;
  const emit = (event: EmbedEvent) => {
    try {
      options.onEvent?.(event);
    } catch (err) {
      // The host's handler failing must not stop the refreshes.
      console.error(err);
    }
  };
  const iframe = document.createElement("iframe");
  iframe.src = options.rendererUrl;
  iframe.title = options.title ?? "Dashboard";
  iframe.style.border = "0";
  iframe.style.width = "100%";
  // No referrer: the renderer's server learns nothing of the host's URLs.
  iframe.referrerPolicy = "no-referrer";

  let rendererListening = false;
  const send = (message: HostMessage) => {
    if (rendererListening) iframe.contentWindow?.postMessage(envelope(message), rendererOrigin);
  };
  const visible = () => document.visibilityState === "visible";

  const share = new TabShare(
    `dashboard-embed:v1:${JSON.stringify([rendererOrigin, options.organizationId, options.tenantId, options.dashboardId])}`,
  );
  const scheduler = new RefreshScheduler({
    fetchToken: () => share.fetch(options.fetchToken),
    onToken: (grant) => {
      share.publish(grant);
      send({ type: "token", token: grant.token, expiresAt: grant.expiresAt });
      emit({ type: "token-refreshed", expiresAt: grant.expiresAt });
    },
    onFailure: (failure: RefreshFailure) => {
      if (failure.final) {
        share.publishFinal(failure);
        send({ type: "stopped", reason: failure.reason });
      }
      emit({ type: "error", reason: failure.reason, message: failure.message, final: failure.final });
    },
    isVisible: visible,
    ...(options.refreshAt !== undefined ? { refreshAt: options.refreshAt } : {}),
    ...(options.now ? { now: options.now } : {}),
    ...(options.random ? { random: options.random } : {}),
  });
  share.onGrant = (grant) => scheduler.offer(grant);
  share.onFinal = (failure) => scheduler.revoke(failure.reason, failure.message);
  share.leaderRefresh = () => scheduler.refresh();
  share.currentGrant = () => scheduler.current;

  const onMessage = (event: MessageEvent) => {
    // Only the renderer's exact origin, and only our iframe's window: anything else is ignored.
    if (event.origin !== rendererOrigin || event.source !== iframe.contentWindow) return;
    const message = readRendererMessage(event.data);
    if (!message) return;
    switch (message.type) {
      case "hello": {
        rendererListening = true;
        const current = scheduler.current;
        if (current) send({ type: "token", token: current.token, expiresAt: current.expiresAt });
        else if (scheduler.revoked) send({ type: "stopped", reason: scheduler.revoked });
        else scheduler.refreshSoon();
        return;
      }
      case "token-request":
        // "expiring" is a backstop for a host whose timers slept: refresh if due by the clock.
        if (message.reason === "expiring") scheduler.wake();
        else scheduler.refreshSoon();
        return;
      case "rendered":
        emit({ type: "ready" });
        return;
      case "resize":
        if (options.autoHeight !== false) iframe.style.height = `${Math.ceil(message.height)}px`;
        emit({ type: "resize", height: message.height });
        return;
      case "status":
        if (message.reason === "OK") return;
        if (message.reason === "TOKEN_REVOKED") scheduler.revoke("TOKEN_REVOKED", message.message);
        else if (message.reason === "TOKEN_EXPIRED") scheduler.refreshSoon();
        else emit({ type: "error", reason: message.reason, message: message.message ?? message.reason, final: false });
        return;
    }
  };
  const wake = () => scheduler.wake();
  window.addEventListener("message", onMessage);
  document.addEventListener("visibilitychange", wake);
  window.addEventListener("online", wake);
  window.addEventListener("pageshow", wake);
  window.addEventListener("focus", wake);

  options.container.appendChild(iframe);
  share.start();
  scheduler.start();

  let destroyed = false;
  return {
    iframe,
    async refresh() {
      await scheduler.refresh();
    },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      scheduler.destroy();
      share.close();
      window.removeEventListener("message", onMessage);
      document.removeEventListener("visibilitychange", wake);
      window.removeEventListener("online", wake);
      window.removeEventListener("pageshow", wake);
      window.removeEventListener("focus", wake);
      iframe.remove();
      emit({ type: "destroyed" });
    },
  };
}

type ShareMessage =
  | { kind: "grant"; grant: TokenGrant }
  | { kind: "final"; reason: string; message: string }
  | { kind: "need"; have: number }
  | { kind: "failed"; reason: string | undefined; retryAfterSeconds: number | undefined; message: string }
  | { kind: "leader" };

/**
 * Tabs of one origin showing the same dashboard share one token. One tab is
 * the leader (it holds a Web Lock while mounted; when it goes, the next tab
 * waiting for the lock takes over) and is the only one that calls fetchToken.
 * The others ask it over a BroadcastChannel, and every token it gets is
 * broadcast to all, so N tabs mint one token per refresh, not N.
 * Without BroadcastChannel or Web Locks, each tab mints for itself.
 */
class TabShare {
  onGrant: (grant: TokenGrant) => void = () => {};
  onFinal: (failure: { reason: string; message: string }) => void = () => {};
  leaderRefresh: () => Promise<TokenGrant | undefined> = () => Promise.resolve(undefined);
  currentGrant: () => TokenGrant | undefined = () => undefined;

  private channel: BroadcastChannel | undefined;
  private leader = false;
  private release: (() => void) | undefined;
  private waiting: { have: number; resolve: (g: TokenGrant) => void; reject: (e: unknown) => void } | undefined;

  constructor(private readonly key: string) {}

  start(): void {
    const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
    if (typeof BroadcastChannel === "undefined" || !locks) {
      this.leader = true;
      return;
    }
    this.channel = new BroadcastChannel(this.key);
    this.channel.onmessage = (event: MessageEvent) => this.receive(event.data as ShareMessage);
    const held = new Promise<void>((resolve) => (this.release = resolve));
    locks
      .request(`${this.key}:leader`, () => {
        if (!this.channel) return undefined;
        this.leader = true;
        this.post({ kind: "leader" });
        // A fetch that was waiting on a leader (the old one, or none yet) is now this tab's to make.
        const waiting = this.waiting;
        if (waiting && this.fetchToken) this.fetchAsLeader(this.fetchToken).then(waiting.resolve, waiting.reject);
        return held;
      })
      .catch(() => undefined);
  }

  /** The scheduler's fetch: the real one when leading, else a request to the leader. */
  fetch(fetchToken: () => Promise<TokenGrant>): Promise<TokenGrant> {
    this.fetchToken = fetchToken;
    if (this.leader) return this.fetchAsLeader(fetchToken);
    const have = this.currentGrant()?.expiresAt ?? 0;
    return new Promise<TokenGrant>((resolve, reject) => {
      this.waiting = { have, resolve, reject };
      this.post({ kind: "need", have });
    }).finally(() => (this.waiting = undefined));
  }

  private fetchToken: (() => Promise<TokenGrant>) | undefined;

  private fetchAsLeader(fetchToken: () => Promise<TokenGrant>): Promise<TokenGrant> {
    return fetchToken().catch((err: unknown) => {
      this.noteFailure(err);
      throw err;
    });
  }

  publish(grant: TokenGrant): void {
    if (this.leader) this.post({ kind: "grant", grant });
  }

  publishFinal(failure: RefreshFailure): void {
    this.post({ kind: "final", reason: failure.reason, message: failure.message });
  }

  close(): void {
    this.waiting?.reject(new EmbedTokenError("unmounted", "DESTROYED"));
    this.release?.();
    this.channel?.close();
    this.channel = undefined;
  }

  private post(message: ShareMessage): void {
    this.channel?.postMessage(message);
  }

  private receive(message: ShareMessage): void {
    switch (message.kind) {
      case "grant":
        if (this.waiting && message.grant.expiresAt > this.waiting.have) this.waiting.resolve(message.grant);
        else this.onGrant(message.grant);
        return;
      case "final":
        this.onFinal(message);
        this.waiting?.reject(new EmbedTokenError(message.message, message.reason));
        return;
      case "need": {
        if (!this.leader) return;
        const current = this.currentGrant();
        if (current && current.expiresAt > message.have) {
          this.post({ kind: "grant", grant: current });
          return;
        }
        // Single-flight: every tab's need while one fetch runs is answered by that fetch.
        this.leaderRefresh()
          .then((grant) => {
            if (!grant) this.post({ kind: "failed", ...this.lastFailure });
          })
          .catch(() => undefined);
        return;
      }
      case "failed":
        this.waiting?.reject(new EmbedTokenError(message.message, message.reason, message.retryAfterSeconds));
        return;
      case "leader":
        // The old leader went away: ask the new one.
        if (this.waiting) this.post({ kind: "need", have: this.waiting.have });
        return;
    }
  }

  lastFailure: { reason: string | undefined; retryAfterSeconds: number | undefined; message: string } = {
    reason: undefined,
    retryAfterSeconds: undefined,
    message: "minting failed",
  };

  noteFailure(err: unknown): void {
    this.lastFailure = { ...failureOf(err), message: err instanceof Error ? err.message : String(err) };
  }
}
