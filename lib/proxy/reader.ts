/**
 * The PROXY stage of a server connection: read exactly one PROXY header, within a deadline,
 * before any byte is echoed and before TLS starts, and learn from it which client the proxy
 * relays.
 *
 * @module
 */

import { ProxyHeaderError } from "../base/errors.ts";
import { parseProxyHeader, type ProxyHeader, type ProxyMode } from "./header.ts";

/** How long a client has to send its whole PROXY header, in milliseconds, unless told otherwise. */
export const DEFAULT_PROXY_TIMEOUT = 3000;

/** How the PROXY stage reads. */
export interface ProxyReadOptions {
  /** The header versions accepted. Default `any`. */
  mode?: ProxyMode;
  /** Milliseconds the whole header may take to arrive. Default 3000. */
  timeout?: number;
}

/** What a connection's PROXY header taught the server. */
export interface ProxyInfo {
  /** The header as received. */
  header: ProxyHeader;
  /** Its length in bytes: exactly what was read from the connection. */
  length: number;
  /**
   * The client: the source the header claims for the `PROXY` command, or the connection's own
   * peer for `LOCAL` (a health check) and for `UNSPEC` addresses.
   */
  peer: Deno.Addr;
  /** The proxy: the peer of the connection itself. */
  proxy: Deno.Addr;
}

/** What the stage needs from a connection. */
export type ProxySource = Pick<Deno.Conn, "read" | "close" | "remoteAddr">;

/**
 * Reads the PROXY header that must open `conn`, and not one byte more: the data that follows stays
 * in the connection for the next stage (TLS or the echo loop). Throws a
 * {@linkcode ProxyHeaderError} that says why when the header is malformed, of a version not
 * accepted, cut short by the client closing, or not complete within the timeout (the connection
 * is then closed, which is how a pending read is stopped). Other read errors, such as a reset,
 * pass through.
 *
 * @example A proxy's header, then the client's data
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { readProxyHeader } from "./reader.ts";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * using proxy = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * using conn = await listener.accept();
 * await proxy.write(new TextEncoder().encode("PROXY TCP4 203.0.113.7 192.0.2.1 4242 7\r\nhi"));
 *
 * const { peer, header } = await readProxyHeader(conn, { mode: "v1", timeout: 1000 });
 * equal(header.version, 1);
 * equal((peer as Deno.NetAddr).hostname, "203.0.113.7");
 * const data = new Uint8Array(2);
 * equal(await conn.read(data), 2);
 * equal(new TextDecoder().decode(data), "hi");
 * ```
 */
export async function readProxyHeader(
  conn: ProxySource,
  options: ProxyReadOptions = {},
): Promise<ProxyInfo> {
  const mode = options.mode ?? "any";
  const timeout = options.timeout ?? DEFAULT_PROXY_TIMEOUT;
  let buffer = new Uint8Array(256);
  let received = 0;
  let late = false;
  const lateError = () =>
    new ProxyHeaderError(
      `no complete PROXY header within ${timeout / 1000} s (${received} bytes received)`,
    );
  const timer = setTimeout(() => {
    late = true;
    try {
      conn.close();
    } catch { /* already closed */ }
  }, timeout);
  try {
    for (;;) {
      const parsed = parseProxyHeader(buffer.subarray(0, received), mode);
      if (parsed.header) {
        const proxy = conn.remoteAddr;
        return {
          header: parsed.header,
          length: parsed.length,
          peer: claimedPeer(parsed.header, proxy),
          proxy,
        };
      }
      // Never ask for more than the header can still take, so no byte after it is consumed.
      const end = received + parsed.needed;
      if (end > buffer.length) {
        const larger = new Uint8Array(Math.max(end, 2 * buffer.length));
        larger.set(buffer.subarray(0, received));
        buffer = larger;
      }
      let n: number | null;
      try {
        n = await conn.read(buffer.subarray(received, end));
      } catch (err) {
        if (late) throw lateError();
        throw err;
      }
      if (late) throw lateError();
      if (n === null) {
        throw received === 0
          ? new ProxyHeaderError("connection closed before sending its PROXY header", {
            beforeFirstByte: true,
          })
          : new ProxyHeaderError(`connection closed after ${received} bytes of its PROXY header`);
      }
      received += n;
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The client a header names: its source for the `PROXY` command, else (`LOCAL`, `UNSPEC`) the
 * connection's own peer.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { claimedPeer } from "./reader.ts";
 *
 * const proxy: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 51234 };
 * deepEqual(claimedPeer({ version: 2, command: "LOCAL", family: "UNSPEC", tlvs: [] }, proxy), proxy);
 * ```
 */
export function claimedPeer(header: ProxyHeader, proxy: Deno.Addr): Deno.Addr {
  return header.command === "PROXY" && header.source ? header.source : proxy;
}
