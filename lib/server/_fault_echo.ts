/**
 * The echo loop of a connection that faults hit: the server runs it instead of its plain loop, so
 * that connections without faults pay nothing for them.
 *
 * A reader takes chunks from the client and queues them with the time each is due; a writer
 * sends them back in order, applying delay, jitter, stalls, the bandwidth cap, slicing and the
 * byte limits of the reset and close faults. Reading goes on while the writer waits, so a delay
 * is added once to each chunk, not once per chunk to the whole stream; the queue is bounded, so a
 * slow echo slows the client down through TCP's own flow control.
 *
 * @module
 */

import type { ConnectionInfo, EchoEvent } from "./events.ts";
import type { EchoStats, EchoTimeRecorder } from "./stats.ts";
import { type ConnectionState, discardedAfterFin, echoing, moveTo } from "./connection_state.ts";
import { bytes, ms } from "../base/format.ts";
import type { ConnectionFaults, FaultKind } from "../faults/plan.ts";
import type { StreamConn } from "../net/transport.ts";

/** The part of the server's connection record the loop reads and updates. */
export interface FaultedConnection extends ConnectionInfo {
  /** The connection; `reset` is needed by the reset faults. */
  readonly conn: StreamConn & { reset?(): void };
  /** True while the loop waits for data with nothing left to send back. */
  reading: boolean;
  /**
   * Where the connection is in its life: the loop reads while it is `open` or `draining`, and
   * `half-closed` means the server sent FIN at the drain deadline.
   */
  state: ConnectionState;
  /** `performance.now()` of the last byte received or sent. */
  lastActive: number;
}

/** What {@linkcode echoWithFaults} works with. */
export interface FaultedEchoOptions {
  /** The connection, as the server keeps it. */
  connection: FaultedConnection;
  /** What was decided for this connection. */
  faults: ConnectionFaults;
  /** Bytes read at a time. */
  bufferSize: number;
  /** The server's counters, updated as bytes move. */
  stats: EchoStats;
  /** The server's events, as the plain loop sends them. */
  onEvent?: (event: EchoEvent) => void;
  /** Counts the seconds from each chunk read to the end of its echo, delays included. */
  echoTimes?: EchoTimeRecorder;
  /** Called once for each fault injected, with a phrase such as `reset after 1,024 bytes echoed`. */
  onFault: (kind: FaultKind, detail: string) => void;
  /**
   * Aborted when the server ends the connection (the drain deadline, the idle timeout or an
   * abort), not when draining starts: reading stops, and what was read is echoed at once, without
   * waiting for delays, stalls or the bandwidth cap.
   */
  signal: AbortSignal;
}

/** Bytes read ahead of the echo, at most, before the reader waits for the writer. */
const QUEUE_LIMIT = 256 * 1024;
/**
 * The bandwidth cap sends pieces of at most this many milliseconds' worth, and its token bucket
 * holds as much: in any span of T ms the echo sends at most RATE x (T + PACE_MS), small chunks
 * need no timer each, and a late timer costs no bandwidth.
 */
const PACE_MS = 10;

/**
 * Echoes one connection with `options.faults` applied. Resolves with `"reset"` when a reset fault
 * ended it, `"eof"` when the client closed it, or undefined when the server stopped it; rejects
 * when the connection fails.
 */
export async function echoWithFaults(
  options: FaultedEchoOptions,
): Promise<"reset" | "eof" | undefined> {
  const { connection, faults, signal, onFault } = options;
  if (
    (faults.resetAfter < Infinity || faults.resetAfterTime < Infinity) && !connection.conn.reset
  ) {
    throw new Error("the reset faults need a connection that can be reset");
  }
  const reset = new Reset(connection, onFault, signal);
  announce(faults, onFault);
  const timer = faults.resetAfterTime === Infinity ? undefined : setTimeout(
    () => reset.start(`reset after ${ms(faults.resetAfterTime)}`),
    faults.resetAfterTime,
  );
  let eof = false;
  try {
    if (faults.noRead) {
      onFault("no-read", "not reading from the client");
      connection.reading = true;
      await Promise.race([aborted(signal), reset.ended]);
    } else if (faults.blackhole) {
      onFault("blackhole", "reading and echoing nothing");
      eof = await swallow(options, reset);
    } else {
      eof = await new Pipeline(options, reset).run();
    }
  } catch (err) {
    // Our own reset makes the pending read or write fail: that is the fault, not an error.
    if (!reset.started) throw err;
  } finally {
    clearTimeout(timer);
  }
  if (!reset.started) return eof ? "eof" : undefined;
  await reset.ended;
  return "reset";
}

/** Reports the faults that act on every chunk, once for the connection. */
function announce(faults: ConnectionFaults, onFault: FaultedEchoOptions["onFault"]): void {
  if (faults.delay > 0 || faults.jitter > 0) {
    const jitter = faults.jitter > 0 ? ` + 0-${ms(faults.jitter)}` : "";
    onFault("delay", `each chunk held back ${ms(faults.delay)}${jitter}`);
  }
  if (faults.bandwidth < Infinity) {
    onFault("bandwidth", `echo capped at ${bytes(faults.bandwidth)}/s`);
  }
  if (faults.slice < Infinity) {
    const apart = faults.sliceDelay > 0 ? `, ${ms(faults.sliceDelay)} apart` : "";
    onFault("slice", `echo written ${bytes(faults.slice)} at a time${apart}`);
  }
}

/** How long a reset waits after the last byte echoed, so that the bytes before it arrive. */
const RESET_LINGER_MS = 250;

/**
 * The reset of one connection. A reset throws away whatever the kernel still holds for the
 * client, including echoed bytes the client has not acknowledged yet (a client that reads slowly
 * holds them up), so it comes `RESET_LINGER_MS` after the last byte echoed, with nothing echoed
 * in between.
 */
class Reset {
  /** The time of the last write. */
  lastWrite = -Infinity;
  /** True from the moment the reset is decided: nothing more is echoed. */
  started = false;
  readonly #ended = Promise.withResolvers<void>();
  readonly #connection: FaultedConnection;
  readonly #onFault: FaultedEchoOptions["onFault"];
  readonly #signal: AbortSignal;

  constructor(
    connection: FaultedConnection,
    onFault: FaultedEchoOptions["onFault"],
    signal: AbortSignal,
  ) {
    this.#connection = connection;
    this.#onFault = onFault;
    this.#signal = signal;
  }

  /** Resolves once the reset went out. */
  get ended(): Promise<void> {
    return this.#ended.promise;
  }

  /** Decides the reset, sends it once the echoed bytes had time to arrive, and resolves then. */
  async start(detail: string): Promise<void> {
    if (this.started) return;
    this.started = true;
    await sleep(this.lastWrite + RESET_LINGER_MS - performance.now(), this.#signal);
    this.#onFault("reset", detail);
    this.#connection.conn.reset!();
    this.#ended.resolve();
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** Reads and drops everything until the end of the stream; true if the client closed it. */
async function swallow(options: FaultedEchoOptions, reset: Reset): Promise<boolean> {
  const { connection, stats, onEvent } = options;
  const buffer = new Uint8Array(options.bufferSize);
  while (echoing(connection) && !options.signal.aborted) {
    connection.reading = true;
    const n = await connection.conn.read(buffer);
    connection.reading = false;
    connection.lastActive = performance.now();
    if (n === null) {
      // After a FIN at the drain deadline, the client's end is its answer to the cut.
      if (!reset.started && connection.state !== "half-closed") endOfStream(options);
      return true;
    }
    if (reset.started) continue;
    stats.bytesReceived += n;
    // FIN went out at the drain deadline while this read waited: too late for these.
    if (discardedAfterFin(connection, stats, n)) return false;
    onEvent?.({
      type: "received",
      conn: connection,
      open: stats.open,
      data: buffer.subarray(0, n),
    });
  }
  return false;
}

function endOfStream({ connection, stats, onEvent }: FaultedEchoOptions): void {
  onEvent?.({ type: "received", conn: connection, open: stats.open, data: new Uint8Array(0) });
}

interface Chunk {
  data: Uint8Array;
  /** `performance.now()` when it was read. */
  readAt: number;
  /** `performance.now()` before which it must not be written. */
  due: number;
}

/** The reader and the writer of one connection, and the queue between them. */
class Pipeline {
  readonly #options: FaultedEchoOptions;
  readonly #reset: Reset;
  readonly #started = performance.now();
  readonly #queue: Chunk[] = [];
  #queued = 0;
  #lastDue = 0;
  #echoed = 0;
  /** When the next piece may go under the bandwidth cap. */
  #paceAt = 0;
  #readerDone = false;
  #writerDone = false;
  #readerWaiting = false;
  #writing = false;
  /** The client closed its side. */
  #eof = false;
  /** FIN went out after closeAfter bytes: the rest of the stream is read and dropped. */
  #closed = false;
  #wakeReader?: () => void;
  #wakeWriter?: () => void;

  constructor(options: FaultedEchoOptions, reset: Reset) {
    this.#options = options;
    this.#reset = reset;
  }

  /** Resolves true if the client closed the connection. */
  async run(): Promise<boolean> {
    const reading = this.#read();
    const writing = this.#write();
    // Whichever fails first says why; the other then ends on the closed connection.
    reading.catch(() => {});
    writing.catch(() => {});
    await Promise.all([reading, writing]);
    return this.#eof;
  }

  async #read(): Promise<void> {
    const { connection, faults, stats, onEvent, onFault, signal } = this.#options;
    const { conn } = connection;
    const buffer = new Uint8Array(this.#options.bufferSize);
    try {
      while (echoing(connection) && !signal.aborted && (!this.#writerDone || this.#closed)) {
        this.#readerWaiting = true;
        connection.reading = this.#queue.length === 0 && !this.#writing;
        const n = await conn.read(buffer);
        this.#readerWaiting = false;
        connection.reading = false;
        connection.lastActive = performance.now();
        if (n === null) {
          this.#eof = true;
          // After a FIN at the drain deadline, the client's end is its answer to the cut.
          if (!this.#reset.started && connection.state !== "half-closed") {
            endOfStream(this.#options);
          }
          return;
        }
        stats.bytesReceived += n;
        if (this.#closed) continue;
        // FIN went out at the drain deadline while this read waited: too late to echo these.
        if (discardedAfterFin(connection, stats, n)) return;
        const data = buffer.slice(0, n);
        onEvent?.({ type: "received", conn: connection, open: stats.open, data });
        const now = performance.now();
        const jitter = faults.jitter > 0 ? faults.random.next() * faults.jitter : 0;
        if (faults.corruptRate > 0 && faults.random.next() < faults.corruptRate) {
          const index = faults.random.below(n);
          const bit = faults.random.below(8);
          data[index] ^= 1 << bit;
          onFault(
            "corrupt",
            `flipped bit ${bit} of byte ${
              (stats.bytesReceived - n + index).toLocaleString("en-US")
            }`,
          );
        }
        // Never before an earlier chunk: jitter reorders nothing.
        this.#lastDue = Math.max(this.#lastDue, now + faults.delay + jitter);
        this.#queue.push({ data, readAt: now, due: this.#lastDue });
        this.#queued += n;
        this.#wake("writer");
        while (this.#queued >= QUEUE_LIMIT && !this.#writerDone) await this.#until("reader");
      }
    } finally {
      this.#readerDone = true;
      this.#wake("writer");
    }
  }

  async #write(): Promise<void> {
    const { connection, faults, stats, onEvent, onFault, signal, echoTimes } = this.#options;
    try {
      for (;;) {
        while (this.#queue.length === 0) {
          if (this.#readerDone) return;
          connection.reading = this.#readerWaiting;
          // Cut at the drain deadline with all of its echo written: FIN, so that the client
          // ends the read still waiting.
          if (this.#readerWaiting && connection.state === "closing") {
            moveTo(connection, "half-closed");
            await connection.conn.closeWrite().catch(() => {});
          }
          await this.#until("writer");
        }
        const { data, readAt, due } = this.#queue[0];
        await sleep(due - performance.now(), signal);
        this.#writing = true;
        onEvent?.({ type: "sending", conn: connection, open: stats.open, bytes: data.length });
        for (let offset = 0; offset < data.length;) {
          await this.#stall();
          const limit = Math.min(faults.resetAfter, faults.closeAfter) - this.#echoed;
          const size = Math.min(data.length - offset, faults.slice, this.#pieceSize(), limit);
          await this.#pace(size);
          if (this.#reset.started) return;
          await writeAll(connection, data.subarray(offset, offset + size), stats);
          this.#reset.lastWrite = performance.now();
          offset += size;
          this.#echoed += size;
          if (this.#echoed >= faults.resetAfter) {
            return await this.#reset.start(`reset after ${bytes(this.#echoed)} echoed`);
          }
          if (this.#echoed >= faults.closeAfter) {
            onFault("close", `closed after ${bytes(this.#echoed)} echoed`);
            this.#closed = true;
            this.#queue.length = 0;
            await connection.conn.closeWrite();
            return;
          }
          if (offset < data.length) await sleep(faults.sliceDelay, signal);
        }
        echoTimes?.observe((performance.now() - readAt) / 1000);
        this.#queue.shift();
        this.#queued -= data.length;
        this.#writing = false;
        this.#wake("reader");
      }
    } finally {
      this.#writing = false;
      this.#writerDone = true;
      this.#wake("reader");
    }
  }

  /** Waits out the pause of `stallEvery`/`stallFor` when the echo is in one. */
  async #stall(): Promise<void> {
    const { stallEvery, stallFor } = this.#options.faults;
    if (stallEvery === Infinity || this.#options.signal.aborted) return;
    const period = stallEvery + stallFor;
    const into = (performance.now() - this.#started) % period;
    if (into < stallEvery) return;
    this.#options.onFault("stall", `echo stalled for ${ms(stallFor)}`);
    await sleep(period - into, this.#options.signal);
  }

  /** Bytes per write under the bandwidth cap: `PACE_MS` worth, so the rate stays smooth. */
  #pieceSize(): number {
    const { bandwidth } = this.#options.faults;
    return bandwidth === Infinity ? Infinity : Math.max(1, Math.floor(bandwidth * PACE_MS / 1000));
  }

  /** A token bucket `PACE_MS` deep: waits until `size` more bytes keep the echo under the cap. */
  async #pace(size: number): Promise<void> {
    const { bandwidth } = this.#options.faults;
    if (bandwidth === Infinity || this.#options.signal.aborted) return;
    const now = performance.now();
    this.#paceAt = Math.max(this.#paceAt, now - PACE_MS) + size * 1000 / bandwidth;
    if (this.#paceAt > now) await sleep(this.#paceAt - now, this.#options.signal);
  }

  #wake(who: "reader" | "writer"): void {
    const wake = who === "reader" ? this.#wakeReader : this.#wakeWriter;
    if (who === "reader") this.#wakeReader = undefined;
    else this.#wakeWriter = undefined;
    wake?.();
  }

  #until(who: "reader" | "writer"): Promise<void> {
    return new Promise((resolve) => {
      if (who === "reader") this.#wakeReader = resolve;
      else this.#wakeWriter = resolve;
    });
  }
}

async function writeAll(
  connection: FaultedConnection,
  data: Uint8Array,
  stats: EchoStats,
): Promise<void> {
  for (let written = 0; written < data.length;) {
    const sent = await connection.conn.write(data.subarray(written));
    written += sent;
    stats.bytesEchoed += sent;
    connection.lastActive = performance.now();
  }
}

/** Resolves after `duration` ms, or at once when `signal` is aborted. */
function sleep(duration: number, signal: AbortSignal): Promise<void> {
  if (duration <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    // Timers count whole milliseconds: round up, never wake early.
    const timer = setTimeout(done, Math.ceil(duration));
    signal.addEventListener("abort", done, { once: true });
  });
}
