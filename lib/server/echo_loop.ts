/**
 * The plain echo loop, the server's fast path: one fixed buffer per connection, read a chunk,
 * report it, write all of it back, read again. It never waits on anything but the socket.
 *
 * @module
 */

import { type ConnectionState, discardedAfterFin, echoing } from "./connection_state.ts";
import type { ConnectionInfo, EchoEvent } from "./events.ts";
import type { EchoStats, EchoTimeRecorder } from "./stats.ts";
import type { StreamConn } from "../net/stream_conn.ts";

/** The part of the server's connection record the loop reads and updates. */
export interface EchoingConnection extends ConnectionInfo {
  /** The connection, after any handshake. */
  readonly conn: StreamConn;
  /** The loop reads while it is `open` or `draining`; `half-closed` means FIN went out. */
  readonly state: ConnectionState;
  /** True while the loop waits in `read` (not in a write): FIN can go out at once. */
  reading: boolean;
  /** `performance.now()` of the last byte received or sent, kept when `watched`. */
  lastActive: number;
  /** Set when the server's faults changed for open connections: the loop hands over. */
  readonly faultsChanged?: boolean;
  /** Bytes received from the client, and bytes echoed back to it. */
  received: number;
  echoed: number;
}

/** What {@linkcode echoLoop} works with. */
export interface EchoLoopOptions {
  /** Bytes read at a time. */
  bufferSize: number;
  /** The server's counters, updated as bytes move. */
  stats: EchoStats;
  /** The server's events; omit it to run without any per-chunk work. */
  onEvent?: (event: EchoEvent) => void;
  /** Counts the seconds from each chunk read to the end of its echo. */
  echoTimes?: EchoTimeRecorder;
  /** Keep `lastActive` up to date, for an idle timeout. */
  watched: boolean;
  /**
   * A chunk already read (and not yet counted), echoed first as if the loop had read it: the one
   * in hand when the faults changed, on a connection the new faults do not hit.
   */
  firstChunk?: Uint8Array;
}

/**
 * Echoes `connection` until its client closes it (resolves `"eof"`), the server stops it by
 * moving its state on (resolves undefined) or changes its faults: then it resolves the chunk it
 * just read, not yet counted nor echoed, for the loop the new faults ask for. Rejects when the
 * connection fails.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { echoLoop } from "./echo_loop.ts";
 * import { noStats } from "./stats.ts";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * using client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * using conn = await listener.accept();
 * const stats = noStats();
 * const connection = {
 *   id: 1,
 *   peer: conn.remoteAddr,
 *   conn,
 *   state: "open" as const,
 *   reading: false,
 *   lastActive: 0,
 *   received: 0,
 *   echoed: 0,
 * };
 * const echoed = echoLoop(connection, { bufferSize: 16, stats, watched: false });
 * await client.write(new TextEncoder().encode("hello"));
 * await client.closeWrite();
 * equal(await echoed, "eof");
 * equal(stats.bytesEchoed, 5);
 * equal(connection.received, 5);
 * ```
 */
export async function echoLoop(
  connection: EchoingConnection,
  options: EchoLoopOptions,
): Promise<"eof" | Uint8Array | undefined> {
  const { conn } = connection;
  const { stats, onEvent, echoTimes, watched } = options;
  const buffer = new Uint8Array(options.bufferSize);
  let inHand = options.firstChunk;
  while (echoing(connection)) {
    let n: number | null;
    if (inHand) {
      buffer.set(inHand);
      n = inHand.length;
      inHand = undefined;
    } else {
      connection.reading = true;
      n = await conn.read(buffer);
      connection.reading = false;
      // The faults changed while this read waited: the new ones apply to what it brought.
      if (connection.faultsChanged && n !== null) return buffer.slice(0, n);
    }
    const readAt = watched || echoTimes ? performance.now() : 0;
    if (watched) connection.lastActive = readAt;
    if (n === null) {
      // After a FIN at the drain deadline, the client's end is its answer to the cut; a health
      // check's end, before its first byte, is no message.
      if (connection.state !== "half-closed" && connection.received > 0) {
        onEvent?.({
          type: "received",
          conn: connection,
          open: stats.open,
          data: buffer.subarray(0, 0),
        });
      }
      return "eof";
    }
    stats.bytesReceived += n;
    connection.received += n;
    // FIN went out at the drain deadline while this read waited: too late to echo these.
    if (discardedAfterFin(connection, stats, n)) break;
    const chunk = n === buffer.length ? buffer : buffer.subarray(0, n);
    if (onEvent) {
      onEvent({ type: "received", conn: connection, open: stats.open, data: chunk });
      onEvent({ type: "sending", conn: connection, open: stats.open, bytes: n });
    }
    // Counted write by write, so a connection cut mid-chunk still adds up in the summary.
    for (let written = 0; written < n;) {
      const sent = await conn.write(written === 0 ? chunk : chunk.subarray(written));
      written += sent;
      stats.bytesEchoed += sent;
      connection.echoed += sent;
      if (watched) connection.lastActive = performance.now();
    }
    echoTimes?.observe((performance.now() - readAt) / 1000);
  }
  return undefined;
}
