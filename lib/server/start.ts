/**
 * Starting a stream echo server in one call: the listener its options need (TCP, TLS over TCP,
 * a Unix domain socket, or TCP whose connections can be reset), then the server on it.
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";
import { needsReset } from "../faults/settings.ts";
import type { TlsServerOptions } from "../net/tls_server.ts";
import { listen, type ListenOptions, listenTcp } from "../net/transport.ts";
import { EchoServer, type EchoServerOptions } from "./echo_server.ts";

/**
 * Where and how to start an echo server with {@linkcode startEchoServer}: TCP by default, TLS
 * with `tls`, a Unix domain socket with `unix`.
 */
export interface StartEchoServerOptions
  extends Omit<EchoServerOptions, "listener" | "tls">, ListenOptions {
  /**
   * Plain TCP: listen with `node:net`, whose connections can end with a TCP reset, so that
   * `closeConnections({ reset: true })` and reset faults set at run time work. Default false.
   */
  resettable?: boolean;
}

/**
 * Starts a stream echo server: TCP, TLS over TCP (`tls: { cert, key }`, PEM) or a Unix domain
 * socket (`unix: path`), and resolves once it listens. It is `AsyncDisposable`:
 * `await using server = await startEchoServer(...)` shuts it down gracefully.
 *
 * Plain TCP listens with `Deno.listen`; TLS, and the reset faults (`resetAfter`,
 * `resetAfterTime`), listen with `node:net`, whose sockets keep TCP_NODELAY under TLS and can end
 * with a real TCP reset.
 *
 * @example TCP on a free port
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { startEchoServer } from "../mod.ts";
 *
 * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0, bufferSize: 4096 });
 * equal(server.addr.hostname, "127.0.0.1");
 * ```
 *
 * @example A misbehaving server for a client's own tests
 * ```ts
 * import { equal, rejects } from "node:assert/strict";
 * import { EchoError, sendAndVerify, startEchoServer } from "../mod.ts";
 *
 * await using server = await startEchoServer({
 *   port: 0,
 *   faults: { delay: 50, resetAfter: 1024, seed: 1 },
 * });
 * const started = performance.now();
 * const echo = await sendAndVerify({ port: server.addr.port, message: new Uint8Array(100) });
 * equal(echo.bytesReceived, 100);
 * equal(performance.now() - started >= 50, true);
 * // Past 1,024 bytes echoed, the server resets the connection: the client must cope.
 * await rejects(
 *   sendAndVerify({ port: server.addr.port, message: new Uint8Array(4096) }),
 *   (err: EchoError) => err.bytesReceived === 1024 && /reset/i.test(err.message),
 * );
 * ```
 *
 * @example A Unix domain socket
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { sendAndVerify, startEchoServer } from "../mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/echo.sock`;
 * {
 *   await using server = await startEchoServer({ unix: path });
 *   equal(server.addr.path, path);
 *   const result = await sendAndVerify({ unix: path, message: new Uint8Array([1, 2, 3]) });
 *   equal(result.bytesReceived, 3);
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @example TLS with mutual authentication and ALPN, logging what each handshake showed
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { makeSelfSignedCertificates, sendAndVerify, startEchoServer } from "../mod.ts";
 *
 * const server = await makeSelfSignedCertificates({ names: ["127.0.0.1"] });
 * const client = await makeSelfSignedCertificates({ names: ["alice"] });
 * const seen: string[] = [];
 * {
 *   await using echo = await startEchoServer({
 *     hostname: "127.0.0.1",
 *     port: 0,
 *     tls: { cert: server.cert, key: server.key, clientCa: client.caCert, alpn: ["echo"] },
 *     onEvent: (event) => {
 *       if (event.type === "secured") seen.push(`${event.tls.alpn} ${event.tls.clientSubject}`);
 *     },
 *   });
 *   await sendAndVerify({
 *     hostname: "127.0.0.1",
 *     port: echo.addr.port,
 *     tls: { caCerts: [server.caCert], alpn: ["echo"], cert: client.cert, key: client.key },
 *     message: new TextEncoder().encode("hello"),
 *   });
 * }
 * equal(seen[0], "echo CN=alice");
 * ```
 *
 * @example Behind a proxy that sends the PROXY protocol: the log names the real client
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { type EchoEvent, sendAndVerify, startEchoServer } from "../mod.ts";
 *
 * const clients: string[] = [];
 * const onEvent = (event: EchoEvent) => {
 *   if (event.type === "connected") clients.push((event.conn.peer as Deno.NetAddr).hostname);
 * };
 * {
 *   await using server = await startEchoServer({
 *     hostname: "127.0.0.1",
 *     port: 0,
 *     proxyProtocol: "any",
 *     proxyTimeout: 1000,
 *     onEvent,
 *   });
 *   // The client side of the same option: what a proxy in front would send.
 *   await sendAndVerify({
 *     hostname: "127.0.0.1",
 *     port: server.addr.port,
 *     proxyHeader: {
 *       version: 2,
 *       source: { transport: "tcp", hostname: "203.0.113.7", port: 4242 },
 *     },
 *     message: new TextEncoder().encode("hello"),
 *   });
 * }
 * equal(clients[0], "203.0.113.7");
 * ```
 */
export function startEchoServer(
  options: StartEchoServerOptions & { unix: string },
): Promise<EchoServer<Deno.UnixAddr>>;
/** Starts a TLS echo server; see the first signature. */
export function startEchoServer(
  options: StartEchoServerOptions & { tls: TlsServerOptions },
): Promise<EchoServer<Deno.NetAddr>>;
/** Starts a TCP echo server; see the first signature. */
export function startEchoServer(
  options?: StartEchoServerOptions & { tls?: undefined },
): Promise<EchoServer<Deno.NetAddr>>;
/** Starts an echo server of any kind; see the first signature. */
export function startEchoServer(options: StartEchoServerOptions): Promise<EchoServer>;
export async function startEchoServer(
  options: StartEchoServerOptions = {},
): Promise<EchoServer> {
  const { hostname, port, unix, tls, reusePort, resettable, ...rest } = options;
  if (resettable && unix === undefined && tls === undefined) {
    return new EchoServer({ ...rest, listener: await listenTcp({ hostname, port, reusePort }) });
  }
  if (needsReset(rest.faults)) {
    if (unix !== undefined || tls || reusePort) {
      throw new UsageError("the reset faults work over plain TCP, not over TLS or Unix sockets");
    }
    return new EchoServer({ ...rest, listener: await listenTcp({ hostname, port }) });
  }
  if (tls === undefined) {
    return new EchoServer({ ...rest, listener: listen({ hostname, port, unix, reusePort }) });
  }
  if (unix !== undefined) throw new UsageError("TLS works over TCP only, not over a Unix socket");
  // Only a TLS server loads node:tls and the certificate checks.
  const { TlsServer } = await import("../net/tls_server.ts");
  const tlsServer = new TlsServer(tls);
  const listener = await listenTcp({ hostname, port, reusePort });
  return new EchoServer({ ...rest, listener, tls: tlsServer });
}
