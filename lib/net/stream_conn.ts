/**
 * What the echo loops need of a connection, whatever its transport: the shape that a
 * `Deno.Conn` and the `node:net` adapter (`SocketConn`) share.
 *
 * @module
 */

/** What the echo loops need from a connection; every transport's connections provide it. */
export type StreamConn = Pick<Deno.Conn, "read" | "write" | "closeWrite" | "close" | "remoteAddr">;

/** A connection that can also end with a TCP reset, as the reset faults need. */
export interface ResettableConn extends StreamConn {
  /** Ends the connection with a TCP reset: the peer sees `ECONNRESET`, not a FIN. */
  reset(): void;
}
