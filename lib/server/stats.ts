/**
 * What an echo server counts: connections, bytes, datagrams, refusals, closes by reason and faults
 * by kind, as plain numbers that add up across servers; and where it reports how long each echo
 * took.
 *
 * @module
 */

import type { CloseReason } from "./events.ts";
import type { TlsFailure } from "../base/errors.ts";
import { type FaultCounts, noFaultCounts } from "../faults/settings.ts";

/**
 * Live counters of a running echo server. Every field is a count that adds up across servers
 * (see {@linkcode addStats}).
 */
export interface EchoStats {
  /** Connections accepted so far. */
  connections: number;
  /** Connections open right now. */
  open: number;
  /** UDP datagrams echoed so far (0 for stream servers). */
  datagrams: number;
  /** Bytes echoed back so far, over all connections. */
  bytesEchoed: number;
  /** Bytes received so far, over all connections. */
  bytesReceived: number;
  /**
   * Bytes that arrived after the server had told their client the echo was over (FIN at the drain
   * deadline): read and dropped. After a graceful shutdown,
   * `bytesReceived = bytesEchoed + bytesDiscarded`.
   */
  bytesDiscarded: number;
  /** Connections closed at once because `maxConnections` were already open. */
  rejected: number;
  /** Connections closed before any echo for a malformed, late or missing PROXY header. */
  proxyRefused: number;
  /** Connections closed so far, by reason; `shutdown` counts those cut at the drain deadline. */
  closed: Record<CloseReason, number>;
  /** TLS handshakes that failed, by why. */
  tlsFailed: Record<TlsFailure, number>;
  /** Faults injected, by kind. */
  faults: FaultCounts;
}

/** Counters with nothing counted yet. */
export function noStats(): EchoStats {
  return {
    connections: 0,
    open: 0,
    datagrams: 0,
    bytesEchoed: 0,
    bytesReceived: 0,
    bytesDiscarded: 0,
    rejected: 0,
    proxyRefused: 0,
    closed: {
      eof: 0,
      reset: 0,
      idle: 0,
      tls: 0,
      shutdown: 0,
      closed: 0,
      "server-reset": 0,
      fault: 0,
      error: 0,
      "health-check": 0,
      early: 0,
      "handshake-timeout": 0,
    },
    tlsFailed: { timeout: 0, closed: 0, certificate: 0, protocol: 0 },
    faults: noFaultCounts(),
  };
}

/**
 * Counters that add up: every field a number, or a record of such fields. A field of another
 * kind makes {@linkcode addStats} fail to compile rather than be left out of the sum.
 */
export type Counts<T> = {
  [K in keyof T]: T[K] extends number ? number : T[K] extends object ? Counts<T[K]> : never;
};

/**
 * The counters of two servers added field by field, such as those of the workers that share a
 * port. Every field is added, including any added to {@linkcode EchoStats} later.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { addStats, noStats } from "./stats.ts";
 *
 * const one = { ...noStats(), connections: 2, closed: { ...noStats().closed, eof: 2 } };
 * const sum = addStats(one, one);
 * equal(sum.connections, 4);
 * equal(sum.closed.eof, 4);
 * ```
 */
export function addStats(a: EchoStats, b: EchoStats): EchoStats {
  return addCounts(a, b);
}

/** `a + b` for every field of two {@linkcode Counts}, nested records included. */
export function addCounts<T extends Counts<T>>(a: T, b: T): T {
  const sum: Record<string, unknown> = {};
  for (const key of Object.keys(a) as (keyof T & string)[]) {
    const x = a[key] as unknown;
    const y = b[key] as unknown;
    sum[key] = typeof x === "number" ? x + (y as number) : addCounts(x as T, y as T);
  }
  return sum as T;
}

/**
 * Where a server reports how long each echo took, such as a Prometheus histogram
 * (the `echoTimeHistogram` of the metrics).
 */
export interface EchoTimeRecorder {
  /** Records one echo that took `seconds`. */
  observe(seconds: number): void;
}
