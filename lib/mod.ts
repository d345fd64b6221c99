/**
 * tcpecho as a library: a known-good TCP echo server to embed in tests and tools, a client
 * that checks every echoed byte, and a load generator that times every round trip.
 *
 * @example An echo server as a test fixture
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { sendAndVerify, startEchoServer } from "./mod.ts";
 *
 * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
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
 * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0, bufferSize: 4096 });
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
 * await using server = await startEchoServer({ port: 0, faults: { delay: 20, resetAfter: 10 } });
 * await rejects(sendAndVerify({ port: server.addr.port, message: new Uint8Array(100) }), /reset/);
 * equal(server.stats.faults.reset, 1);
 * ```
 *
 * @example Change the weather mid-test: faults, readiness and connections at run time
 * ```ts
 * import { deepEqual, equal, rejects } from "node:assert/strict";
 * import { sendAndVerify, startEchoServer } from "./mod.ts";
 *
 * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0, resettable: true });
 * const port = server.addr.port;
 * // The next connection only: it is reset after 10 bytes echoed; the one after is spared.
 * server.setFaults({ resetAfter: 10 }, { count: 1 });
 * await rejects(sendAndVerify({ port, message: new Uint8Array(100) }), /reset/);
 * equal((await sendAndVerify({ port, message: new Uint8Array(100) })).bytesReceived, 100);
 * server.updateFaults({ delay: 20 }, { for: 60_000 });
 * equal(server.faults?.delay, 20);
 * server.clearFaults();
 * server.setReady(false);
 * equal(server.ready, false);
 * using client = await Deno.connect({ hostname: "127.0.0.1", port });
 * await client.write(new Uint8Array([1]));
 * await client.read(new Uint8Array(1));
 * deepEqual(server.connections().map((c) => [c.received, c.echoed]), [[1, 1]]);
 * equal(server.closeConnections({ reset: true }), 1);
 * await rejects(client.read(new Uint8Array(1)), Deno.errors.ConnectionReset);
 * ```
 *
 * @module
 */

export { formatBytesLiteral } from "./base/bytes_literal.ts";
export { formatAddress, formatPeer, isLoopback } from "./net/peer.ts";
export {
  EchoError,
  type EchoErrorCode,
  type ErrorCode,
  GreetingError,
  IllegalTransitionError,
  InterruptedError,
  ProxyHeaderError,
  RuntimeError,
  TcpechoError,
  type TlsFailure,
  TlsHandshakeError,
  UnknownHostError,
  UsageError,
} from "./base/errors.ts";
export { type CloseReason, type ConnectionInfo, type EchoEvent } from "./server/events.ts";
export {
  addStats,
  type Counts,
  type EchoStats,
  type EchoTimeRecorder,
  noStats,
} from "./server/stats.ts";
export {
  CUT_GRACE_MS,
  EchoServer,
  type EchoServerOptions,
  type FaultChange,
  type OpenConnection,
  type ServerLimits,
  type StreamListener,
} from "./server/echo_server.ts";
export { type ConnectionState } from "./server/connection_state.ts";
export { startEchoServer, type StartEchoServerOptions } from "./server/start.ts";
export {
  ECHO_TIME_BOUNDS,
  echoTimeHistogram,
  serverMetricsText,
  type ServerPhase,
  type ServerSnapshot,
} from "./metrics/server_metrics.ts";
export {
  type MetricsEndpoint,
  type MetricsEndpointOptions,
  serveMetrics,
} from "./metrics/endpoint.ts";
export {
  addHistograms,
  BucketHistogram,
  type HistogramSnapshot,
  PROMETHEUS_CONTENT_TYPE,
  PrometheusText,
  type Sample,
} from "./metrics/prometheus.ts";
export {
  sendAndVerify,
  type SendOptions,
  type SendResult,
  STREAM_WINDOW,
} from "./client/echo_client.ts";
export { listen, type ListenOptions, listenTcp, MAX_UDP_PAYLOAD } from "./net/transport.ts";
export { type ResettableConn, type StreamConn } from "./net/stream_conn.ts";
export {
  type ClientConn,
  type ClientTlsDetails,
  connect,
  type ConnectOptions,
  type TlsClientOptions,
} from "./client/connect.ts";
export { type AddressFamily, type DialOptions, dialTcp } from "./client/dial.ts";
export {
  listenSockets,
  SocketConn,
  SocketListener,
  type SocketListenOptions,
} from "./net/socket_conn.ts";
export {
  type TlsDetails,
  type TlsFileNames,
  TlsServer,
  type TlsServerOptions,
  type TlsSession,
} from "./net/tls_server.ts";
export {
  makeSelfSignedCertificates,
  type SelfSignedCertificates,
  type SelfSignedOptions,
} from "./net/self_signed.ts";
export {
  type CertifiedKeyFiles,
  checkCertifiedKey,
  explainCertificateError,
  parseCertificates,
  parsePrivateKey,
  serverCertificateProblem,
} from "./net/certificates.ts";
export {
  startUdpEchoServer,
  type StartUdpEchoServerOptions,
  UdpEchoServer,
  type UdpEchoServerOptions,
} from "./server/udp_echo_server.ts";
export {
  ping,
  type PingFailure,
  type PingOptions,
  type PingReply,
  type PingResult,
} from "./client/ping.ts";
export { RoundTripStats, type RoundTripSummary } from "./client/round_trip_stats.ts";
export {
  type HistogramInterval,
  LatencyHistogram,
  type LatencySummary,
} from "./metrics/latency_histogram.ts";
export {
  type BackendReport,
  type ConnectReport,
  type DatagramReport,
  GENERATOR_LAG_LIMIT_US,
  type GeneratorAudit,
  type IntervalReport,
  type LoadErrors,
  type LoadOptions,
  type LoadProgress,
  type LoadReport,
  MAX_BACKENDS,
  OTHER_BACKENDS,
  type RateReport,
  runLoad,
  totalErrors,
} from "./load/load.ts";
export {
  OpenLoopSchedule,
  Pacer,
  type PacerOptions,
  type ScheduleOptions,
} from "./load/open_loop.ts";
export {
  type Greeting,
  greetingTemplate,
  type GreetingValues,
  MAX_GREETING,
  readGreeting,
  receiveGreeting,
} from "./server/greeting.ts";
export { pattern } from "./load/pattern.ts";
export {
  checkThresholds,
  parseThreshold,
  type Threshold,
  type ThresholdOperator,
  type ThresholdResult,
} from "./load/thresholds.ts";
export { formatHdrLog, mergeHdrLogs } from "./load/hdr_log.ts";
export { runUdpLoad, UDP_HEADER_SIZE, type UdpLoadOptions } from "./load/udp_load.ts";
export {
  pingUdp,
  type UdpPingDatagrams,
  type UdpPingOptions,
  type UdpPingResult,
} from "./load/udp_ping.ts";
export { type Shard, shardOf } from "./load/shard.ts";
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
  type ProxyHeaderInit,
  type ProxyMode,
  type ProxyParse,
  type ProxySslInfo,
  type ProxyTlv,
  type ProxyTlvValue,
} from "./proxy/header.ts";
export {
  claimedPeer,
  DEFAULT_PROXY_TIMEOUT,
  type ProxyInfo,
  type ProxyReadOptions,
  type ProxySource,
  readProxyHeader,
} from "./proxy/reader.ts";
export {
  checkFaults,
  describeFaults,
  type FaultCounts,
  type FaultKind,
  type FaultSettings,
} from "./faults/settings.ts";
export {
  type ControlChange,
  type ControlEndpoint,
  type ControlOptions,
  type ControlTarget,
  serveControl,
  serverTarget,
} from "./control/api.ts";
export { CONTROL_OPENAPI } from "./control/openapi.ts";
