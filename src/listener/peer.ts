import type net from "node:net";

/**
 * The address each connection is from: the TCP peer's, or, when the listener
 * speaks the PROXY protocol, the client address its header names. The edge
 * asks here instead of reading socket.remoteAddress, so both cases agree.
 */
const peers = new WeakMap<net.Socket, string>();

export function setPeerAddress(socket: net.Socket, address: string): void {
  peers.set(socket, address);
}

export function peerAddressOf(socket: net.Socket | undefined | null): string {
  if (!socket) return "unknown";
  return peers.get(socket) ?? socket.remoteAddress ?? "unknown";
}
