/**
 * Opening a TCP listener with errors a user can act on.
 *
 * @module
 */

import { explainNetworkError, netPermission } from "./errors.ts";

/** Where to listen. */
export interface ListenTcpOptions {
  /** Address to listen on. */
  hostname: string;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** Share the port with other listeners (Linux; needs `--unstable-net`). */
  reusePort?: boolean;
}

/**
 * Listens on `hostname` and `port`; a failure becomes a `RuntimeError` that says why and, for a
 * missing permission, which flag to add.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { listenTcp } from "./listen.ts";
 *
 * using listener = listenTcp({ hostname: "127.0.0.1", port: 0 });
 * equal(listener.addr.hostname, "127.0.0.1");
 * ```
 */
export function listenTcp(options: ListenTcpOptions): Deno.TcpListener {
  const { hostname, port } = options;
  try {
    return Deno.listen({ hostname, port, reusePort: options.reusePort ?? false });
  } catch (err) {
    throw explainNetworkError(err, "listen", {
      hostname,
      port,
      permission: netPermission(hostname, port),
    });
  }
}
