/**
 * The load engine behind `tcpecho bench`: N connections, each keeping a window of messages in
 * flight, every echoed byte checked against the pattern sent, every round trip timed.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { LatencyHistogram, type LatencySummary } from "./histogram.ts";
import { pattern, PATTERN_PERIOD } from "./pattern.ts";
import { type ClientConn, connect, type ConnectOptions, type StreamConn } from "./transport.ts";
import { writeAll } from "./_exchange.ts";

/**
 * What to load and for how long. The server is reached as {@linkcode ConnectOptions} say: TCP,
 * TLS or a Unix domain socket.
 */
export interface LoadOptions extends Omit<ConnectOptions, "signal"> {
  /** Connections opened at once. Default 1. */
  connections?: number;
  /** Bytes per message. Default 16. */
  size?: number;
  /** Messages in flight per connection. Default 1. */
  window?: number;
  /** Milliseconds to send for, then wait for the echoes in flight. Default 5000 unless `count`. */
  duration?: number;
  /** Messages per connection; the run ends when all are echoed. Overrides the default duration. */
  count?: number;
  /** Milliseconds a message may wait for its echo before it counts as a timeout. Default 5000. */
  timeout?: number;
  /** Called about once a second while the load runs. */
  onProgress?: (progress: LoadProgress) => void;
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
  /** Median round trip so far, in microseconds. */
  p50: number;
  /** All errors counted so far. */
  errors: number;
}

/** What went wrong during a run; any of them makes the run fail. */
export interface LoadErrors {
  /** Messages whose echo differed from what was sent (or bytes nobody sent). */
  mismatches: number;
  /** Connections the server closed while echoes were still owed. */
  earlyCloses: number;
  /** Connections reset or broken by the server or the network. */
  resets: number;
  /** Connections given up because an echo took longer than the timeout. */
  timeouts: number;
}

/** The outcome of a run. */
export interface LoadReport {
  /** The server's address as connected to: TCP (plain or TLS) or a Unix socket path. */
  target: Deno.Addr;
  /** Connections used. */
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
  /** Round-trip times in microseconds, from the first byte sent to the last byte echoed. */
  latency: LatencySummary;
  /** The histogram behind {@linkcode LoadReport.latency}, for charts. */
  histogram: LatencyHistogram;
  /** Over TLS: how long the connections' handshakes took, in microseconds. */
  handshake?: LatencySummary;
  /** What went wrong, counted by kind. */
  errors: LoadErrors;
  /** True when no error of any kind was counted. */
  ok: boolean;
  /** True when `signal` ended the run before its duration or count. */
  interrupted: boolean;
}

/** The largest read per connection: enough for a 64 KiB window of 4 in few reads. */
const MAX_READ = 256 * 1024;

/** State shared by every connection of one run. */
interface Run {
  readonly size: number;
  readonly window: number;
  readonly count: number;
  readonly timeout: number;
  /** The pattern from every offset in one period: message bytes are slices of it, never copies. */
  readonly source: Uint8Array;
  readonly histogram: LatencyHistogram;
  readonly errors: LoadErrors;
  messages: number;
  stopping: boolean;
}

/**
 * Drives an echo server and checks every echoed byte. Throws a {@linkcode RuntimeError} when the
 * server cannot be reached; everything that goes wrong later is counted in the report's `errors`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { runLoad, startEchoServer } from "./mod.ts";
 *
 * await using server = startEchoServer({ hostname: "127.0.0.1", port: 0 });
 * const report = await runLoad({ hostname: "127.0.0.1", port: server.addr.port, count: 100 });
 * equal(report.messages, 100);
 * equal(report.ok, true);
 * ```
 */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const { connections = 1, size = 16, window = 1 } = options;
  const count = options.count ?? Infinity;
  const duration = options.duration ?? (options.count === undefined ? 5000 : Infinity);
  const readSize = Math.min(Math.max(size * window, 16), MAX_READ);
  const run: Run = {
    size,
    window,
    count,
    timeout: options.timeout ?? 5000,
    source: pattern(PATTERN_PERIOD + Math.max(size, readSize)),
    histogram: new LatencyHistogram(),
    errors: { mismatches: 0, earlyCloses: 0, resets: 0, timeouts: 0 },
    messages: 0,
    stopping: false,
  };

  const conns = await connectAll(options, connections);
  const loadConnections = conns.map((conn) => new LoadConnection(run, conn, readSize));
  const started = performance.now();
  let stopped = Infinity;
  const stop = () => {
    stopped = performance.now();
    run.stopping = true;
    for (const connection of loadConnections) connection.stop();
  };
  const deadline = Number.isFinite(duration) ? setTimeout(stop, duration) : undefined;
  let interrupted = false;
  const interrupt = () => {
    interrupted = stopped === Infinity;
    if (interrupted) stop();
  };
  options.signal?.addEventListener("abort", interrupt, { once: true });
  if (options.signal?.aborted) interrupt();
  let last = { at: started, messages: 0 };
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const connection of loadConnections) connection.checkTimeout(now);
    if (options.onProgress && now - last.at >= 1000) {
      options.onProgress({
        seconds: (now - started) / 1000,
        messages: run.messages,
        messagesPerSecond: (run.messages - last.messages) / ((now - last.at) / 1000),
        p50: run.histogram.percentile(50),
        errors: totalErrors(run.errors),
      });
      last = { at: now, messages: run.messages };
    }
  }, Math.min(100, run.timeout / 4));
  try {
    await Promise.all(loadConnections.map((connection) => connection.done));
  } finally {
    clearTimeout(deadline);
    clearInterval(watchdog);
    options.signal?.removeEventListener("abort", interrupt);
  }
  const seconds = (Math.min(performance.now(), stopped) - started) / 1000;
  const bytes = run.messages * size;
  return {
    // A Unix client socket knows no peer path: name the one connected to.
    target: options.unix === undefined
      ? conns[0].remoteAddr
      : { transport: "unix", path: options.unix },
    connections,
    size,
    window,
    seconds,
    messages: run.messages,
    bytes,
    messagesPerSecond: seconds > 0 ? run.messages / seconds : 0,
    mibPerSecond: seconds > 0 ? bytes / seconds / (1024 * 1024) : 0,
    latency: run.histogram.summary(),
    histogram: run.histogram,
    handshake: handshakes(conns),
    errors: { ...run.errors },
    ok: totalErrors(run.errors) === 0,
    interrupted,
  };
}

/** The handshake times of TLS connections, or undefined when they did not speak TLS. */
function handshakes(conns: ClientConn[]): LatencySummary | undefined {
  const times = conns.flatMap((conn) => conn.tls ? [conn.tls.handshakeMs] : []);
  if (times.length === 0) return undefined;
  const histogram = new LatencyHistogram();
  for (const ms of times) histogram.record(Math.round(ms * 1000));
  return histogram.summary();
}

/** All errors of a run, added up. */
export function totalErrors(errors: LoadErrors): number {
  return errors.mismatches + errors.earlyCloses + errors.resets + errors.timeouts;
}

/** Opens every connection, or none: one failure closes the others and says why. */
async function connectAll(options: ConnectOptions, connections: number): Promise<ClientConn[]> {
  const attempts = await Promise.allSettled(
    Array.from({ length: connections }, () => connect(options)),
  );
  const conns = attempts.flatMap((a) => a.status === "fulfilled" ? [a.value] : []);
  const failure = attempts.find((a) => a.status === "rejected");
  if (failure) {
    for (const conn of conns) conn.close();
    throw failure.reason;
  }
  return conns;
}

/** One connection's sender and receiver, sharing the window. */
class LoadConnection {
  readonly #run: Run;
  readonly #conn: StreamConn;
  /** When each message in the window was sent, by message number modulo the window. */
  readonly #sentAt: Float64Array;
  readonly done: Promise<void>;
  /** Messages whose first byte was handed to the socket. */
  #started = 0;
  /** Messages fully echoed. */
  #echoed = 0;
  /** Bytes echoed so far: the stream offset of the next byte expected. */
  #received = 0;
  #sending = false;
  #closed = false;

  constructor(run: Run, conn: StreamConn, readSize: number) {
    this.#run = run;
    this.#conn = conn;
    this.#sentAt = new Float64Array(run.window);
    this.#send();
    this.done = this.#receive(new Uint8Array(readSize));
  }

  /** No more messages: close now if nothing is owed, else once the last echo is in. */
  stop(): void {
    if (this.#started === this.#echoed) this.#close();
  }

  /** Gives up on the connection when its oldest echo is overdue. */
  checkTimeout(now: number): void {
    if (this.#closed || this.#started === this.#echoed) return;
    const oldest = this.#sentAt[this.#echoed % this.#run.window];
    if (now - oldest > this.#run.timeout) {
      this.#run.errors.timeouts++;
      this.#close();
    }
  }

  #canSend(): boolean {
    const run = this.#run;
    return !run.stopping && !this.#closed && this.#started - this.#echoed < run.window &&
      this.#started < run.count;
  }

  async #send(): Promise<void> {
    this.#sending = true;
    const { size, source, window } = this.#run;
    try {
      while (this.#canSend()) {
        const start = (this.#started * size) % PATTERN_PERIOD;
        const message = source.subarray(start, start + size);
        this.#sentAt[this.#started % window] = performance.now();
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
    const { size, window, histogram } = run;
    try {
      while (!this.#closed) {
        const n = await this.#conn.read(buffer);
        if (n === null) {
          if (!this.#closed) run.errors.earlyCloses++;
          break;
        }
        const now = performance.now();
        this.#check(buffer.subarray(0, n));
        this.#received += n;
        while (this.#received >= (this.#echoed + 1) * size && this.#echoed < this.#started) {
          histogram.record((now - this.#sentAt[this.#echoed % window]) * 1000);
          this.#echoed++;
          run.messages++;
        }
        if (this.#echoed >= run.count || (run.stopping && this.#echoed === this.#started)) break;
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
