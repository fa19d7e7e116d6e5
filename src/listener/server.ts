import http2 from "node:http2";
import type net from "node:net";
import type { AddressInfo } from "node:net";
import { createOnePortListener, type ListenerHandler, type OnePortOptions } from "./one-port.js";

export interface CloseOutcome {
  /** Every connection ended by itself within the grace period (false: some were cut at its end). */
  drained: boolean;
}

export interface RunningServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  /**
   * Stops accepting connections, sends GOAWAY to HTTP/2 sessions and closes
   * idle HTTP/1.1 keep-alives, lets in-flight calls finish for up to graceMs,
   * then cuts what is left. Resolves once every connection is gone.
   */
  close(graceMs?: number): Promise<CloseOutcome>;
}

/** How often, while draining, idle connections (and sessions that just arrived) are looked for and closed. */
const DRAIN_SWEEP_MS = 100;

/**
 * While draining, an HTTP/1.1 connection is closed once it has been idle this
 * long. Closing one the instant it goes idle races with a client that is just
 * sending its next call on it (the call dies with EPIPE/ECONNRESET, never
 * reaching the server); a connection in use instead gets its next call
 * answered UNAVAILABLE with `Connection: close`, which ends it cleanly.
 */
const DRAIN_IDLE_HTTP1_MS = 250;

/**
 * HTTP/2 sessions are told twice (RFC 9113 §6.8): first a GOAWAY naming the
 * highest possible stream id, a notice that still accepts the calls the client
 * sent before it arrived (they get UNAVAILABLE from the front door instead of
 * being refused unprocessed); at least this long after, once the session has
 * no stream open, the real GOAWAY. A session still busy at the end of the
 * grace period is cut.
 */
const DRAIN_GOAWAY_NOTICE_MS = 1_000;
const LAST_POSSIBLE_STREAM_ID = 2 ** 31 - 1;

/** Binds the one port and serves handler on it over HTTP/1.1 and HTTP/2 cleartext. */
export async function listen(
  handler: ListenerHandler,
  host: string,
  port: number,
  options: OnePortOptions,
): Promise<RunningServer> {
  const listener = createOnePortListener(handler, options);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  // HTTP/1.1 connections with no call in progress, and since when.
  const idleSince = new Map<net.Socket, number>();
  listener.http1.on("connection", (socket: net.Socket) => {
    idleSince.set(socket, Date.now());
    socket.once("close", () => idleSince.delete(socket));
  });
  listener.http1.on("request", (req: { socket: net.Socket }, res: NodeJS.EventEmitter) => {
    // req.socket is detached (null) once the response finishes; keep our own reference.
    const socket = req.socket;
    idleSince.delete(socket);
    res.once("finish", () => {
      if (!socket.destroyed) idleSince.set(socket, Date.now());
    });
  });
  listener.tcp.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  // Open streams per HTTP/2 session: a draining session gets its final GOAWAY only once it has none.
  const openStreams = new Map<http2.ServerHttp2Session, number>();
  listener.http2.on("session", (session) => {
    sessions.add(session);
    openStreams.set(session, 0);
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      openStreams.set(session, (openStreams.get(session) ?? 0) + 1);
      stream.once("close", () => openStreams.set(session, (openStreams.get(session) ?? 1) - 1));
    });
    session.once("close", () => {
      sessions.delete(session);
      openStreams.delete(session);
    });
  });
  await new Promise<void>((resolve, reject) => {
    listener.tcp.once("error", reject);
    listener.tcp.listen(port, host, () => {
      listener.tcp.off("error", reject);
      resolve();
    });
  });
  let closing: Promise<CloseOutcome> | undefined;
  return {
    port: (listener.tcp.address() as AddressInfo).port,
    close(graceMs = 10_000) {
      closing ??= new Promise<CloseOutcome>((resolve) => {
        let drained = true;
        const noticeSent = new Map<http2.ServerHttp2Session, number>();
        const sweep = () => {
          const now = Date.now();
          // GOAWAY lets in-flight HTTP/2 streams finish and tells the client to open no more on this connection.
          for (const session of sessions) {
            if (session.closed || session.destroyed) continue;
            const noticed = noticeSent.get(session);
            if (noticed === undefined) {
              session.goaway(http2.constants.NGHTTP2_NO_ERROR, LAST_POSSIBLE_STREAM_ID);
              noticeSent.set(session, now);
            } else if (now - noticed >= DRAIN_GOAWAY_NOTICE_MS && openStreams.get(session) === 0) {
              // Quiet since the notice: the client has moved on, so nothing can be refused mid-flight.
              session.close();
            }
          }
          for (const [socket, since] of idleSince) if (now - since >= DRAIN_IDLE_HTTP1_MS) socket.destroy();
        };
        // A connection accepted just before the close can still be handed to a server afterwards; the sweep catches it.
        const idleSweep = setInterval(sweep, DRAIN_SWEEP_MS);
        const deadline = setTimeout(() => {
          drained = sockets.size === 0;
          listener.http1.closeAllConnections();
          for (const session of sessions) session.destroy();
          for (const socket of sockets) socket.destroy();
        }, graceMs);
        listener.tcp.close(() => {
          clearInterval(idleSweep);
          clearTimeout(deadline);
          resolve({ drained });
        });
        sweep();
      });
      return closing;
    },
  };
}
