import net from "node:net";

/**
 * A TCP proxy in front of a real server, for faults a real network makes:
 * `blackHole()` drops every byte in both directions from then on while every
 * connection stays open (a half-open peer: no FIN, no RST, no error);
 * `heal()` forwards again, for the connections opened after it.
 */
export interface TcpProxy {
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  blackHole(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let holed = false;
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    // Each connection keeps the fate it was born with: a healed proxy does not revive a held connection.
    const state = { holed };
    const upstream = net.connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => s.destroy());
    }
    const forward = (from: net.Socket, to: net.Socket) => {
      from.on("data", (chunk: Buffer) => {
        if (!state.holed && !holed) to.write(chunk);
        else state.holed = true;
      });
      from.on("close", () => {
        if (!state.holed) to.destroy();
      });
    };
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get accepted() {
      return accepted;
    },
    blackHole() {
      holed = true;
    },
    heal() {
      holed = false;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
