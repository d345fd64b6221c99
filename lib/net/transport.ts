/**
 * Transports: where an echo server listens and how a client reaches it. TCP over IPv4 or IPv6,
 * TLS over TCP, Unix domain sockets and UDP, behind one set of options, with failures turned into
 * one-line errors that say what to do.
 *
 * @module
 */

import {
  errorReason,
  explainNetworkError,
  InterruptedError,
  netPermission,
  RuntimeError,
  type Target,
} from "../base/errors.ts";
import { explainCertificateError } from "./certificates.ts";
import { listenSockets, type SocketListener } from "./socket_conn.ts";
import { connectNodeTls } from "./tls_client.ts";
import type { TlsServerOptions } from "./tls_server.ts";
import { encodeProxyHeaderFor, type ProxyHeaderInit } from "../proxy/header.ts";

/** How a TLS client checks the server, and what it shows of itself. */
export interface TlsClientOptions {
  /** Extra trusted root certificates (PEM), on top of the system's. */
  caCerts?: string[];
  /** Skip every check of the server's certificate: encryption without authentication. */
  insecure?: boolean;
  /** ALPN protocols to offer, in order of preference. */
  alpn?: string[];
  /** A client certificate chain (PEM, leaf first) for servers that require one (mutual TLS). */
  cert?: string;
  /** The private key of `cert` (PEM). */
  key?: string;
}

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

/** Where a stream client connects: TCP (plain or TLS) or a Unix domain socket. */
export interface ConnectOptions {
  /** Server host name or address. Default `localhost`. */
  hostname?: string;
  /** Server port. Default 10000. */
  port?: number;
  /** Connect to the Unix domain socket at this path instead of TCP. */
  unix?: string;
  /** Speak TLS; `true` checks the server against the system's root certificates. */
  tls?: boolean | TlsClientOptions;
  /** Aborts a connection attempt still in progress. */
  signal?: AbortSignal;
  /**
   * Send this PROXY protocol header first, before TLS and any data, as a proxy does; addresses
   * it leaves out are the connection's own (see {@linkcode encodeProxyHeaderFor}).
   */
  proxyHeader?: ProxyHeaderInit;
}

/** What the echo loops need from a connection; every transport's connections provide it. */
export type StreamConn = Pick<Deno.Conn, "read" | "write" | "closeWrite" | "close" | "remoteAddr">;

/** A client's connection, with what its TLS handshake showed when it spoke TLS. */
export type ClientConn = StreamConn & {
  /** Set for TLS: the handshake's duration and the ALPN protocol agreed on. */
  readonly tls?: ClientTlsDetails;
};

/** What a client's TLS handshake showed. */
export interface ClientTlsDetails {
  /** Milliseconds the handshake took, from the TCP connection to its end. */
  handshakeMs: number;
  /** The ALPN protocol the server picked, if any. */
  alpn?: string;
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

function target(options: ListenOptions | ConnectOptions): Target {
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
  const where = target(options);
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
  const where = target(options);
  try {
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
 * Connects to a stream echo server over TCP, TLS or a Unix domain socket, with TCP_NODELAY on
 * TCP connections and the TLS handshake done, so that a bad certificate fails here, in one line.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { connect, listen } from "./transport.ts";
 *
 * using listener = listen({ hostname: "127.0.0.1", port: 0 }) as Deno.TcpListener;
 * const conn = await connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * using accepted = await listener.accept();
 * await conn.write(new Uint8Array([1, 2, 3]));
 * equal(await accepted.read(new Uint8Array(8)), 3);
 * conn.close();
 * ```
 */
export async function connect(options: ConnectOptions): Promise<ClientConn> {
  const where = target(options);
  const { signal } = options;
  const tls = options.tls === true ? {} : options.tls || undefined;
  const { proxyHeader } = options;
  try {
    if (options.unix !== undefined) {
      const conn = await Deno.connect({ transport: "unix", path: options.unix });
      if (proxyHeader) await sendProxyHeader(conn, proxyHeader);
      return conn;
    }
    const hostname = where.hostname;
    const port = where.port!;
    if (tls?.insecure || tls?.cert !== undefined) {
      const preface = proxyHeader &&
        ((local: Deno.NetAddr, remote: Deno.NetAddr) =>
          encodeProxyHeaderFor(proxyHeader, local, remote));
      const { conn, handshakeMs, alpn } = await connectNodeTls(
        { ...tls, hostname, port, signal, preface },
        tls,
      );
      return Object.assign(conn, { tls: { handshakeMs, alpn } });
    }
    const tcp = await Deno.connect({ hostname, port, signal });
    tcp.setNoDelay(true);
    if (proxyHeader) await sendProxyHeader(tcp, proxyHeader);
    if (!tls) return tcp;
    const started = performance.now();
    const conn = await Deno.startTls(tcp, {
      hostname,
      caCerts: tls.caCerts,
      alpnProtocols: tls.alpn,
    });
    // A server that never answers the handshake must not outlast the caller's patience.
    const onAbort = () => conn.close();
    signal?.addEventListener("abort", onAbort, { once: true });
    let alpn: string | undefined;
    try {
      alpn = (await conn.handshake()).alpnProtocol ?? undefined;
    } catch (err) {
      if (signal?.aborted) throw err;
      conn.close();
      throw new Deno.errors.InvalidData(`TLS handshake failed: ${errorReason(err)}`);
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    return Object.assign(conn, { tls: { handshakeMs: performance.now() - started, alpn } });
  } catch (err) {
    if (signal?.aborted) {
      throw new InterruptedError(`interrupted while connecting to ${describeEndpoint(options)}`);
    }
    if (err instanceof Deno.errors.InvalidData && err.message.startsWith("TLS handshake failed")) {
      throw new RuntimeError(
        `cannot connect to ${describeEndpoint(options)}: TLS handshake failed: ${
          explainCertificateError(err.message.slice("TLS handshake failed: ".length))
        }`,
      );
    }
    throw explainNetworkError(err, "connect", where);
  }
}

/** Writes the whole PROXY header on a fresh connection; closes it when that fails. */
async function sendProxyHeader(conn: Deno.Conn, init: ProxyHeaderInit): Promise<void> {
  try {
    const header = encodeProxyHeaderFor(init, conn.localAddr, conn.remoteAddr);
    for (let written = 0; written < header.length;) {
      written += await conn.write(header.subarray(written));
    }
  } catch (err) {
    conn.close();
    throw err;
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
  const where = target(options);
  if (typeof Deno.listenDatagram !== "function") {
    throw new RuntimeError("UDP needs Deno's unstable network API: run deno with --unstable-net");
  }
  try {
    return Deno.listenDatagram({ transport: "udp", hostname: where.hostname, port: where.port! });
  } catch (err) {
    throw explainNetworkError(err, "listen", where);
  }
}
