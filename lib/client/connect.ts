/**
 * How a client reaches an echo server: TCP (with TCP_NODELAY), TLS over TCP or a Unix domain
 * socket, an optional PROXY protocol header first, with failures turned into one-line errors that
 * say what to do.
 *
 * @module
 */

import {
  errorReason,
  explainNetworkError,
  InterruptedError,
  TlsHandshakeError,
  UsageError,
} from "../base/errors.ts";
import { writeAll } from "../base/io.ts";
import { explainCertificateError } from "../net/certificates.ts";
import type { StreamConn } from "../net/stream_conn.ts";
import { type AddressFamily, dialTcp } from "./dial.ts";
import { handshakeMixUpHint } from "./mix_up.ts";
import { connectNodeTls } from "../net/tls_client.ts";
import { describeEndpoint, targetOf } from "../net/transport.ts";
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

/** Where a stream client connects: TCP (plain or TLS) or a Unix domain socket. */
export interface ConnectOptions {
  /** Server host name or address. Default `localhost`. */
  hostname?: string;
  /** Server port. Default 10000. */
  port?: number;
  /**
   * Only addresses of this IP version: 4 or 6 (`-4`, `-6`). Without it every address of the
   * name is tried, both families taking turns (Happy Eyeballs, see {@linkcode dialTcp}).
   */
  family?: AddressFamily;
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

/**
 * Connects to a stream echo server over TCP, TLS or a Unix domain socket, with TCP_NODELAY on
 * TCP connections and the TLS handshake done, so that a bad certificate fails here, in one line.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { connect } from "./connect.ts";
 * import { listen } from "../net/transport.ts";
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
  const where = targetOf(options);
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
        { ...tls, hostname, port, family: options.family, signal, preface },
        tls,
      );
      return Object.assign(conn, { tls: { handshakeMs, alpn } });
    }
    const tcp = await dialTcp({ hostname, port, family: options.family, signal });
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
      throw new TlsHandshakeError(errorReason(err), { cause: err });
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    return Object.assign(conn, { tls: { handshakeMs: performance.now() - started, alpn } });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    if (signal?.aborted) {
      throw new InterruptedError(`interrupted while connecting to ${describeEndpoint(options)}`);
    }
    if (err instanceof TlsHandshakeError) {
      const reason = handshakeMixUpHint(err.reason) ?? explainCertificateError(err.reason);
      throw new TlsHandshakeError(reason, {
        context: `cannot connect to ${describeEndpoint(options)}`,
        cause: err,
      });
    }
    throw explainNetworkError(err, "connect", where);
  }
}

/** Writes the whole PROXY header on a fresh connection; closes it when that fails. */
async function sendProxyHeader(conn: Deno.Conn, init: ProxyHeaderInit): Promise<void> {
  try {
    await writeAll(conn, encodeProxyHeaderFor(init, conn.localAddr, conn.remoteAddr));
  } catch (err) {
    conn.close();
    throw err;
  }
}
