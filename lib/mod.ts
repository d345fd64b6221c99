/**
 * tcpecho as a library: a known-good TCP echo server to embed in tests and tools, a client
 * that checks every echoed byte, and a load generator that times every round trip.
 *
 * @example An echo server as a test fixture
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { sendAndVerify, startEchoServer } from "./mod.ts";
 *
 * await using server = startEchoServer({ hostname: "127.0.0.1", port: 0 });
 * const result = await sendAndVerify({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   message: new TextEncoder().encode("ping"),
 * });
 * equal(result.bytesReceived, 4);
 * equal(server.stats.connections, 1);
 * ```
 *
 * @example Load an echo server and check every byte of the echo
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { runLoad, startEchoServer } from "./mod.ts";
 *
 * await using server = startEchoServer({ hostname: "127.0.0.1", port: 0, bufferSize: 4096 });
 * const report = await runLoad({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   connections: 4,
 *   size: 1000,
 *   window: 2,
 *   duration: 200,
 * });
 * equal(report.ok, true);
 * equal(server.stats.bytesEchoed, report.bytes);
 * console.log(`${report.messagesPerSecond.toFixed(0)} msgs/s, p99 ${report.latency.p99} µs`);
 * ```
 *
 * @module
 */

import { type EchoEvent, EchoServer, type EchoServerOptions } from "./echo_server.ts";
import { listen, listenDatagram, type ListenOptions } from "./transport.ts";
import { UdpEchoServer } from "./udp_echo_server.ts";

export { formatBytesLiteral } from "./bytes_literal.ts";
export { formatAddress, formatPeer, isLoopback } from "./peer.ts";
export { RuntimeError, UsageError } from "./errors.ts";
export {
  type CloseReason,
  type ConnectionInfo,
  type EchoEvent,
  EchoServer,
  type EchoServerOptions,
  type EchoStats,
} from "./echo_server.ts";
export {
  EchoError,
  MAX_DATAGRAM,
  sendAndVerify,
  type SendOptions,
  type SendResult,
} from "./echo_client.ts";
export {
  connect,
  type ConnectOptions,
  listen,
  type ListenOptions,
  type StreamConn,
  type TlsClientOptions,
  type TlsServerOptions,
} from "./transport.ts";
export { UdpEchoServer, type UdpEchoServerOptions } from "./udp_echo_server.ts";
export { pingEcho, type PingOptions, type PingReply, type PingResult } from "./echo_pinger.ts";
export { RoundTripStats, type RoundTripSummary } from "./round_trip_stats.ts";
export { LatencyHistogram, type LatencySummary } from "./histogram.ts";
export {
  type LoadErrors,
  type LoadOptions,
  type LoadProgress,
  type LoadReport,
  runLoad,
  totalErrors,
} from "./load.ts";
export { pattern } from "./pattern.ts";

/**
 * Where and how to start an echo server with {@linkcode startEchoServer}: TCP by default, TLS
 * with `tls`, a Unix domain socket with `unix`.
 */
export interface StartEchoServerOptions
  extends Omit<EchoServerOptions, "listener">, ListenOptions {}

/**
 * Starts a stream echo server: TCP, TLS over TCP (`tls: { cert, key }`, PEM) or a Unix domain
 * socket (`unix: path`). It is `AsyncDisposable`: `await using` shuts it down gracefully.
 *
 * @example TCP on a free port
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { startEchoServer } from "./mod.ts";
 *
 * await using server = startEchoServer({ hostname: "127.0.0.1", port: 0, bufferSize: 4096 });
 * equal(server.addr.hostname, "127.0.0.1");
 * ```
 *
 * @example A Unix domain socket
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { sendAndVerify, startEchoServer } from "./mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/echo.sock`;
 * {
 *   await using server = startEchoServer({ unix: path });
 *   equal(server.addr.path, path);
 *   const result = await sendAndVerify({ unix: path, message: new Uint8Array([1, 2, 3]) });
 *   equal(result.bytesReceived, 3);
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function startEchoServer(
  options: StartEchoServerOptions & { unix: string },
): EchoServer<Deno.UnixAddr>;
/** Starts a TCP or TLS echo server; see the first signature. */
export function startEchoServer(options?: StartEchoServerOptions): EchoServer<Deno.NetAddr>;
export function startEchoServer(options: StartEchoServerOptions = {}): EchoServer {
  const { hostname, port, unix, tls, ...rest } = options;
  return new EchoServer({ ...rest, listener: listen({ hostname, port, unix, tls }) });
}

/** Where and how to start a UDP echo server with {@linkcode startUdpEchoServer}. */
export interface StartUdpEchoServerOptions {
  /** Address to listen on. Default `localhost`. */
  hostname?: string;
  /** Port to listen on; 0 picks a free one (read it back from `addr.port`). Default 10000. */
  port?: number;
  /** Called for every datagram. */
  onEvent?: (event: EchoEvent) => void;
  /** Called when a datagram cannot be received or echoed. */
  onError?: (message: string) => void;
}

/**
 * Starts a UDP echo server (RFC 862: each datagram is sent back whole). Deno keeps UDP behind
 * `--unstable-net`: run with that flag. It is `AsyncDisposable`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { sendAndVerify, startUdpEchoServer } from "./mod.ts";
 *
 * await using server = startUdpEchoServer({ hostname: "127.0.0.1", port: 0 });
 * const result = await sendAndVerify({
 *   udp: true,
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   message: new TextEncoder().encode("ping"),
 * });
 * equal(result.bytesReceived, 4);
 * equal(server.stats.datagrams, 1);
 * ```
 */
export function startUdpEchoServer(options: StartUdpEchoServerOptions = {}): UdpEchoServer {
  const { hostname, port, ...rest } = options;
  return new UdpEchoServer({ ...rest, socket: listenDatagram({ hostname, port }) });
}
