import { ServiceError } from "../errors/service-error.js";
import type { StreamSlots } from "./rpc/rpc-method.js";

/**
 * A cap on streams of one kind held open at once (health watches): so many
 * per connection, so many in the process. A stream over either cap is refused
 * at its start, per connection with TOO_MANY_STREAMS, for the process with
 * OVERLOADED; its slot is given back when it ends.
 */
export function streamSlots(perConnection: number, perProcess: number): StreamSlots {
  const byConnection = new WeakMap<object, number>();
  let total = 0;
  return {
    acquire(connection) {
      const held = byConnection.get(connection) ?? 0;
      if (held >= perConnection) {
        throw new ServiceError("TOO_MANY_STREAMS", `a connection may hold at most ${perConnection} such streams open`);
      }
      if (total >= perProcess) throw new ServiceError("OVERLOADED", "the server holds as many such streams as it may");
      byConnection.set(connection, held + 1);
      total++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        total--;
        byConnection.set(connection, (byConnection.get(connection) ?? 1) - 1);
      };
    },
  };
}
