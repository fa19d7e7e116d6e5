import type http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { createOnePortListener, type RequestHandler } from "./one-port-listener.js";

export interface RunningServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  /** Stops accepting connections, lets in-flight calls finish for up to graceMs, then closes what is left. */
  close(graceMs?: number): Promise<void>;
}

/** Binds the one port and serves handler on it over HTTP/1.1 and HTTP/2 cleartext. */
export async function listen(handler: RequestHandler, host: string, port: number): Promise<RunningServer> {
  const listener = createOnePortListener(handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  listener.http2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    listener.tcp.once("error", reject);
    listener.tcp.listen(port, host, () => {
      listener.tcp.off("error", reject);
      resolve();
    });
  });
  return {
    port: (listener.tcp.address() as AddressInfo).port,
    async close(graceMs = 10_000) {
      const closed = new Promise<void>((resolve) => listener.tcp.close(() => resolve()));
      // GOAWAY lets in-flight HTTP/2 streams finish; idle HTTP/1.1 keep-alives are closed now.
      for (const session of sessions) session.close();
      listener.http1.closeIdleConnections();
      const idleSweep = setInterval(() => listener.http1.closeIdleConnections(), 100);
      const deadline = setTimeout(() => {
        listener.http1.closeAllConnections();
        for (const session of sessions) session.destroy();
      }, graceMs);
      try {
        await closed;
      } finally {
        clearInterval(idleSweep);
        clearTimeout(deadline);
      }
    },
  };
}
