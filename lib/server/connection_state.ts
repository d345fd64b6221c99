/**
 * Where a connection is in its life, and the one way to move it on: {@linkcode moveTo}, which
 * refuses a move the life below does not have.
 *
 * @module
 */

import { IllegalTransitionError } from "../base/errors.ts";

/**
 * Where a connection is in its life. It only moves forward, one value at a time:
 *
 * ```
 * handshaking -> open -> draining -> closing -> half-closed
 *      \___________\_________\___________\____________\______> closed (the server hung up)
 * ```
 *
 * - `handshaking`: the PROXY header is being read or the TLS handshake runs; nothing has been
 *   echoed, nothing is owed.
 * - `open`: echoing: read a chunk, write all of it back, read again.
 * - `draining`: the server stopped accepting; this connection still echoes until its client
 *   closes it, or until the drain deadline.
 * - `closing`: the drain deadline passed: the chunk already read is written back, then FIN.
 * - `half-closed`: FIN sent; what the client still sends is read and dropped until it closes,
 *   so that closing never resets a connection whose echo the client has not read yet.
 * - `closed`: the server closed the socket itself (idle timeout, or an abort).
 *
 * A client's own FIN needs no state: every byte read was echoed before the next read, so the
 * connection closes as soon as the read returns the end.
 */
export type ConnectionState =
  | "handshaking"
  | "open"
  | "draining"
  | "closing"
  | "half-closed"
  | "closed";

/** The states each state may move to. */
const NEXT: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  // A handshake that ends after the drain began goes straight to draining.
  handshaking: ["open", "draining", "closed"],
  open: ["draining", "closed"],
  draining: ["closing", "closed"],
  closing: ["half-closed", "closed"],
  "half-closed": ["closed"],
  closed: [],
};

/**
 * Moves `connection` to state `next`; throws an {@linkcode IllegalTransitionError} (a bug in the
 * server, never the peer's doing) when its life has no such step.
 *
 * @example
 * ```ts
 * import { equal, throws } from "node:assert/strict";
 * import { type ConnectionState, moveTo } from "./connection_state.ts";
 *
 * const connection: { state: ConnectionState } = { state: "open" };
 * moveTo(connection, "draining");
 * equal(connection.state, "draining");
 * throws(() => moveTo(connection, "open"), /draining -> open/);
 * ```
 */
export function moveTo(connection: { state: ConnectionState }, next: ConnectionState): void {
  if (!NEXT[connection.state].includes(next)) {
    throw new IllegalTransitionError(
      `a connection cannot move from ${connection.state} -> ${next}`,
    );
  }
  connection.state = next;
}

/** The states a connection may move to from `state`, for tests and the docs. */
export function nextStates(state: ConnectionState): readonly ConnectionState[] {
  return NEXT[state];
}

/** Whether the echo loop goes on reading: in state `open` or `draining`. */
export function echoing(connection: { readonly state: ConnectionState }): boolean {
  return connection.state === "open" || connection.state === "draining";
}

/**
 * The rule for bytes read after the server's FIN went out at the drain deadline: too late to
 * echo, so they are counted as discarded and dropped. Returns true when `n` bytes just read must be
 * dropped, having counted them.
 */
export function discardedAfterFin(
  connection: { readonly state: ConnectionState },
  stats: { bytesDiscarded: number },
  n: number,
): boolean {
  if (connection.state !== "half-closed") return false;
  stats.bytesDiscarded += n;
  return true;
}
