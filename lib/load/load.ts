/**
 * The load engine behind `tcpecho bench`: N connections, each keeping a window of messages in
 * flight, every echoed byte checked against the pattern sent, every round trip timed.
 *
 * Closed loop by default: each connection sends its next message as soon as the window allows.
 * With `rate`, an open loop: messages fall due on a fixed schedule and each is timed from when it
 * was due (corrected for coordinated omission) as well as from when it was sent (service time).
 * With `reconnect`, connections are churned: each carries that many messages, then a new one is
 * opened, with its connect, TLS handshake and first echo byte timed.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { type ErrorCode, GreetingError, RuntimeError, TcpechoError } from "../base/errors.ts";
import { writeAll } from "../base/io.ts";
import { sleep } from "../base/timers.ts";
import { readGreeting } from "../server/greeting.ts";
import { LatencyHistogram, type LatencySummary } from "../metrics/latency_histogram.ts";
import { OpenLoopSchedule, Pacer } from "./open_loop.ts";
import { pattern, PATTERN_PERIOD } from "./pattern.ts";
import { DEFAULT_PORT, describeEndpoint } from "../net/transport.ts";
import { type ClientConn, connect, type ConnectOptions } from "../client/connect.ts";
import { mixUpHint } from "../client/mix_up.ts";

/**
 * What to load and for how long. The server is reached as {@linkcode ConnectOptions} say: TCP,
 * TLS or a Unix domain socket.
 */
export interface LoadOptions extends Omit<ConnectOptions, "signal"> {
  /** Connections at once. Default 1. */
  connections?: number;
  /** Bytes per message. Default 16. */
  size?: number;
  /** Messages in flight per connection. Default 1. */
  window?: number;
  /** Milliseconds to send for, then wait for the echoes in flight. Default 5000 unless `count`. */
  duration?: number;
  /** Messages per connection; the run ends when all are echoed. Overrides the default duration. */
  count?: number;
  /**
   * Milliseconds a message may wait for its echo, or a connection for its connect, handshake or
   * greeting, before it counts as a timeout. Default 5000.
   */
  timeout?: number;
  /**
   * Open loop: messages per second over all connections, each connection's share evenly spaced.
   * Latency is then measured from when each message was due, and service time from when it was
   * sent. Without it, each connection sends as fast as its window allows (closed loop).
   */
  rate?: number;
  /**
   * Milliseconds over which the load rises linearly: the rate with `rate`, else the number of
   * connections open. Default 0.
   */
  ramp?: number;
  /** Messages per connection before it is closed and a new one opened (1: one per message). */
  reconnect?: number;
  /** At most this many new connections per second. */
  connectRate?: number;
  /**
   * Read the server's greeting line (`serve --greeting`) on each connection before the first
   * message, keep it out of the echo check, and report per greeting, that is per backend.
   */
  expectGreeting?: boolean;
  /** Called about once a second while the load runs. */
  onProgress?: (progress: LoadProgress) => void;
  /** Milliseconds per interval for `onInterval`. Default 1000. */
  interval?: number;
  /**
   * Called at the end of every `interval` and once at the end of the run with what that stretch
   * measured, its own histograms included (for interval logs and per-interval percentiles).
   */
  onInterval?: (interval: IntervalReport) => void;
  /**
   * Ends the run early (Ctrl-C): no more messages are sent, the echoes in flight are awaited
   * (each for at most `timeout`), and the report covers what was measured, marked `interrupted`.
   */
  signal?: AbortSignal;
}

/** A snapshot of a run in progress. */
export interface LoadProgress {
  /** Seconds since the load started. */
  seconds: number;
  /** Messages echoed and checked so far. */
  messages: number;
  /** Messages echoed in the last interval, per second. */
  messagesPerSecond: number;
  /** Median latency so far (corrected with `rate`), in microseconds. */
  p50: number;
  /** All errors counted so far. */
  errors: number;
}

/** What one interval of a run measured. */
export interface IntervalReport {
  /** Seconds from the start of the load to the start of the interval. */
  start: number;
  /** Seconds from the start of the load to the end of the interval. */
  end: number;
  /** Messages echoed and checked in the interval. */
  messages: number;
  /** Bytes echoed and checked in the interval. */
  bytes: number;
  /** Errors of every kind counted in the interval. */
  errors: number;
  /** Connections opened in the interval. */
  connects: number;
  /** The interval's latency (corrected with `rate`), in microseconds. */
  histogram: LatencyHistogram;
  /** With `rate`: the interval's service time, in microseconds. */
  serviceTime?: LatencyHistogram;
}

/** What the datagrams of a UDP run went through. */
export interface DatagramReport {
  /** Datagrams sent. */
  sent: number;
  /** Datagrams whose echo never came within the timeout. */
  lost: number;
  /** Echoes that came more than once (each extra one counted). */
  duplicates: number;
  /** Echoes that came after the echo of a datagram sent later. */
  reordered: number;
}

/** What went wrong during a run; any of them makes the run fail. */
export interface LoadErrors {
  /** Messages whose echo differed from what was sent (or bytes nobody sent). */
  mismatches: number;
  /** Connections the server closed while echoes (or a greeting) were still owed. */
  earlyCloses: number;
  /** Connections reset or broken by the server or the network. */
  resets: number;
  /** Connections given up because an echo (or a greeting) took longer than the timeout. */
  timeouts: number;
  /** Connection attempts the server refused. */
  refused: number;
  /** Connection attempts (connect and TLS handshake) that took longer than the timeout. */
  connectTimeouts: number;
}

/** With `rate`: the schedule asked for and whether it was kept. */
export interface RateReport {
  /** Messages per second asked for (the full rate, after any ramp). */
  target: number;
  /** Messages that fell due during the run. */
  scheduled: number;
  /** Messages per second the schedule asked for over the run, on average (lower with a ramp). */
  scheduledPerSecond: number;
  /**
   * False when fewer than 99 % of the scheduled messages per second were echoed: the server or
   * the client could not keep up.
   */
  keptUp: boolean;
}

/** How the connections of a run were opened. */
export interface ConnectReport {
  /** Connections attempted: made, refused, timed out or failed. */
  attempted: number;
  /** Connections opened (connected, TLS handshake and greeting done). */
  made: number;
  /** Microseconds from the start of each connect to the TCP (or Unix) connection. */
  connectTime: LatencyHistogram;
  /** Over TLS: microseconds from the TCP connection to the end of the TLS handshake. */
  handshakeTime?: LatencyHistogram;
  /**
   * Microseconds from the start of each connect to the first byte of its first echo, without
   * bench's own wait between the two (for the other connections to open, or for a message due).
   */
  firstByte: LatencyHistogram;
}

/**
 * How the generator itself kept up: a load generator must say when it, not the server, limited
 * the run, or its figures measure the wrong machine.
 */
export interface GeneratorAudit {
  /**
   * Microseconds the event loop was late for a 5 ms timer, every 5 ms of the run: the time
   * bench's own work kept it from sending, reading and timing.
   */
  eventLoopLag: LatencyHistogram;
  /** With `rate`: microseconds from when each message was due to when it was sent. */
  sendDelay?: LatencyHistogram;
  /**
   * True when the generator limited the run: its event loop was late by more than
   * {@linkcode GENERATOR_LAG_LIMIT_US} at the 99th percentile (and, with `rate`, so were its
   * sends), so that its figures include its own delays.
   */
  generatorBound: boolean;
}

/** Event-loop lag (p99, µs) above which a run is marked generator-bound. */
export const GENERATOR_LAG_LIMIT_US = 5000;

/** The timer whose lateness measures the event loop's lag, in milliseconds. */
const LAG_PROBE_MS = 5;

/** One backend's share of a run, as told apart by its greeting. */
export interface BackendReport {
  /** The greeting line the backend sent. */
  greeting: string;
  /** Connections that reached it. */
  connections: number;
  /** Messages it echoed and that were checked. */
  messages: number;
  /** Its latency (corrected with `rate`), in microseconds. */
  histogram: LatencyHistogram;
  /** With `rate`: its service time, in microseconds. */
  serviceTime?: LatencyHistogram;
}

/** The outcome of a run. */
export interface LoadReport {
  /** The server's address as connected to: TCP (plain or TLS) or a Unix socket path. */
  target: Deno.Addr;
  /** Connections used at once. */
  connections: number;
  /** Bytes per message. */
  size: number;
  /** Messages in flight per connection. */
  window: number;
  /** Seconds the load ran (the wait for the last echoes after a duration does not count). */
  seconds: number;
  /** Messages echoed and checked. */
  messages: number;
  /** Bytes echoed and checked. */
  bytes: number;
  /** Messages echoed per second of load. */
  messagesPerSecond: number;
  /** Bytes echoed per second of load, in MiB (1,048,576 bytes). */
  mibPerSecond: number;
  /** With `rate`: the schedule and whether it was kept. */
  rate?: RateReport;
  /**
   * Latency in microseconds: round trips from the first byte sent to the last byte echoed; with
   * `rate`, from when each message was due (corrected for coordinated omission).
   */
  latency: LatencySummary;
  /** The histogram behind {@linkcode LoadReport.latency}. */
  histogram: LatencyHistogram;
  /** With `rate`: service time, from when each message was sent to its last byte echoed. */
  serviceTime?: LatencyHistogram;
  /** Connections opened and how long that took. */
  connects: ConnectReport;
  /**
   * With `expectGreeting`: the run split by backend, in the order they were first reached; beyond
   * {@linkcode MAX_BACKENDS} greetings, the rest are lumped under {@linkcode OTHER_BACKENDS}.
   */
  backends: BackendReport[];
  /** What went wrong, counted by kind. */
  errors: LoadErrors;
  /**
   * What the first wrong reply on a connection showed, when it was another protocol's: `the
   * server speaks TLS: add --tls`.
   */
  mixUp?: string;
  /** True when no error of any kind was counted. */
  ok: boolean;
  /** True when `signal` ended the run before its duration or count. */
  interrupted: boolean;
  /** Whether the generator kept up, or limited the run itself. */
  audit: GeneratorAudit;
  /** Over UDP (`runUdpLoad`): what the datagrams went through. */
  datagrams?: DatagramReport;
  /**
   * After `signal`: messages sent whose echo had not come back within `timeout` of the
   * interruption, counted here rather than as timeouts. 0 otherwise.
   */
  unfinished: number;
}

/** Backends told apart by their greeting; connections greeted otherwise are lumped together. */
export const MAX_BACKENDS = 64;
/** The greeting that stands for all the backends beyond {@linkcode MAX_BACKENDS}. */
export const OTHER_BACKENDS = "(other greetings)";

/** The largest read per connection: enough for a 64 KiB window of 4 in few reads. */
const MAX_READ = 256 * 1024;

/** The count that a failure of each code adds to; any other code counts as a reset. */
const COUNTED_AS: Partial<Record<ErrorCode, keyof LoadErrors>> = {
  ECHO_MISMATCH: "mismatches",
  // Bytes after the greeting came before anything was sent: bytes nobody sent, as in the check.
  GREETING: "mismatches",
  ECHO_CLOSED: "earlyCloses",
  ECHO_TIMEOUT: "timeouts",
};

/**
 * Which count a failure of a connection or its greeting adds to: by its code for the library's
 * errors, by its class for Deno's (a greeting cut short, late, or not a line of text).
 */
function countedAs(err: unknown): keyof LoadErrors {
  if (err instanceof TcpechoError) return COUNTED_AS[err.code] ?? "resets";
  if (err instanceof Deno.errors.UnexpectedEof) return "earlyCloses";
  if (err instanceof Deno.errors.TimedOut) return "timeouts";
  if (err instanceof Deno.errors.InvalidData) return "mismatches";
  return "resets";
}

/** The first wait before a slot tries again to open a connection that was not opened. */
const MIN_BACKOFF_MS = 1;
/** The longest wait between two attempts of one slot. */
const MAX_BACKOFF_MS = 1000;

/** A connection not opened: refused, timed out or its greeting wrong (counted), or the run over. */
const NOT_OPENED = Symbol("not opened");

/** A connection ready for messages, and what its opening learned. */
interface Opened {
  conn: ClientConn;
  /** Milliseconds its opening took: connect, TLS handshake and greeting. */
  openMs: number;
  /** The backend that greeted it, with `expectGreeting`. */
  backend?: BackendReport;
}

/** State shared by every connection of one run. */
class Run {
  readonly options: LoadOptions;
  readonly size: number;
  readonly window: number;
  readonly count: number;
  readonly timeout: number;
  readonly slots: Slot[];
  /** The pattern from every offset in one period: message bytes are slices of it, never copies. */
  readonly source: Uint8Array;
  readonly readSize: number;
  readonly histogram = new LatencyHistogram();
  readonly serviceTime?: LatencyHistogram;
  /** With `rate`: how late each message was sent against its schedule. */
  readonly sendDelay?: LatencyHistogram;
  readonly errors: LoadErrors = {
    mismatches: 0,
    earlyCloses: 0,
    resets: 0,
    timeouts: 0,
    refused: 0,
    connectTimeouts: 0,
  };
  readonly connects: ConnectReport;
  readonly backends = new Map<string, BackendReport>();
  /** The open loop's schedule and start, with `rate`. */
  schedule?: OpenLoopSchedule;
  started = 0;
  /** When the last message was handed to a socket. */
  lastSent = 0;
  messages = 0;
  /** No more messages will fall due (closed loop: none will be started). */
  stopping = false;
  /** With `onInterval`: the current interval's latency and service time. */
  intervalHistogram?: LatencyHistogram;
  intervalServiceTime?: LatencyHistogram;
  /** The caller's signal ended the run early. */
  interrupted = false;
  /** Messages sent but not echoed when the wait after an interruption ran out. */
  unfinished = 0;
  /** Why the last connection that could not be opened was not, in a few words. */
  lastFailure = "";
  /** What the first wrong reply on a connection looked like, when another protocol's. */
  mixUp?: string;
  /** An error that ends the run, thrown once every connection is closed. */
  fatal?: unknown;
  target?: Deno.Addr;
  /** Ends the open loop's releases early when the run fails. */
  pacer?: Pacer;
  readonly #connectSchedule?: OpenLoopSchedule;
  #connectsStarted = 0;
  #connectStart = 0;
  /** What every connect is given besides its signal: copied once, not for every connect. */
  readonly #connectOptions: ConnectOptions;
  /** The connects under way, each ended by the caller's signal. */
  readonly #connecting = new Set<AbortController>();
  readonly #onSignal = () => {
    for (const attempt of this.#connecting) attempt.abort();
  };
  /** Aborted when the run stops, waking every sleep. */
  readonly #stopped = new AbortController();

  constructor(options: LoadOptions) {
    this.options = options;
    const { hostname, port, family, unix, tls, proxyHeader } = options;
    this.#connectOptions = { hostname, port, family, unix, tls, proxyHeader };
    const { connections = 1, size = 16, window = 1 } = options;
    this.size = size;
    this.window = window;
    this.count = options.count ?? Infinity;
    this.timeout = options.timeout ?? 5000;
    this.readSize = Math.min(Math.max(size * window, 16), MAX_READ);
    this.source = pattern(PATTERN_PERIOD + Math.max(size, this.readSize));
    this.slots = Array.from(
      { length: connections },
      (_, index) => new Slot(index, window, this.readSize),
    );
    if (options.rate !== undefined) {
      this.serviceTime = new LatencyHistogram();
      this.sendDelay = new LatencyHistogram();
    }
    this.connects = {
      attempted: 0,
      made: 0,
      connectTime: new LatencyHistogram(),
      handshakeTime: options.tls && options.unix === undefined ? new LatencyHistogram() : undefined,
      firstByte: new LatencyHistogram(),
    };
    if (options.connectRate !== undefined) {
      this.#connectSchedule = new OpenLoopSchedule({ rate: options.connectRate, connections: 1 });
    }
    options.signal?.addEventListener("abort", this.#onSignal, { once: true });
  }

  /** Stops listening to the caller's signal: the run is over. */
  dispose(): void {
    this.options.signal?.removeEventListener("abort", this.#onSignal);
  }

  /**
   * Opens one connection: waits for its turn under `connectRate`, connects (timing the connect
   * and the TLS handshake) and reads the greeting. Refused and timed-out attempts, and greetings
   * that go wrong, are counted and give {@linkcode NOT_OPENED}; anything else throws.
   */
  async open(): Promise<Opened | typeof NOT_OPENED> {
    if (this.#connectSchedule) {
      if (this.#connectsStarted === 0) this.#connectStart = performance.now();
      const due = this.#connectStart + this.#connectSchedule.dueAt(this.#connectsStarted++);
      await this.sleep(due - performance.now());
      if (this.stopping && this.schedule === undefined) return NOT_OPENED;
    }
    const start = performance.now();
    this.connects.attempted++;
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, this.timeout);
    // The caller's signal (Ctrl-C) ends the attempt too, as an interruption, not a timeout: one
    // listener for the run rather than a signal combined anew for every connect.
    if (this.options.signal?.aborted) abort.abort();
    this.#connecting.add(abort);
    let conn: ClientConn;
    try {
      conn = await connect({ ...this.#connectOptions, signal: abort.signal });
    } catch (err) {
      if (timedOut) {
        this.errors.connectTimeouts++;
        this.lastFailure = `timed out after ${this.timeout / 1000} s`;
        return NOT_OPENED;
      }
      if ((err as Error).cause instanceof Deno.errors.ConnectionRefused) {
        this.errors.refused++;
        this.lastFailure = "connection refused";
        return NOT_OPENED;
      }
      throw err;
    } finally {
      clearTimeout(timer);
      this.#connecting.delete(abort);
    }
    // TLS timed its handshake from the TCP connection on: the rest is the connect.
    const handshakeMs = conn.tls?.handshakeMs ?? 0;
    this.connects.connectTime.record((performance.now() - start - handshakeMs) * 1000);
    this.connects.handshakeTime?.record(handshakeMs * 1000);
    this.target ??= this.options.unix === undefined
      ? conn.remoteAddr
      : { transport: "unix", path: this.options.unix };
    if (!this.options.expectGreeting) {
      this.connects.made++;
      return { conn, openMs: performance.now() - start };
    }
    try {
      const greeting = await readGreeting(conn, this.timeout);
      if (greeting.rest.length > 0) throw new GreetingError("bytes after the greeting");
      const backend = this.#backend(greeting.line);
      backend.connections++;
      this.connects.made++;
      return { conn, openMs: performance.now() - start, backend };
    } catch (err) {
      this.countFailure(err);
      this.lastFailure = `no greeting: ${(err as Error).message}`;
      try {
        conn.close();
      } catch { /* closed on timeout */ }
      return NOT_OPENED;
    }
  }

  #backend(line: string): BackendReport {
    // Greetings that differ on every connection ({conn}) must not grow a histogram each.
    const greeting = this.backends.has(line) || this.backends.size < MAX_BACKENDS
      ? line
      : OTHER_BACKENDS;
    let backend = this.backends.get(greeting);
    if (!backend) {
      backend = {
        greeting,
        connections: 0,
        messages: 0,
        histogram: new LatencyHistogram(),
        serviceTime: this.serviceTime && new LatencyHistogram(),
      };
      this.backends.set(greeting, backend);
    }
    return backend;
  }

  /** Counts what broke a connection or its greeting. */
  countFailure(err: unknown): void {
    this.errors[countedAs(err)]++;
  }

  /** Waits `ms` milliseconds, or less if the run stops. */
  async sleep(ms: number): Promise<void> {
    await sleep(ms, this.#stopped.signal);
  }

  /** No more messages fall due: every connection finishes what it owes, then closes. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.pacer?.stop();
    this.#stopped.abort();
    for (const slot of this.slots) slot.stop(this.schedule === undefined);
  }
}

/**
 * One of the run's concurrent connections, over its successive sockets when churned: what it
 * has sent and what the open loop has released to it.
 */
class Slot {
  readonly index: number;
  /**
   * Its connections' read buffer and send times, one connection after the other: allocated once
   * rather than for every churned connection.
   */
  readonly buffer: Uint8Array;
  /** When each message in the window was sent, by message number modulo the window. */
  readonly sentAt: Float64Array;
  /** When each message in the window was due (open loop), likewise. */
  readonly dueAt: Float64Array;
  /** Messages started over all its connections. */
  sent = 0;
  /** Messages it may start: all of them in a closed loop, those fallen due in an open loop. */
  released = Infinity;
  connection?: LoadConnection;
  #waiting?: () => void;

  constructor(index: number, window: number, readSize: number) {
    this.index = index;
    this.buffer = new Uint8Array(readSize);
    this.sentAt = new Float64Array(window);
    this.dueAt = new Float64Array(window);
  }

  /** The open loop made one more message due. */
  release(): void {
    this.released++;
    this.connection?.kick();
    this.#waiting?.();
  }

  /** Resolves when a message is due that has not been started, or the run stops. */
  due(run: Run): Promise<void> {
    if (this.sent < this.released || run.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiting = () => {
        this.#waiting = undefined;
        resolve();
      };
    });
  }

  /** The run stops; in a closed loop, no message not yet started will be. */
  stop(closedLoop: boolean): void {
    if (closedLoop) this.released = this.sent;
    this.connection?.stop();
    this.#waiting?.();
  }
}

/**
 * Drives an echo server and checks every echoed byte. Throws a {@linkcode RuntimeError} when the
 * server cannot be reached (or, churning connections, on any failure other than a refused or
 * timed-out connect, which are counted); everything that goes wrong later is counted in the
 * report's `errors`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { runLoad, startEchoServer } from "../mod.ts";
 *
 * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
 * const report = await runLoad({ hostname: "127.0.0.1", port: server.addr.port, count: 100 });
 * equal(report.messages, 100);
 * equal(report.ok, true);
 * ```
 *
 * @example An open loop at 2,000 messages per second, one new connection every 10 messages
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { runLoad, startEchoServer } from "../mod.ts";
 *
 * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
 * const report = await runLoad({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   connections: 2,
 *   rate: 2000,
 *   reconnect: 10,
 *   duration: 200,
 * });
 * equal(report.rate?.scheduled, 400);
 * equal(report.messages, 400);
 * equal(report.connects.made, 40);
 * equal(report.serviceTime?.count, 400);
 * ```
 */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const run = new Run(options);
  const { slots } = run;
  const ramp = options.ramp ?? 0;
  const open = options.rate !== undefined;
  // Churned or ramped connections are opened as the run goes; otherwise all at once before it,
  // and one that cannot be opened ends the run before it starts.
  const upFront = options.reconnect === undefined && (open || ramp === 0);
  const ready = upFront
    ? await openAll(run).catch((err) => {
      run.dispose();
      throw err;
    })
    : [];
  const duration = options.duration ?? (options.count === undefined ? 5000 : Infinity);
  run.started = performance.now();
  let stopped = Infinity;
  const stop = () => {
    stopped = Math.min(stopped, performance.now());
    run.stop();
  };
  let pacer: Pacer | undefined;
  if (open) {
    run.schedule = new OpenLoopSchedule({ rate: options.rate!, connections: slots.length, ramp });
    for (const slot of slots) slot.released = 0;
    pacer = new Pacer({
      schedule: run.schedule,
      start: run.started,
      duration,
      total: run.count * slots.length,
      release: (sequence) => slots[sequence % slots.length].release(),
    });
    run.pacer = pacer;
  }
  const deadline = !open && Number.isFinite(duration) ? setTimeout(stop, duration) : undefined;
  let interrupted = false;
  const interrupt = () => {
    interrupted = !run.stopping;
    // Echoes still owed once the wait for them runs out are unfinished, whenever it came.
    run.interrupted = true;
    stop();
  };
  options.signal?.addEventListener("abort", interrupt, { once: true });
  if (options.signal?.aborted) interrupt();
  let last = { at: run.started, messages: 0 };
  const intervals = options.onInterval && new IntervalCounter(run, options.interval ?? 1000);
  const lag = new LagProbe();
  const watchdog = setInterval(() => {
    const now = performance.now();
    intervals?.tick(now, false);
    for (const slot of slots) slot.connection?.checkTimeout(now);
    if (options.onProgress && now - last.at >= 1000) {
      options.onProgress({
        seconds: (now - run.started) / 1000,
        messages: run.messages,
        messagesPerSecond: (run.messages - last.messages) / ((now - last.at) / 1000),
        p50: run.histogram.percentile(50),
        errors: totalErrors(run.errors),
      });
      last = { at: now, messages: run.messages };
    }
  }, Math.min(100, run.timeout / 4));
  const slotRuns = slots.map((slot) =>
    runSlot(run, slot, ready[slot.index], open ? 0 : (slot.index / slots.length) * ramp)
  );
  try {
    if (pacer) {
      await pacer.run();
      run.stop();
    }
    await Promise.all(slotRuns);
  } finally {
    pacer?.stop();
    clearTimeout(deadline);
    clearInterval(watchdog);
    lag.stop();
    options.signal?.removeEventListener("abort", interrupt);
    run.dispose();
  }
  if (run.fatal !== undefined) throw run.fatal;
  intervals?.tick(performance.now(), true);

  let seconds = (Math.min(performance.now(), stopped) - run.started) / 1000;
  let rate: RateReport | undefined;
  if (run.schedule && pacer) {
    // The scheduled span, or longer when the backlog was still being sent after it.
    const span = Math.min(
      Number.isFinite(duration) ? duration : run.schedule.dueAt(pacer.released),
      stopped - run.started, // interrupted
    );
    seconds = Math.max(span, run.lastSent - run.started) / 1000;
    const scheduledPerSecond = span > 0 ? pacer.released / (span / 1000) : 0;
    rate = {
      target: options.rate!,
      scheduled: pacer.released,
      scheduledPerSecond,
      keptUp: run.messages / seconds >= 0.99 * scheduledPerSecond,
    };
  }
  const bytes = run.messages * run.size;
  return {
    target: run.target ?? describeTarget(options),
    connections: slots.length,
    size: run.size,
    window: run.window,
    seconds,
    messages: run.messages,
    bytes,
    messagesPerSecond: seconds > 0 ? run.messages / seconds : 0,
    mibPerSecond: seconds > 0 ? bytes / seconds / (1024 * 1024) : 0,
    rate,
    latency: run.histogram.summary(),
    histogram: run.histogram,
    serviceTime: run.serviceTime,
    connects: run.connects,
    backends: [...run.backends.values()],
    errors: { ...run.errors },
    mixUp: run.mixUp,
    ok: totalErrors(run.errors) === 0,
    interrupted,
    unfinished: run.unfinished,
    audit: {
      eventLoopLag: lag.histogram,
      sendDelay: run.sendDelay,
      generatorBound: lag.histogram.percentile(99) > GENERATOR_LAG_LIMIT_US &&
        // In an open loop, only when its sends went out late too.
        (run.sendDelay === undefined || run.sendDelay.percentile(99) > GENERATOR_LAG_LIMIT_US),
    },
  };
}

/** Measures how late the event loop runs a short timer, again and again until stopped. */
class LagProbe {
  readonly histogram = new LatencyHistogram();
  #timer: ReturnType<typeof setTimeout>;

  constructor() {
    this.#timer = this.#arm();
  }

  #arm(): ReturnType<typeof setTimeout> {
    const due = performance.now() + LAG_PROBE_MS;
    return setTimeout(() => {
      this.histogram.record((performance.now() - due) * 1000);
      this.#timer = this.#arm();
    }, LAG_PROBE_MS);
  }

  stop(): void {
    clearTimeout(this.#timer);
  }
}

/** Cuts a run into intervals for `onInterval`: counts at each boundary and fresh histograms. */
class IntervalCounter {
  readonly #run: Run;
  readonly #length: number;
  #start: number;
  #counts = { messages: 0, errors: 0, connects: 0 };

  constructor(run: Run, length: number) {
    this.#run = run;
    this.#length = length;
    this.#start = run.started;
    this.#fresh();
  }

  #fresh(): void {
    this.#run.intervalHistogram = new LatencyHistogram();
    if (this.#run.serviceTime) this.#run.intervalServiceTime = new LatencyHistogram();
  }

  /** Reports the interval if it is over by `now`, or the last stretch at the end of the run. */
  tick(now: number, last: boolean): void {
    const run = this.#run;
    // Whole intervals on the run's own clock, so that they line up from one run to the next.
    const end = last ? now : this.#start + this.#length;
    if (!last && now < end) return;
    const counts = {
      messages: run.messages,
      errors: totalErrors(run.errors),
      connects: run.connects.made,
    };
    const messages = counts.messages - this.#counts.messages;
    run.options.onInterval!({
      start: (this.#start - run.started) / 1000,
      end: (end - run.started) / 1000,
      messages,
      bytes: messages * run.size,
      errors: counts.errors - this.#counts.errors,
      connects: counts.connects - this.#counts.connects,
      histogram: run.intervalHistogram!,
      serviceTime: run.intervalServiceTime,
    });
    this.#counts = counts;
    this.#start = end;
    this.#fresh();
  }
}

/** All errors of a run, added up. */
export function totalErrors(errors: LoadErrors): number {
  return errors.mismatches + errors.earlyCloses + errors.resets + errors.timeouts +
    errors.refused + errors.connectTimeouts;
}

/** The address a run was aimed at, when it never connected. */
function describeTarget(options: LoadOptions): Deno.Addr {
  if (options.unix !== undefined) return { transport: "unix", path: options.unix };
  return {
    transport: "tcp",
    hostname: options.hostname ?? "localhost",
    port: options.port ?? DEFAULT_PORT,
  };
}

/** Opens every connection, or none: one failure closes the others and says why. */
async function openAll(run: Run): Promise<Opened[]> {
  const attempts = await Promise.allSettled(run.slots.map(() => run.open()));
  const opened = attempts.flatMap((a) =>
    a.status === "fulfilled" && a.value !== NOT_OPENED ? [a.value] : []
  );
  if (opened.length === attempts.length) return opened;
  for (const { conn } of opened) conn.close();
  const failure = attempts.find((a) => a.status === "rejected");
  if (failure) throw failure.reason;
  // Only counted failures: say why, as connect would have.
  throw new RuntimeError(`cannot connect to ${describeEndpoint(run.options)}: ${run.lastFailure}`);
}

/**
 * One slot's life: its connection, or in turn each of its churned connections, until its messages
 * are done or the run stops. Starts `delay` ms late for a ramp of connections.
 */
async function runSlot(run: Run, slot: Slot, ready: Opened | undefined, delay: number) {
  const { reconnect } = run.options;
  let failingSince: number | undefined;
  let backoff = MIN_BACKOFF_MS;
  try {
    await run.sleep(delay);
    while (slot.sent < run.count && !(run.stopping && slot.sent >= slot.released)) {
      let opened: Opened | typeof NOT_OPENED | undefined = ready;
      ready = undefined;
      if (!opened) {
        // An open loop opens a churned connection when its first message falls due.
        await slot.due(run);
        if (run.stopping && slot.sent >= slot.released) break;
        opened = await run.open();
      }
      if (opened === NOT_OPENED) {
        // Never reached at all: the target is not there, which a count would only hide.
        if (run.connects.made === 0 && run.errors.refused > 0) {
          throw new RuntimeError(
            `cannot connect to ${describeEndpoint(run.options)}: ${run.lastFailure}`,
          );
        }
        const now = performance.now();
        failingSince ??= now;
        // Give up on a server that has refused this slot for longer than the timeout.
        if (now - failingSince > run.timeout) break;
        // Back off, doubling up to a second, rather than retry thousands of times a second.
        await run.sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        continue;
      }
      failingSince = undefined;
      backoff = MIN_BACKOFF_MS;
      const limit = Math.min(reconnect ?? Infinity, run.count - slot.sent);
      const connection = new LoadConnection(run, slot, opened, limit);
      slot.connection = connection;
      await connection.done;
      slot.connection = undefined;
      if (reconnect === undefined) break;
    }
  } catch (err) {
    run.fatal ??= err;
    run.stop();
  }
}

/** One connection's sender and receiver, sharing the window. */
class LoadConnection {
  readonly #run: Run;
  readonly #slot: Slot;
  readonly #conn: ClientConn;
  readonly #openMs: number;
  /** When the first message was handed to the socket. */
  #firstSentAt = 0;
  readonly #backend?: BackendReport;
  /** Messages this connection may carry. */
  readonly #limit: number;
  /** The slot's send times (see {@linkcode Slot}), this connection's while it lasts. */
  readonly #sentAt: Float64Array;
  readonly #dueAt: Float64Array;
  readonly done: Promise<void>;
  /** Messages whose first byte was handed to the socket. */
  #started = 0;
  /** Messages fully echoed. */
  #echoed = 0;
  /** Bytes echoed so far: the stream offset of the next byte expected. */
  #received = 0;
  #sending = false;
  #closed = false;

  constructor(run: Run, slot: Slot, opened: Opened, limit: number) {
    this.#run = run;
    this.#slot = slot;
    this.#conn = opened.conn;
    this.#openMs = opened.openMs;
    this.#backend = opened.backend;
    this.#limit = limit;
    this.#sentAt = slot.sentAt;
    this.#dueAt = slot.dueAt;
    this.#send();
    this.done = this.#receive(slot.buffer);
  }

  /** A message fell due: send it if the window allows. */
  kick(): void {
    if (!this.#sending && !this.#closed) this.#send();
  }

  /** No more messages: close now if nothing is owed, else once the last echo is in. */
  stop(): void {
    if (this.#started === this.#echoed && !this.#canSend()) this.#close();
  }

  /** Gives up on the connection when its oldest echo is overdue. */
  checkTimeout(now: number): void {
    if (this.#closed || this.#started === this.#echoed) return;
    const oldest = this.#sentAt[this.#echoed % this.#run.window];
    if (now - oldest > this.#run.timeout) {
      // After Ctrl-C the user stopped waiting, not the server: unfinished, not an error.
      if (this.#run.interrupted) this.#run.unfinished += this.#started - this.#echoed;
      else this.#run.errors.timeouts++;
      this.#close();
    }
  }

  /** Nothing owed and nothing more to send on this connection. */
  #finished(): boolean {
    const slot = this.#slot;
    return this.#echoed === this.#started &&
      (this.#echoed >= this.#limit || (this.#run.stopping && slot.sent >= slot.released));
  }

  #canSend(): boolean {
    const slot = this.#slot;
    return !this.#closed && this.#started - this.#echoed < this.#run.window &&
      this.#started < this.#limit && slot.sent < slot.released;
  }

  async #send(): Promise<void> {
    this.#sending = true;
    const run = this.#run;
    const { size, source, window, schedule } = run;
    const slot = this.#slot;
    try {
      while (this.#canSend()) {
        const start = (this.#started * size) % PATTERN_PERIOD;
        const message = source.subarray(start, start + size);
        const now = performance.now();
        const slotIndex = this.#started % window;
        this.#sentAt[slotIndex] = now;
        this.#dueAt[slotIndex] = schedule
          ? run.started + schedule.dueAt(slot.sent * schedule.connections + slot.index)
          : now;
        run.sendDelay?.record((now - this.#dueAt[slotIndex]) * 1000);
        run.lastSent = now;
        if (this.#started === 0) this.#firstSentAt = now;
        slot.sent++;
        this.#started++;
        const written = await this.#conn.write(message);
        if (written < size) await writeAll(this.#conn, message, undefined, written);
      }
    } catch (err) {
      this.#fail(err);
    } finally {
      this.#sending = false;
    }
  }

  async #receive(buffer: Uint8Array): Promise<void> {
    const run = this.#run;
    const { size, window, histogram, serviceTime } = run;
    const backend = this.#backend;
    try {
      while (!this.#closed && !this.#finished()) {
        const n = await this.#conn.read(buffer);
        if (n === null) {
          if (!this.#closed) run.errors.earlyCloses++;
          break;
        }
        const now = performance.now();
        // The opening plus the first round trip: bench's own wait between them (the other
        // connections opening, a message not yet due) is not the server's.
        if (this.#received === 0) {
          run.connects.firstByte.record((this.#openMs + now - this.#firstSentAt) * 1000);
        }
        this.#check(buffer.subarray(0, n));
        this.#received += n;
        while (this.#received >= (this.#echoed + 1) * size && this.#echoed < this.#started) {
          const index = this.#echoed % window;
          const latency = (now - this.#dueAt[index]) * 1000;
          histogram.record(latency);
          run.intervalHistogram?.record(latency);
          backend?.histogram.record(latency);
          if (serviceTime) {
            const service = (now - this.#sentAt[index]) * 1000;
            serviceTime.record(service);
            run.intervalServiceTime?.record(service);
            backend?.serviceTime?.record(service);
          }
          if (backend) backend.messages++;
          this.#echoed++;
          run.messages++;
        }
        // Waking for a read is a chance to release what fell due, sooner than a timer would.
        run.pacer?.poll();
        if (!this.#sending) this.#send();
      }
    } catch (err) {
      this.#fail(err);
    }
    this.#close();
  }

  /** Compares `chunk` with the pattern at the current offset; counts each bad message once. */
  #check(chunk: Uint8Array): void {
    const { size, source, errors } = this.#run;
    const owed = this.#started * size - this.#received;
    const start = this.#received % PATTERN_PERIOD;
    const expected = source.subarray(start, start + Math.min(chunk.length, owed));
    if (chunk.length <= owed && Buffer.compare(chunk, expected) === 0) return;
    if (this.#received === 0) this.#run.mixUp ??= mixUpHint(chunk);
    if (chunk.length > owed) errors.mismatches++; // bytes nobody sent
    // Something differs: find which messages, one comparison per message.
    for (let offset = 0; offset < expected.length;) {
      const left = size - ((this.#received + offset) % size);
      const end = Math.min(offset + left, expected.length);
      if (Buffer.compare(chunk.subarray(offset, end), expected.subarray(offset, end)) !== 0) {
        errors.mismatches++;
      }
      offset = end;
    }
  }

  #fail(err: unknown): void {
    if (this.#closed) return; // our own close interrupted a read or write
    // A read or write failed: the server closed early, or the connection broke.
    if (err instanceof Deno.errors.UnexpectedEof) this.#run.errors.earlyCloses++;
    else this.#run.errors.resets++;
    this.#close();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}
