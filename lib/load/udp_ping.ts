/**
 * Ping over a UDP echo server (`tcpecho send --udp --count N`): one numbered datagram per round
 * trip, numbered as bench's UDP load numbers them ({@linkcode UdpRun}), so that an echo that
 * comes after its timeout is counted late and never taken for the next one's.
 *
 * @module
 */

import { EchoError, RuntimeError, UsageError } from "../base/errors.ts";
import { sleep } from "../base/timers.ts";
import { localAddressFor } from "../client/echo_client.ts";
import { DEFAULT_TIMEOUT_MS } from "../client/_exchange.ts";
import type { PingFailure, PingReply, PingResult } from "../client/ping.ts";
import { RoundTripStats } from "../client/round_trip_stats.ts";
import type { LatencySummary } from "../metrics/latency_histogram.ts";
import { DEFAULT_PORT, listenDatagram, MAX_UDP_PAYLOAD } from "../net/transport.ts";
import type { DatagramReport } from "./load.ts";
import { receiveEchoes, UDP_HEADER_SIZE, UdpRun } from "./udp_load.ts";

/** Where to ping over UDP, with what, how often, and for how long. */
export interface UdpPingOptions {
  /** Server host name or address. Default `localhost`. */
  hostname?: string;
  /** Server port. Default 10000. */
  port?: number;
  /** The bytes after each datagram's 8-byte header (its run id and number). Must not be empty. */
  message: Uint8Array;
  /** How many datagrams to send. Default `Infinity`: until `signal` aborts. */
  count?: number;
  /** Milliseconds between one echo (or its timeout) and the next datagram. Default 1000. */
  interval?: number;
  /** Give up on an echo after this many milliseconds. Default 10000. */
  timeout?: number;
  /** Stops the run at once (Ctrl-C); the result counts what was done so far. */
  signal?: AbortSignal;
  /** Called for every echo that came back unchanged and in time. */
  onReply?: (reply: PingReply) => void;
  /** Called for every round trip lost (no echo in time) or failed (could not send). */
  onFailure?: (failure: PingFailure) => void;
}

/** Datagram counts of a UDP ping run. */
export interface UdpPingDatagrams extends DatagramReport {
  /** Echoes that came after their timeout: counted lost, then ignored. */
  late: number;
  /** Datagrams that came back changed, or that nobody sent. */
  mismatches: number;
}

/** What a UDP ping run did: as over TCP, with the datagram counts and percentiles. */
export interface UdpPingResult extends PingResult {
  /** Datagrams sent, lost, late, duplicated, reordered and mismatched. */
  datagrams: UdpPingDatagrams;
  /** Round-trip percentiles, in microseconds; undefined when no echo came back. */
  latency?: LatencySummary;
}

/**
 * Sends `message` in a numbered datagram up to `count` times, waiting for each echo (or
 * `timeout`) before sleeping `interval` milliseconds and sending the next. An echo that does
 * not come within `timeout` is lost; one that comes later still is counted late as well and
 * ignored; echoes that come twice, out of order or changed are counted. Throws a
 * {@linkcode RuntimeError} only when the socket cannot be opened.
 *
 * @example Three pings at a UDP echo server on a free port
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { pingUdp, startUdpEchoServer } from "../mod.ts";
 *
 * await using server = startUdpEchoServer({ hostname: "127.0.0.1", port: 0 });
 * const result = await pingUdp({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   message: new TextEncoder().encode("ping"),
 *   count: 3,
 *   interval: 0,
 * });
 * equal(result.received, 3);
 * equal(result.datagrams.lost, 0);
 * ```
 */
export async function pingUdp(options: UdpPingOptions): Promise<UdpPingResult> {
  const { message, signal } = options;
  const hostname = options.hostname ?? "localhost";
  const port = options.port ?? DEFAULT_PORT;
  const count = options.count ?? Infinity;
  const interval = options.interval ?? 1000;
  const timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
  const size = UDP_HEADER_SIZE + message.length;
  if (message.length === 0) throw new UsageError("cannot ping with an empty message");
  if (size > MAX_UDP_PAYLOAD) {
    throw new UsageError(
      `a UDP ping message has at most ${MAX_UDP_PAYLOAD - UDP_HEADER_SIZE} bytes, not ` +
        `${message.length}`,
    );
  }
  const run = new UdpRun(size, false, message);
  const socket = listenDatagram({ hostname: localAddressFor(hostname), port: 0 });
  const target: Deno.NetAddr = { transport: "udp", hostname, port };
  /** The datagram whose echo is awaited, and what resolves with the time it came. */
  let awaited = -1;
  let echoed: PromiseWithResolvers<number | undefined> | undefined;
  const receiving = receiveEchoes(socket, port, run, (now) => {
    if (awaited >= 0 && run.seen[awaited] > 0) echoed?.resolve(now);
  });
  const stop = () => echoed?.resolve(undefined);
  signal?.addEventListener("abort", stop);
  const stats = new RoundTripStats();
  let failed = 0;
  const started = performance.now();
  try {
    for (let sequence = 0; sequence < count && !signal?.aborted; sequence++) {
      if (sequence > 0) {
        await sleep(interval, signal);
        if (signal?.aborted) break;
      }
      echoed = Promise.withResolvers();
      awaited = sequence;
      const sentAt = performance.now();
      run.markSent(sequence, sentAt, sentAt);
      const seq = sequence + 1;
      try {
        await socket.send(run.datagram(sequence), target);
      } catch (err) {
        failed++;
        run.expireBefore(Infinity);
        const reason = err instanceof Error ? err.message : String(err);
        options.onFailure?.({
          seq,
          kind: "failed",
          error: new RuntimeError(`cannot send to ${hostname} port ${port}: ${reason}`),
        });
        continue;
      }
      const timer = setTimeout(() => echoed?.resolve(undefined), timeout);
      const at = await echoed.promise;
      clearTimeout(timer);
      if (at === undefined) {
        if (signal?.aborted) break;
        run.expireBefore(Infinity);
        options.onFailure?.({
          seq,
          kind: "lost",
          error: new EchoError(
            `no echo within ${timeout / 1000} s`,
            run.received,
            undefined,
            "ECHO_TIMEOUT",
          ),
        });
      } else {
        stats.add(at - sentAt);
        options.onReply?.({ seq, bytes: size, timeMs: at - sentAt });
      }
    }
  } finally {
    signal?.removeEventListener("abort", stop);
    socket.close();
    await receiving;
  }
  // A datagram that could not be sent was given up like a lost one, but counts as failed.
  const lost = run.lost - failed;
  return {
    sent: run.sent,
    received: run.received,
    lost,
    failed,
    elapsedMs: performance.now() - started,
    rtt: stats.summary(),
    datagrams: {
      sent: run.sent,
      lost,
      late: run.late,
      duplicates: run.duplicates,
      reordered: run.reordered,
      mismatches: run.mismatches,
    },
    latency: run.received > 0 ? run.histogram.summary() : undefined,
  };
}
