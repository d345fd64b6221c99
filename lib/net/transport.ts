/**
 * Transports: where an echo server listens (the client's side is `client/connect.ts`). TCP over IPv4 or IPv6,
 * TLS over TCP, Unix domain sockets and UDP, behind one set of options, with failures turned into
 * one-line errors that say what to do.
 *
 * @module
 */

import { explainNetworkError, netPermission, RuntimeError, type Target } from "../base/errors.ts";
import type { SocketListener } from "./socket_conn.ts";
import type { TlsServerOptions } from "./tls_server.ts";

/** Where a stream server listens: TCP (plain or TLS) or a Unix domain socket. */
export interface ListenOptions {
  /** Address to listen on (IPv4, IPv6 or a name). Default `localhost`. */
  hostname?: string;
  /** Port to listen on; 0 picks a free one. Default 10000. */
  port?: number;
  /** Listen on a Unix domain socket at this path instead of TCP. */
  unix?: string;
  /** Speak TLS with these settings (not with `unix`). */
  tls?: TlsServerOptions;
  /**
   * Share the TCP port with other listeners, the kernel spreading connections over them (Linux
   * only; needs `--unstable-net`).
   */
  reusePort?: boolean;
}

/** The port both ends use when none is given, as in the classic tutorial. */
export const DEFAULT_PORT = 10000;

/**
 * The largest UDP payload one IPv4 datagram carries (65,535 bytes less 20 of IP header and 8 of
 * UDP header): the most a UDP message may hold, so that it crosses IPv4 and IPv6 alike.
 *
 * @example
 * ```ts
 * import { rejects } from "node:assert/strict";
 * import { MAX_UDP_PAYLOAD, sendAndVerify, UsageError } from "../mod.ts";
 *
 * await rejects(
 *   sendAndVerify({ udp: true, port: 9, message: new Uint8Array(MAX_UDP_PAYLOAD + 1) }),
 *   UsageError,
 * );
 * ```
 */
export const MAX_UDP_PAYLOAD = 65_507;

/** A receive buffer larger than any UDP payload, so that no datagram is ever cut short. */
export const UDP_RECEIVE_BUFFER_SIZE = 65_536;

/**
 * Names an endpoint the way the messages and the start-up line do: `localhost port 10000`,
 * `::1 port 7`, or the socket path.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { describeEndpoint } from "./transport.ts";
 *
 * equal(describeEndpoint({ hostname: "::1", port: 7 }), "::1 port 7");
 * equal(describeEndpoint({ unix: "/tmp/echo.sock" }), "/tmp/echo.sock");
 * ```
 */
export function describeEndpoint(
  options: Pick<ListenOptions, "hostname" | "port" | "unix">,
): string {
  return options.unix ??
    `${options.hostname ?? "localhost"} port ${options.port ?? DEFAULT_PORT}`;
}

/** What a listen or connect aims at, with the permission flag that allows it. */
export function targetOf(options: Pick<ListenOptions, "hostname" | "port" | "unix">): Target {
  if (options.unix !== undefined) {
    return {
      hostname: options.unix,
      permission: `--allow-read=${options.unix} --allow-write=${options.unix} ` +
        `--allow-net=unix:${options.unix}`,
    };
  }
  const hostname = options.hostname ?? "localhost";
  const port = options.port ?? DEFAULT_PORT;
  return { hostname, port, permission: netPermission(hostname, port) };
}

/**
 * Opens a listening socket for a stream echo server: TCP or a Unix domain socket (for TLS, see
 * {@linkcode listenTcp}).
 * An existing file at a Unix socket path is never replaced, since another server may still be
 * using it. Throws a {@linkcode RuntimeError} that says why when the socket cannot be opened.
 *
 * @example A Unix domain socket in a temporary directory
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { listen } from "./transport.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const listener = listen({ unix: `${dir}/echo.sock` });
 * equal(listener.addr.transport, "unix");
 * listener.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function listen(options: Omit<ListenOptions, "tls">): Deno.Listener {
  const where = targetOf(options);
  try {
    if (options.unix !== undefined) return listenUnix(options.unix);
    return Deno.listen({
      hostname: where.hostname,
      port: where.port!,
      reusePort: options.reusePort ?? false,
    });
  } catch (err) {
    throw explainNetworkError(err, "listen", where);
  }
}

/**
 * Opens a TCP listener that owns its sockets (`node:net`), with TCP_NODELAY set on each
 * connection: what the TLS stage needs, since `Deno.listenTls` connections cannot set TCP_NODELAY.
 * Throws a {@linkcode RuntimeError} that says why when the socket cannot be opened.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { listenTcp } from "./transport.ts";
 *
 * const listener = await listenTcp({ hostname: "127.0.0.1", port: 0 });
 * equal(listener.addr.transport, "tcp");
 * listener.close();
 * ```
 */
export async function listenTcp(
  options: Pick<ListenOptions, "hostname" | "port" | "reusePort">,
): Promise<SocketListener> {
  const where = targetOf(options);
  try {
    // Only TLS and the reset faults load node:net; plain TCP stays on Deno.listen.
    const { listenSockets } = await import("./socket_conn.ts");
    return await listenSockets({
      hostname: where.hostname,
      port: where.port!,
      reusePort: options.reusePort,
    });
  } catch (err) {
    throw explainNetworkError(err, "listen", where);
  }
}

function listenUnix(path: string): Deno.UnixListener {
  try {
    return Deno.listen({ transport: "unix", path });
  } catch (err) {
    if (!(err instanceof Deno.errors.AddrInUse)) throw err;
    const kind = Deno.lstatSync(path).isSocket ? "a socket" : "a file that is not a socket";
    throw new RuntimeError(
      `cannot listen on ${path}: ${kind} already exists there; if no server uses it, remove it`,
    );
  }
}

/**
 * Opens a UDP socket. Deno keeps UDP behind its `--unstable-net` flag; without it this throws a
 * {@linkcode RuntimeError} naming the flag.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { listenDatagram } from "./transport.ts";
 *
 * const socket = listenDatagram({ hostname: "127.0.0.1", port: 0 });
 * equal(socket.addr.transport, "udp");
 * socket.close();
 * ```
 */
export function listenDatagram(
  options: Pick<ListenOptions, "hostname" | "port">,
): Deno.DatagramConn {
  const where = targetOf(options);
  if (typeof Deno.listenDatagram !== "function") {
    throw new RuntimeError("UDP needs Deno's unstable network API: run deno with --unstable-net");
  }
  try {
    return Deno.listenDatagram({ transport: "udp", hostname: where.hostname, port: where.port! });
  } catch (err) {
    throw explainNetworkError(err, "listen", where);
  }
}
