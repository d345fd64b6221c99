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
 * @example A misbehaving server: slow, then cut with a TCP reset
 * ```ts
 * import { equal, rejects } from "node:assert/strict";
 * import { sendAndVerify, startEchoServer } from "./mod.ts";
 *
 * await using server = startEchoServer({ port: 0, faults: { delay: 20, resetAfter: 10 } });
 * await rejects(sendAndVerify({ port: server.addr.port, message: new Uint8Array(100) }), /reset/);
 * equal(server.stats.faults.reset, 1);
 * ```
 *
 * @module
 */

export { formatBytesLiteral } from "./bytes_literal.ts";
export { formatAddress, formatPeer, isLoopback } from "./peer.ts";
export { InterruptedError, RuntimeError, UsageError } from "./errors.ts";
export {
  addStats,
  type CloseReason,
  type ConnectionInfo,
  type ConnectionState,
  type Counts,
  CUT_GRACE_MS,
  type EchoEvent,
  EchoServer,
  type EchoServerOptions,
  type EchoStats,
  noStats,
  startEchoServer,
  type StartEchoServerOptions,
  type StreamListener,
} from "./echo_server.ts";
export {
  ECHO_TIME_BOUNDS,
  echoTimeHistogram,
  serverMetricsText,
  type ServerPhase,
  type ServerSnapshot,
} from "./server_metrics.ts";
export {
  type MetricsEndpoint,
  type MetricsEndpointOptions,
  serveMetrics,
} from "./metrics_endpoint.ts";
export {
  addHistograms,
  BucketHistogram,
  type HistogramSnapshot,
  PROMETHEUS_CONTENT_TYPE,
  PrometheusText,
  type Sample,
} from "./prometheus.ts";
export {
  EchoError,
  sendAndVerify,
  type SendOptions,
  type SendResult,
  STREAM_WINDOW,
} from "./echo_client.ts";
export {
  type ClientConn,
  type ClientTlsDetails,
  connect,
  type ConnectOptions,
  listen,
  type ListenOptions,
  listenTcp,
  MAX_UDP_PAYLOAD,
  type StreamConn,
  type TlsClientOptions,
} from "./transport.ts";
export {
  listenSockets,
  SocketConn,
  SocketListener,
  type SocketListenOptions,
} from "./socket_conn.ts";
export {
  type TlsDetails,
  type TlsFileNames,
  TlsServer,
  type TlsServerOptions,
  type TlsSession,
} from "./tls_server.ts";
export {
  makeSelfSignedCertificates,
  type SelfSignedCertificates,
  type SelfSignedOptions,
} from "./self_signed.ts";
export {
  type CertifiedKeyFiles,
  checkCertifiedKey,
  explainCertificateError,
  parseCertificates,
  parsePrivateKey,
  serverCertificateProblem,
} from "./certificates.ts";
export {
  startUdpEchoServer,
  type StartUdpEchoServerOptions,
  UdpEchoServer,
  type UdpEchoServerOptions,
} from "./udp_echo_server.ts";
export { ping, type PingOptions, type PingReply, type PingResult } from "./ping.ts";
export { RoundTripStats, type RoundTripSummary } from "./round_trip_stats.ts";
export { LatencyHistogram, type LatencySummary } from "./latency_histogram.ts";
export {
  type BackendReport,
  type ConnectReport,
  type LoadErrors,
  type LoadOptions,
  type LoadProgress,
  type LoadReport,
  MAX_BACKENDS,
  OTHER_BACKENDS,
  type RateReport,
  runLoad,
  totalErrors,
} from "./load.ts";
export { OpenLoopSchedule, Pacer, type PacerOptions, type ScheduleOptions } from "./open_loop.ts";
export {
  type Greeting,
  greetingTemplate,
  type GreetingValues,
  MAX_GREETING,
  readGreeting,
  receiveGreeting,
} from "./greeting.ts";
export { pattern } from "./pattern.ts";
export {
  describeProxyTlvs,
  encodeProxyHeader,
  encodeProxyHeaderFor,
  parseProxyHeader,
  PROXY_TLV,
  PROXY_V1_MAX_LENGTH,
  PROXY_V2_SIGNATURE,
  type ProxyAddr,
  type ProxyCommand,
  type ProxyFamily,
  type ProxyHeader,
  ProxyHeaderError,
  type ProxyHeaderInit,
  type ProxyMode,
  type ProxyParse,
  type ProxySslInfo,
  type ProxyTlv,
  type ProxyTlvValue,
} from "./proxy_header.ts";
export {
  claimedPeer,
  DEFAULT_PROXY_TIMEOUT,
  type ProxyInfo,
  type ProxyReadOptions,
  type ProxySource,
  readProxyHeader,
} from "./proxy_reader.ts";
export {
  checkFaults,
  describeFaults,
  type FaultCounts,
  type FaultKind,
  type FaultSettings,
} from "./faults.ts";
export { type ResettableConn, ResettableListener } from "./resettable_listener.ts";
