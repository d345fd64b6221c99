/**
 * The TLS stage of a server: takes a TCP connection the server already accepted (TCP_NODELAY set,
 * perhaps with bytes already read from it, such as what followed a PROXY header) and runs the
 * server side of the TLS handshake on it, with `node:tls`. What comes out is a connection the echo
 * loop reads and writes, and what the handshake showed: protocol version, cipher suite, the name
 * the client asked for (SNI), the ALPN protocol agreed, the client certificate's subject, and how
 * long it all took.
 *
 * @module
 */

import {
  createSecureContext,
  type DetailedPeerCertificate,
  type SecureContext,
  TLSSocket,
} from "node:tls";
import { X509Certificate } from "node:crypto";
import type { ClientChainVerifier } from "./client_chain.ts";
import { checkCertifiedKey, parseCertificates } from "./certificates.ts";
import { errorReason, RuntimeError, type TlsFailure, TlsHandshakeError } from "../base/errors.ts";
import { SocketConn } from "./socket_conn.ts";

/** A server's TLS settings, all PEM. */
export interface TlsServerOptions {
  /** The server's certificate chain, leaf first. */
  cert: string;
  /** The private key of the leaf certificate. */
  key: string;
  /**
   * Require a client certificate signed by one of these CA certificates (mutual TLS), judged as
   * `openssl verify -purpose sslclient` judges it, with the intermediates the client sends; a
   * client without one, or with one that fails, fails the handshake.
   */
  clientCa?: string;
  /** ALPN protocols the server agrees to, in its order of preference. */
  alpn?: string[];
  /**
   * Milliseconds a client has to complete the handshake, from its start; default
   * {@linkcode DEFAULT_TLS_HANDSHAKE_TIMEOUT}. A silent client is not let hold its slot.
   */
  handshakeTimeout?: number;
}

/** How long a client has to complete the TLS handshake without `handshakeTimeout`: 10 s. */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT = 10_000;

/** What a TLS handshake showed. */
export interface TlsDetails {
  /** The protocol version: `TLSv1.3` or `TLSv1.2`. */
  version: string;
  /** The cipher suite, by its IANA name. */
  cipher: string;
  /** The host name the client asked for (SNI), if it named one. */
  serverName?: string;
  /** The ALPN protocol agreed on, if any. */
  alpn?: string;
  /** The subject of the client's certificate (mutual TLS), e.g. `CN=alice`. */
  clientSubject?: string;
  /** Milliseconds from the start of the handshake to its end. */
  handshakeMs: number;
}

/** A connection after its TLS handshake. */
export interface TlsSession {
  /** The decrypted stream, read and written like a `Deno.Conn`. */
  conn: SocketConn;
  /** What the handshake showed. */
  details: TlsDetails;
}

/** Where the files came from, for messages. */
export interface TlsFileNames {
  /** The certificate chain's file. */
  certFile?: string;
  /** The key's file. */
  keyFile?: string;
  /** The client CA file. */
  clientCaFile?: string;
}

/**
 * The TLS side of a server: its certificate, key and settings checked and loaded once, then a
 * handshake per connection with {@linkcode TlsServer.handshake}.
 *
 * @example A handshake on an accepted connection
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { connect, listenSockets, makeSelfSignedCertificates, TlsServer } from "../mod.ts";
 *
 * const { caCert, cert, key } = await makeSelfSignedCertificates({ names: ["127.0.0.1"] });
 * const tls = new TlsServer({ cert, key, alpn: ["echo"] });
 * const listener = await listenSockets({ hostname: "127.0.0.1", port: 0 });
 * const client = connect({
 *   hostname: "127.0.0.1",
 *   port: listener.addr.port,
 *   tls: { caCerts: [caCert], alpn: ["echo"] },
 * });
 * const session = await tls.handshake(await listener.accept());
 * equal(session.details.alpn, "echo");
 * (await client).close();
 * session.conn.close();
 * listener.close();
 * ```
 */
export class TlsServer {
  readonly #context: SecureContext;
  /** Judges client certificates; loaded (with its npm package) only for mutual TLS. */
  readonly #clientChains?: Promise<ClientChainVerifier>;
  readonly #alpn?: string[];
  readonly #handshakeTimeout: number;

  /**
   * Checks the certificate, key and client CA and loads them; throws a {@linkcode RuntimeError}
   * naming the file that is wrong. `files` names them in those messages.
   */
  constructor(options: TlsServerOptions, files: TlsFileNames = {}) {
    checkCertifiedKey({ ...options, ...files });
    if (options.clientCa !== undefined) {
      const cas = parseCertificates(options.clientCa, files.clientCaFile ?? "the client CA");
      this.#clientChains = import("./client_chain.ts").then((module) =>
        new module.ClientChainVerifier(cas.map((ca) => ca.raw))
      );
      // A failure to load it refuses each client certificate; it is not left unhandled here.
      this.#clientChains.catch(() => {});
    }
    this.#alpn = options.alpn?.length ? options.alpn : undefined;
    this.#handshakeTimeout = options.handshakeTimeout ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT;
    try {
      this.#context = createSecureContext({
        cert: options.cert,
        key: options.key,
        ca: options.clientCa,
      });
    } catch (err) {
      throw new RuntimeError(`cannot use the TLS certificate and key: ${errorReason(err)}`);
    }
  }

  /**
   * Runs the server side of the handshake on `conn`, after replaying `unread` (bytes already read
   * from it that belong to the handshake). Rejects with a {@linkcode TlsHandshakeError}
   * (`TLS handshake failed: REASON`, code `TLS_HANDSHAKE`) when the
   * client fails it, sends no or an untrusted client certificate, or the connection ends first.
   * `conn` belongs to the returned session from then on, and is closed on failure.
   */
  handshake(conn: SocketConn, unread?: Uint8Array): Promise<TlsSession> {
    const started = performance.now();
    const addresses = { remoteAddr: conn.remoteAddr, localAddr: conn.localAddr };
    const tcp = conn.release(unread);
    // The client already sent FIN (after a PROXY header, say): it cannot finish a handshake.
    const endedEarly = tcp.readableEnded || tcp.destroyed;
    // Bytes read off the socket before the handshake (a PROXY header): bytes put back excluded.
    const consumedBefore = tcp.bytesRead - tcp.readableLength;
    const socket = new TLSSocket(tcp, {
      isServer: true,
      secureContext: this.#context,
      requestCert: this.#clientChains !== undefined,
      rejectUnauthorized: this.#clientChains !== undefined,
      ALPNProtocols: this.#alpn,
    });
    return new Promise((resolve, reject) => {
      const settled = () => {
        clearTimeout(deadline);
        socket.off("error", onError);
        socket.off("close", onClose);
        socket.off("end", onEnd);
      };
      const fail = (reason: string, failure: TlsFailure) => {
        const beforeFirstByte = failure === "closed" && tcp.bytesRead === consumedBefore;
        settled();
        // Errors after the failure (the destroy's own among them) must not go unheard.
        socket.on("error", () => {});
        socket.destroy();
        reject(new TlsHandshakeError(reason, { failure, beforeFirstByte }));
      };
      const onError = (err: Error & { code?: string }) =>
        err.code === "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE"
          ? fail("the client sent no certificate, and one is required", "certificate")
          : fail(errorReason(err), isClosing(err) ? "closed" : "protocol");
      const onClose = () => fail("the client closed the connection", "closed");
      const onEnd = () => fail("the client closed the connection during the handshake", "closed");
      const deadline = setTimeout(
        () => fail(`no handshake within ${this.#handshakeTimeout / 1000} s`, "timeout"),
        this.#handshakeTimeout,
      );
      if (endedEarly) return onEnd();
      // A FIN or a reset before the handshake ends it at once: the client cannot finish it. The
      // TLS socket's own `end` comes after the bytes before the FIN, and what they did.
      socket.once("end", onEnd);
      socket.once("error", onError);
      socket.once("close", onClose);
      socket.once("secure", async () => {
        settled();
        let clientSubject: string | undefined;
        if (this.#clientChains) {
          // An error while the certificate is judged must not go unheard; the verdict tells.
          const ignore = () => {};
          socket.on("error", ignore);
          let problem: string | undefined;
          try {
            const chain = peerChain(socket.getPeerCertificate(true));
            problem = chain.length
              ? await (await this.#clientChains).untrustedReason(chain)
              : "no certificate";
            if (!problem) clientSubject = subjectOf(new X509Certificate(chain[0]));
          } catch (err) {
            // No certificate, however made, can crash the server: a check that throws refuses.
            problem = `it cannot be checked: ${errorReason(err)}`;
          }
          if (problem) return fail(`client certificate refused: ${problem}`, "certificate");
          socket.off("error", ignore);
        }
        const cipher = socket.getCipher();
        resolve({
          conn: new SocketConn(socket, addresses),
          details: {
            version: socket.getProtocol() ?? "unknown",
            cipher: cipher?.standardName ?? cipher?.name ?? "unknown",
            serverName: stringOrUndefined(
              (socket as TLSSocket & { servername?: unknown }).servername,
            ),
            alpn: stringOrUndefined(socket.alpnProtocol),
            clientSubject,
            handshakeMs: performance.now() - started,
          },
        });
      });
    });
  }
}

/** True when `err` says the client reset or closed the connection. */
function isClosing(err: Error & { code?: string }): boolean {
  return err.code === "ECONNRESET" || err.code === "EPIPE" || err.code === "ECONNABORTED";
}

/** The subject of `cert` on one line: `CN=alice, O=Example`. */
function subjectOf(cert: X509Certificate): string {
  return cert.subject.replaceAll("\n", ", ");
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** The DER certificates a client sent, its own first, from `getPeerCertificate(true)`. */
function peerChain(peer: DetailedPeerCertificate | undefined): Uint8Array[] {
  const seen = new Set<string>();
  const chain: Uint8Array[] = [];
  // A self-signed certificate is its own issuer: the chain ends at the first one seen again.
  for (let cert = peer; cert?.raw; cert = cert.issuerCertificate) {
    const der = cert.raw.toString("base64");
    if (seen.has(der)) break;
    seen.add(der);
    chain.push(cert.raw);
  }
  return chain;
}
