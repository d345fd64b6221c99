/**
 * The echo server's metrics in the Prometheus text format: connections open, accepted and closed
 * by reason, bytes, datagrams, faults injected by kind, the time each chunk's echo took, and where
 * shutdown stands. The
 * echo loop only adds to plain counters and one histogram; this module reads them when scraped.
 *
 * @example Metrics of a library echo server
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { echoTimeHistogram, serverMetricsText, startEchoServer } from "../mod.ts";
 *
 * const echoTimes = echoTimeHistogram();
 * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0, echoTimes });
 * const text = serverMetricsText(
 *   [{ stats: server.stats, echoTimes: echoTimes.snapshot() }],
 *   "serving",
 * );
 * equal(text.split("\n").includes("tcpecho_connections_open 0"), true);
 * ```
 *
 * @module
 */

import type { CloseReason } from "../server/events.ts";
import { addStats, type EchoStats } from "../server/stats.ts";
import type { FaultKind } from "../faults/settings.ts";
import {
  addHistograms,
  BucketHistogram,
  type HistogramSnapshot,
  PrometheusText,
} from "./prometheus.ts";

/**
 * Where a server stands: `serving` (accepting, ready), `stopping` (still accepting for the
 * shutdown delay, but reporting not ready), `draining` (accepting no one, waiting for the open
 * connections to end).
 */
export type ServerPhase = "serving" | "stopping" | "draining";

const PHASES: readonly ServerPhase[] = ["serving", "stopping", "draining"];

/** What one server has counted: one per worker when several share a port. */
export interface ServerSnapshot {
  /** The worker's number, when several share the port: it labels the open-connection gauge. */
  worker?: number;
  /** The server's counters. */
  stats: EchoStats;
  /** Its per-chunk echo times, from {@linkcode echoTimeHistogram}. */
  echoTimes: HistogramSnapshot;
}

/**
 * Upper bounds of the echo time buckets, in seconds: from 5 µs (a loopback echo of a small chunk)
 * to 10 s (a client that stopped reading).
 */
export const ECHO_TIME_BOUNDS: readonly number[] = [
  0.000005,
  0.00001,
  0.000025,
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.1,
  1,
  10,
];

/** A histogram for `EchoServerOptions.echoTimes`, with the buckets the metrics show. */
export function echoTimeHistogram(): BucketHistogram {
  return new BucketHistogram(ECHO_TIME_BOUNDS);
}

/** The `reason` label of each way a connection ends. */
const REASON_LABELS: Readonly<Record<CloseReason, string>> = {
  eof: "eof",
  reset: "reset",
  idle: "idle",
  tls: "tls",
  shutdown: "drain_deadline",
  closed: "closed",
  "server-reset": "server_reset",
  fault: "fault",
  error: "error",
  "health-check": "health_check",
  early: "early",
  "handshake-timeout": "handshake_timeout",
};

/**
 * The metrics of one server, or of several workers sharing a port: every counter is their sum,
 * and the open-connection gauge has one sample per worker, labelled `worker`.
 */
export function serverMetricsText(
  snapshots: readonly ServerSnapshot[],
  phase: ServerPhase,
): string {
  if (snapshots.length === 0) throw new RangeError("no server to report on");
  const stats = snapshots.map((s) => s.stats).reduce(addStats);
  const echoTimes = snapshots.map((s) => s.echoTimes).reduce(addHistograms);
  const closed = Object.entries(REASON_LABELS).map(([reason, label]) => ({
    labels: { reason: label },
    value: stats.closed[reason as CloseReason],
  }));
  return new PrometheusText()
    .gauge(
      "tcpecho_connections_open",
      "Connections open right now.",
      snapshots.map((s) => ({
        labels: s.worker === undefined ? undefined : { worker: String(s.worker) },
        value: s.stats.open,
      })),
    )
    .counter(
      "tcpecho_connections_accepted_total",
      "Connections accepted, including those closed at once at the connection limit.",
      stats.connections + stats.rejected,
    )
    .counter(
      "tcpecho_connections_closed_total",
      "Connections closed, by reason: eof (the client closed), reset, idle (timeout), tls " +
        "(handshake failed), limit (--max-connections), proxy (bad or missing PROXY header), " +
        "drain_deadline (cut at shutdown), closed and server_reset (closed or reset on request, " +
        "by the control API or the library), fault (a reset fault), error, health_check (ended " +
        "before its first byte), early (closed during the handshake), handshake_timeout.",
      [
        ...closed,
        { labels: { reason: "limit" }, value: stats.rejected },
        { labels: { reason: "proxy" }, value: stats.proxyRefused },
      ],
    )
    .counter(
      "tcpecho_tls_handshakes_failed_total",
      "TLS handshakes that failed, by reason: timeout (--tls-handshake-timeout), closed (the " +
        "client closed or reset first), certificate (client certificate missing or refused), " +
        "protocol.",
      Object.entries(stats.tlsFailed).map(([reason, value]) => ({ labels: { reason }, value })),
    )
    .counter("tcpecho_bytes_received_total", "Bytes received.", stats.bytesReceived)
    .counter("tcpecho_bytes_echoed_total", "Bytes echoed back.", stats.bytesEchoed)
    .counter(
      "tcpecho_bytes_discarded_total",
      "Bytes that arrived after the drain deadline had ended their echo: read and dropped.",
      stats.bytesDiscarded,
    )
    .counter("tcpecho_datagrams_total", "UDP datagrams echoed.", stats.datagrams)
    .counter(
      "tcpecho_faults_total",
      "Faults injected on purpose, by kind (serve's fault flags).",
      Object.entries(stats.faults).map(([fault, value]) => ({
        labels: { fault: fault as FaultKind },
        value,
      })),
    )
    .histogram(
      "tcpecho_echo_seconds",
      "Time from a chunk read to the end of its echo's write.",
      echoTimes,
    )
    .gauge(
      "tcpecho_state",
      "1 for the phase the server is in: serving, stopping (shutdown delay: accepting, not " +
        "ready) or draining (accepting no one, waiting for open connections).",
      PHASES.map((p) => ({ labels: { state: p }, value: p === phase ? 1 : 0 })),
    )
    .toString();
}
