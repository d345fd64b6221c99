/**
 * UDP load (`bench --udp`): datagrams to an echo server at a rate (open loop) or a window at a
 * time (closed loop), each numbered, so that losses, duplicates and reordering are counted and
 * every echo's round trip is timed and its bytes checked.
 *
 * A datagram is its run's id (4 bytes) and its sequence number (4 bytes, big-endian), then the
 * pattern from an offset that depends on the sequence, to `size` bytes. A datagram that never
 * comes back within `timeout` is lost; one that comes back twice is a duplicate; one that comes
 * back after a later one is reordered. Loss, duplicates and reordering are what UDP allows, so
 * they are counted, not errors; a wrong byte is a mismatch, an error.
 *
 * @module
 */

import { RuntimeError, UsageError } from "../base/errors.ts";
import { localAddressFor } from "../client/echo_client.ts";
import { LatencyHistogram } from "../metrics/latency_histogram.ts";
import {
  DEFAULT_PORT,
  listenDatagram,
  MAX_UDP_PAYLOAD,
  UDP_RECEIVE_BUFFER_SIZE,
} from "../net/transport.ts";
import type { DatagramReport, LoadReport } from "./load.ts";
import { OpenLoopSchedule, Pacer } from "./open_loop.ts";
import { pattern, PATTERN_PERIOD } from "./pattern.ts";

/** The bytes before the pattern in every datagram: run id and sequence number. */
export const UDP_HEADER_SIZE = 8;

/** What to load over UDP and for how long. */
export interface UdpLoadOptions {
  /** Server host name or address. Default `localhost`. */
  hostname?: string;
  /** Server port. Default 10000. */
  port?: number;
  /** Bytes per datagram, from 8 (the header) to 65,507. Default 16. */
  size?: number;
  /** Closed loop: datagrams in flight at once. Default 1. */
  window?: number;
  /** Open loop: datagrams per second, on a fixed schedule. */
  rate?: number;
  /** Milliseconds to send for. Default 5000 unless `count`. */
  duration?: number;
  /** Datagrams to send in all. */
  count?: number;
  /** Milliseconds after which a datagram not echoed is lost. Default 5000. */
  timeout?: number;
  /** Ends the run early; the datagrams in flight are still awaited for `timeout`. */
  signal?: AbortSignal;
}

/**
 * One run's numbered datagrams, sent and echoed: bench's UDP load and ping mode over UDP. The
 * body after the header is the pattern from an offset of the datagram's own, or, given a
 * `message`, that message every time.
 */
export class UdpRun {
  readonly id = (Math.random() * 2 ** 32) >>> 0;
  readonly size: number;
  readonly source: Uint8Array;
  /** Whether every body is `source` whole (a message) rather than a slice of the pattern. */
  readonly #fixedBody: boolean;
  readonly histogram = new LatencyHistogram();
  readonly serviceTime?: LatencyHistogram;
  readonly sendDelay?: LatencyHistogram;
  sentAt = new Float64Array(1024);
  dueAt = new Float64Array(1024);
  /** Echoes received per sequence number, capped at 2. */
  seen = new Uint8Array(1024);
  sent = 0;
  received = 0;
  duplicates = 0;
  reordered = 0;
  mismatches = 0;
  lost = 0;
  /** Echoes that came after their datagram was given up for lost (counted lost too). */
  late = 0;
  /** The oldest datagram that may still be echoed (older ones are echoed or lost). */
  oldest = 0;
  highest = -1;
  lastSent = 0;

  constructor(size: number, open: boolean, message?: Uint8Array) {
    this.size = size;
    this.#fixedBody = message !== undefined;
    this.source = message ?? pattern(PATTERN_PERIOD + size);
    if (open) {
      this.serviceTime = new LatencyHistogram();
      this.sendDelay = new LatencyHistogram();
    }
  }

  /** Datagram `sequence`: header, then the pattern from an offset of its own. */
  datagram(sequence: number): Uint8Array {
    const bytes = new Uint8Array(this.size);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, this.id);
    view.setUint32(4, sequence);
    bytes.set(this.#body(sequence), UDP_HEADER_SIZE);
    return bytes;
  }

  /** The bytes after the header of datagram `sequence`. */
  #body(sequence: number): Uint8Array {
    if (this.#fixedBody) return this.source;
    const start = sequence % PATTERN_PERIOD;
    return this.source.subarray(start, start + this.size - UDP_HEADER_SIZE);
  }

  /** Notes datagram `sequence` as sent at `now`, due (on an open loop's schedule) at `due`. */
  markSent(sequence: number, now: number, due: number): void {
    this.grow(sequence);
    this.sentAt[sequence] = now;
    this.dueAt[sequence] = due;
    this.sendDelay?.record((now - due) * 1000);
    this.sent = sequence + 1;
    this.lastSent = now;
  }

  /** Makes room to remember datagram `sequence`. */
  grow(sequence: number): void {
    if (sequence < this.sentAt.length) return;
    const length = this.sentAt.length * 2;
    const grown = (old: Float64Array) => {
      const next = new Float64Array(length);
      next.set(old);
      return next;
    };
    this.sentAt = grown(this.sentAt);
    this.dueAt = grown(this.dueAt);
    const seen = new Uint8Array(length);
    seen.set(this.seen);
    this.seen = seen;
  }

  /** Checks and times one echo. */
  receive(data: Uint8Array, now: number): void {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const sequence = data.length >= UDP_HEADER_SIZE ? view.getUint32(4) : -1;
    if (
      data.length !== this.size || view.getUint32(0) !== this.id || sequence >= this.sent ||
      !this.#patternMatches(data, sequence)
    ) {
      this.mismatches++;
      return;
    }
    if (this.seen[sequence] > 0) {
      this.duplicates++;
      return;
    }
    if (sequence < this.oldest) {
      // Given up for lost already: counted late, and never taken for a later datagram's echo.
      this.seen[sequence] = 1;
      this.late++;
      return;
    }
    this.seen[sequence] = 1;
    this.received++;
    if (sequence < this.highest) this.reordered++;
    this.highest = Math.max(this.highest, sequence);
    this.histogram.record((now - this.dueAt[sequence]) * 1000);
    this.serviceTime?.record((now - this.sentAt[sequence]) * 1000);
  }

  #patternMatches(data: Uint8Array, sequence: number): boolean {
    const expected = this.#body(sequence);
    const body = data.subarray(UDP_HEADER_SIZE);
    for (let i = 0; i < body.length; i++) if (body[i] !== expected[i]) return false;
    return true;
  }

  /** Gives up on datagrams sent before `cutoff`; returns how many left the window. */
  expireBefore(cutoff: number): number {
    let freed = 0;
    while (this.oldest < this.sent && this.sentAt[this.oldest] < cutoff) {
      if (this.seen[this.oldest] === 0) {
        this.lost++;
        freed++;
      }
      this.oldest++;
    }
    // Skip over the echoed ones at the front, so that `oldest` is the oldest still owed.
    while (this.oldest < this.sent && this.seen[this.oldest] > 0) this.oldest++;
    return freed;
  }

  /** Datagrams sent and neither echoed nor lost. */
  get owed(): number {
    return this.sent - this.received - this.lost;
  }
}

/**
 * Checks and times every datagram that comes to `socket` from `port`, calling `onEcho` with the
 * time it came after each, until the socket closes.
 */
export async function receiveEchoes(
  socket: Deno.DatagramConn,
  port: number,
  run: UdpRun,
  onEcho: (now: number) => void,
): Promise<void> {
  const buffer = new Uint8Array(UDP_RECEIVE_BUFFER_SIZE);
  try {
    for (;;) {
      const [data, from] = await socket.receive(buffer);
      if ((from as Deno.NetAddr).port !== port) continue;
      const now = performance.now();
      run.receive(data, now);
      onEcho(now);
    }
  } catch { /* the socket closed: the run is over */ }
}

/**
 * Loads a UDP echo server and reports as {@linkcode runLoad} does (one "connection", the
 * datagram counts in `datagrams`), so that the same report, JSON and thresholds apply. Throws a
 * {@linkcode RuntimeError} when no echo at all came back.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { runUdpLoad, startUdpEchoServer } from "../mod.ts";
 *
 * await using server = startUdpEchoServer({ hostname: "127.0.0.1", port: 0 });
 * const report = await runUdpLoad({ hostname: "127.0.0.1", port: server.addr.port, count: 100 });
 * equal(report.messages, 100);
 * equal(report.datagrams?.lost, 0);
 * ```
 */
export async function runUdpLoad(
  options: UdpLoadOptions,
): Promise<LoadReport & { datagrams: DatagramReport }> {
  const { size = 16, window = 1, timeout = 5000 } = options;
  if (size < UDP_HEADER_SIZE || size > MAX_UDP_PAYLOAD) {
    throw new UsageError(
      `a UDP load datagram has ${UDP_HEADER_SIZE} to ${MAX_UDP_PAYLOAD} bytes, not ${size}`,
    );
  }
  const hostname = options.hostname ?? "localhost";
  const port = options.port ?? DEFAULT_PORT;
  const open = options.rate !== undefined;
  const run = new UdpRun(size, open);
  const socket = listenDatagram({ hostname: localAddressFor(hostname), port: 0 });
  const target: Deno.NetAddr = { transport: "udp", hostname, port };
  const total = options.count ?? Infinity;
  const duration = options.duration ?? (options.count === undefined ? 5000 : Infinity);
  let stopping = false;
  let failure: unknown;
  const send = (sequence: number, due: number) => {
    run.markSent(sequence, performance.now(), due);
    socket.send(run.datagram(sequence), target).catch((err) => {
      failure ??= err;
      stopping = true;
    });
  };
  // Closed loop: keep `window` in flight while the run lasts.
  const refill = () => {
    while (!open && !stopping && run.sent < total && run.owed < window) {
      send(run.sent, performance.now());
    }
  };
  const started = performance.now();
  const finished = Promise.withResolvers<void>();
  const settle = () => {
    if (stopping && run.owed === 0) finished.resolve();
  };
  const receiving = receiveEchoes(socket, port, run, () => {
    if (!open && run.sent >= total) stopping = true;
    refill();
    settle();
  });
  const stop = () => {
    stopping = true;
    settle();
  };
  let interrupted = false;
  let pacer: Pacer | undefined;
  const interrupt = () => {
    interrupted = !stopping;
    pacer?.stop();
    stop();
  };
  options.signal?.addEventListener("abort", interrupt, { once: true });
  const deadline = Number.isFinite(duration) && !open ? setTimeout(stop, duration) : undefined;
  const watchdog = setInterval(() => {
    const now = performance.now();
    if (run.expireBefore(now - timeout) > 0) refill();
    if (!open && run.sent >= total) stopping = true;
    settle();
  }, Math.min(100, timeout / 4));
  try {
    if (open) {
      pacer = new Pacer({
        schedule: new OpenLoopSchedule({ rate: options.rate!, connections: 1 }),
        start: started,
        duration,
        total,
        release: send,
      });
      await pacer.run();
      stop();
    } else {
      refill();
      if (run.sent >= total) stopping = true;
    }
    settle();
    await finished.promise;
  } finally {
    pacer?.stop();
    clearTimeout(deadline);
    clearInterval(watchdog);
    options.signal?.removeEventListener("abort", interrupt);
    socket.close();
    await receiving;
  }
  if (failure !== undefined) {
    throw new RuntimeError(
      `cannot send to ${hostname} port ${port}: ${(failure as Error).message}`,
    );
  }
  if (run.received === 0 && run.sent > 0) {
    throw new RuntimeError(
      `no echo came back from ${hostname} port ${port} within ${timeout / 1000} s: nothing ` +
        `listens there, or every datagram was lost`,
    );
  }
  // From the start to the last datagram sent: the wait for the last echoes does not count.
  const seconds = Math.max(run.lastSent - started, 1) / 1000;
  const messages = run.received;
  const bytes = messages * size;
  const scheduledPerSecond = seconds > 0 ? run.sent / seconds : 0;
  const errors = {
    mismatches: run.mismatches,
    earlyCloses: 0,
    resets: 0,
    timeouts: 0,
    refused: 0,
    connectTimeouts: 0,
  };
  return {
    target,
    connections: 1,
    size,
    window: open ? 1 : window,
    seconds,
    messages,
    bytes,
    messagesPerSecond: seconds > 0 ? messages / seconds : 0,
    mibPerSecond: seconds > 0 ? bytes / seconds / (1024 * 1024) : 0,
    rate: open
      ? {
        target: options.rate!,
        scheduled: run.sent,
        scheduledPerSecond,
        keptUp: messages / seconds >= 0.99 * scheduledPerSecond,
      }
      : undefined,
    latency: run.histogram.summary(),
    histogram: run.histogram,
    serviceTime: run.serviceTime,
    connects: {
      attempted: 0,
      made: 0,
      connectTime: new LatencyHistogram(),
      firstByte: new LatencyHistogram(),
    },
    backends: [],
    errors,
    ok: run.mismatches === 0,
    interrupted,
    unfinished: 0,
    audit: {
      eventLoopLag: new LatencyHistogram(),
      sendDelay: run.sendDelay,
      generatorBound: false,
    },
    datagrams: {
      sent: run.sent,
      lost: run.lost,
      duplicates: run.duplicates,
      reordered: run.reordered,
    },
  };
}
