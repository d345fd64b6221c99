/**
 * The TLS client for what `Deno.startTls` cannot do: skip the checks of the server's certificate
 * (`Deno.connectTls` always verifies the chain, and `--unsafely-ignore-certificate-errors` is a
 * flag of the whole process) and present a client certificate (mutual TLS). It connects TCP with
 * `node:net`, sets TCP_NODELAY, then runs the handshake with `node:tls`.
 *
 * @module
 */

import { connect as connectTcp, isIP } from "node:net";
import { connect as connectTls, createSecureContext, type SecureContext } from "node:tls";
import { errorReason, TlsHandshakeError } from "../base/errors.ts";
import { SocketConn, toDenoError } from "./socket_conn.ts";

/** Where to connect and how to check the server. */
export interface NodeTlsOptions {
  /** Server host name or address. */
  hostname: string;
  /** Server port. */
  port: number;
  /** Only addresses of this IP version (`-4`, `-6`); else node:net tries them all. */
  family?: 4 | 6;
  /** Aborts the attempt. */
  signal?: AbortSignal;
  /** Extra trusted root certificates (PEM), on top of the system's. */
  caCerts?: string[];
  /** Accept any certificate the server shows. */
  insecure?: boolean;
  /** ALPN protocols to offer. */
  alpn?: string[];
  /** A client certificate chain (PEM). */
  cert?: string;
  /** The private key of `cert` (PEM). */
  key?: string;
  /** Bytes to send on the TCP connection before TLS starts, such as a PROXY header. */
  preface?: (local: Deno.NetAddr, remote: Deno.NetAddr) => Uint8Array;
}

/** A TLS connection made by {@linkcode connectNodeTls}. */
export interface NodeTlsConn {
  /** The connection, read and written like a `Deno.Conn`. */
  conn: SocketConn;
  /** Milliseconds from the TCP connection to the end of the handshake. */
  handshakeMs: number;
  /** The ALPN protocol the server picked, if any. */
  alpn?: string;
}

/**
 * The client's certificates, trusted roots and key, loaded once per settings object rather than
 * per connection: parsing the system's roots alone takes milliseconds, which would count as
 * handshake time on both ends.
 */
const contexts = new WeakMap<object, SecureContext>();

function secureContextFor(options: NodeTlsOptions, settings: object): SecureContext {
  let context = contexts.get(settings);
  if (context === undefined) {
    // The default roots, then the extra CAs added to them: passing `ca` would replace the
    // defaults, and reading them (`rootCertificates`) needs --allow-sys.
    context = createSecureContext({ cert: options.cert, key: options.key });
    const store = (context as SecureContext & { context?: { addCACert?(pem: string): void } })
      .context;
    for (const ca of options.caCerts ?? []) store?.addCACert?.(ca);
    contexts.set(settings, context);
  }
  return context;
}

/**
 * Connects TCP with TCP_NODELAY, then TLS; resolves once the handshake is done. A failed
 * handshake rejects with a {@linkcode TlsHandshakeError} saying `TLS handshake failed: REASON`.
 * Connections given the same `settings` object share the loaded certificates and key.
 */
export function connectNodeTls(
  options: NodeTlsOptions,
  settings: object = options,
): Promise<NodeTlsConn> {
  return new Promise((resolve, reject) => {
    const tcp = connectTcp({
      host: options.hostname,
      port: options.port,
      noDelay: true,
      ...(options.family ? { family: options.family } : { autoSelectFamily: true }),
    });
    let socket: ReturnType<typeof connectTls> | undefined;
    let handshaking = false;
    const onAbort = () => {
      tcp.destroy();
      socket?.destroy();
      reject(new DOMException("The connection attempt was aborted", "AbortError"));
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const settle = () => options.signal?.removeEventListener("abort", onAbort);
    const fail = (err: Error) => {
      settle();
      tcp.destroy();
      socket?.destroy();
      reject(
        handshaking ? new TlsHandshakeError(errorReason(err), { cause: err }) : toDenoError(err),
      );
    };
    tcp.once("error", fail);
    tcp.once("connect", () => {
      tcp.setNoDelay(true);
      if (options.preface) {
        const address = (hostname = "", port = 0): Deno.NetAddr => ({
          transport: "tcp",
          hostname,
          port,
        });
        try {
          tcp.write(options.preface(
            address(tcp.localAddress, tcp.localPort),
            address(tcp.remoteAddress, tcp.remotePort),
          ));
        } catch (err) {
          return fail(err as Error);
        }
      }
      let secureContext: SecureContext;
      try {
        secureContext = secureContextFor(options, settings);
      } catch (err) {
        return fail(err as Error);
      }
      handshaking = true;
      const started = performance.now();
      socket = connectTls({
        socket: tcp,
        host: options.hostname,
        // SNI carries host names only, never addresses.
        servername: isIP(options.hostname) ? undefined : options.hostname,
        secureContext,
        rejectUnauthorized: !options.insecure,
        ALPNProtocols: options.alpn,
      });
      socket.once("error", fail);
      socket.once("secureConnect", () => {
        settle();
        const tlsSocket = socket!;
        tlsSocket.off("error", fail);
        tcp.off("error", fail);
        const conn = new SocketConn(tlsSocket, {
          remoteAddr: {
            transport: "tcp",
            hostname: tcp.remoteAddress ?? options.hostname,
            port: tcp.remotePort ?? options.port,
          },
          localAddr: {
            transport: "tcp",
            hostname: tcp.localAddress ?? "",
            port: tcp.localPort ?? 0,
          },
        });
        const alpn = tlsSocket.alpnProtocol;
        resolve({
          conn,
          handshakeMs: performance.now() - started,
          alpn: typeof alpn === "string" ? alpn : undefined,
        });
      });
    });
  });
}
