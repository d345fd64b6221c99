/**
 * The echo loop of a connection that faults hit: the server runs it instead of its plain loop, so
 * that connections without faults pay nothing for them.
 *
 * A reader takes chunks from the client and queues them with the time each is due; a writer
 * sends them back in order, piece by piece. What a fault does to the echo is its unit's (see
 * `lib/faults/unit.ts`): the reader and the writer ask every unit that hit the connection, at
 * each chunk read and at each piece written. Reading goes on while the writer waits, so a delay
 * is added once to each chunk, not once per chunk to the whole stream; the queue is bounded, so a
 * slow echo slows the client down through TCP's own flow control.
 *
 * @module
 */

import type { ConnectionInfo, EchoEvent } from "./events.ts";
import type { EchoStats, EchoTimeRecorder } from "./stats.ts";
import { type ConnectionState, discardedAfterFin, echoing, moveTo } from "./connection_state.ts";
import { writeAll } from "../base/io.ts";
import { sleep } from "../base/timers.ts";
import type { ConnectionFaults } from "../faults/plan.ts";
import type { FaultKind } from "../faults/settings.ts";
import type { EchoEnd, EchoShaper } from "../faults/unit.ts";
import type { StreamConn } from "../net/stream_conn.ts";

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
  /** Set when the server's faults changed for open connections: the loop hands over. */
  readonly faultsChanged?: boolean;
  /** Bytes received from the client, and bytes echoed back to it. */
  received: number;
  echoed: number;
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
  /**
   * A chunk already read (and not yet counted), taken first as if the loop had read it: the one
   * the plain loop had in hand when the faults changed.
   */
  firstChunk?: Uint8Array;
}

/** Bytes read ahead of the echo, at most, before the reader waits for the writer. */
const QUEUE_LIMIT = 256 * 1024;

/**
 * Echoes one connection with `options.faults` applied. Resolves with `"reset"` when a reset fault
 * ended it, `"eof"` when the client closed it, `"changed"` when the server changed its faults
 * (what was read is echoed first), or undefined when the server stopped it; rejects when the
 * connection fails.
 */
export async function echoWithFaults(
  options: FaultedEchoOptions,
): Promise<"reset" | "eof" | "changed" | undefined> {
  const { connection, faults, signal, onFault } = options;
  if (faults.resets && !connection.conn.reset) {
    throw new Error("the reset faults need a connection that can be reset");
  }
  const reset = new Reset(connection, onFault, signal);
  const shapers = faults.shape(onFault, signal);
  const resetAt = shapers.find((shaper) => shaper.resetAt)?.resetAt;
  const timer = resetAt && setTimeout(() => reset.start(resetAt.detail), resetAt.after);
  const reads = shapers.find((shaper) => shaper.reads)?.reads;
  let eof = false;
  try {
    if (reads === "never") {
      // The chunk in hand was read before the server stopped reading: counted, never echoed.
      const inHand = options.firstChunk?.length ?? 0;
      options.stats.bytesReceived += inHand;
      connection.received += inHand;
      connection.reading = true;
      await Promise.race([aborted(signal), reset.ended]);
    } else if (reads === "dropped") {
      eof = await swallow(options, reset);
    } else {
      eof = await new Pipeline(options, reset, shapers).run();
    }
  } catch (err) {
    // Our own reset makes the pending read or write fail: that is the fault, not an error.
    if (!reset.started) throw err;
  } finally {
    clearTimeout(timer);
  }
  if (!reset.started) {
    if (eof) return "eof";
    return connection.faultsChanged && echoing(connection) ? "changed" : undefined;
  }
  await reset.ended;
  return "reset";
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
  let inHand = options.firstChunk;
  while (echoing(connection) && !options.signal.aborted && !connection.faultsChanged) {
    const n = inHand ? take(inHand, buffer) : await readChunk(connection, buffer);
    inHand = undefined;
    if (n === null) {
      // After a FIN at the drain deadline, the client's end is its answer to the cut.
      if (!reset.started && connection.state !== "half-closed") endOfStream(options);
      return true;
    }
    if (reset.started) continue;
    stats.bytesReceived += n;
    connection.received += n;
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

/** One read of `connection` into `buffer`, marked as waiting meanwhile. */
async function readChunk(
  connection: FaultedConnection,
  buffer: Uint8Array,
): Promise<number | null> {
  connection.reading = true;
  const n = await connection.conn.read(buffer);
  connection.reading = false;
  connection.lastActive = performance.now();
  return n;
}

/** Puts the chunk in hand into `buffer` as a read would, and returns its length. */
function take(chunk: Uint8Array, buffer: Uint8Array): number {
  buffer.set(chunk);
  return chunk.length;
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
  readonly #shapers: readonly EchoShaper[];
  readonly #queue: Chunk[] = [];
  #queued = 0;
  #lastDue = 0;
  #echoed = 0;
  #readerDone = false;
  #writerDone = false;
  #readerWaiting = false;
  #writing = false;
  /** The client closed its side. */
  #eof = false;
  /** FIN went out at a close fault: the rest of the stream is read and dropped. */
  #closed = false;
  #wakeReader?: () => void;
  #wakeWriter?: () => void;

  constructor(options: FaultedEchoOptions, reset: Reset, shapers: readonly EchoShaper[]) {
    this.#options = options;
    this.#reset = reset;
    this.#shapers = shapers;
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
    const { connection, stats, onEvent, signal } = this.#options;
    const { conn } = connection;
    const buffer = new Uint8Array(this.#options.bufferSize);
    let inHand = this.#options.firstChunk;
    try {
      while (
        echoing(connection) && !signal.aborted && !connection.faultsChanged &&
        (!this.#writerDone || this.#closed)
      ) {
        let n: number | null;
        if (inHand) {
          n = take(inHand, buffer);
          inHand = undefined;
        } else {
          this.#readerWaiting = true;
          connection.reading = this.#queue.length === 0 && !this.#writing;
          n = await conn.read(buffer);
          this.#readerWaiting = false;
          connection.reading = false;
        }
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
        connection.received += n;
        if (this.#closed) continue;
        // FIN went out at the drain deadline while this read waited: too late to echo these.
        if (discardedAfterFin(connection, stats, n)) return;
        const data = buffer.slice(0, n);
        onEvent?.({ type: "received", conn: connection, open: stats.open, data });
        const now = performance.now();
        let holdBack = 0;
        for (const shaper of this.#shapers) {
          if (shaper.chunk) holdBack += shaper.chunk(data, stats.bytesReceived - n);
        }
        // Never before an earlier chunk: jitter reorders nothing.
        this.#lastDue = Math.max(this.#lastDue, now + holdBack);
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
    const { connection, stats, onEvent, signal, echoTimes } = this.#options;
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
          const size = await this.#nextPiece(data.length - offset);
          if (this.#reset.started) return;
          await writeAll(connection.conn, data.subarray(offset, offset + size), (sent) => {
            stats.bytesEchoed += sent;
            connection.echoed += sent;
            connection.lastActive = performance.now();
          });
          this.#reset.lastWrite = performance.now();
          offset += size;
          this.#echoed += size;
          const end = this.#end();
          if (end?.how === "reset") return await this.#reset.start(end.detail);
          if (end?.how === "close") {
            this.#closed = true;
            this.#queue.length = 0;
            await connection.conn.closeWrite();
            return;
          }
          if (offset < data.length) {
            for (const shaper of this.#shapers) await shaper.betweenPieces?.();
          }
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

  /**
   * Waits out the units' pauses, sizes the next piece (at most `left` bytes) within their
   * limits, and waits until their pace lets it go; resolves with its size.
   */
  async #nextPiece(left: number): Promise<number> {
    for (const shaper of this.#shapers) await shaper.pause?.();
    let size = left;
    for (const shaper of this.#shapers) {
      if (shaper.pieceLimit) size = Math.min(size, shaper.pieceLimit(this.#echoed));
    }
    for (const shaper of this.#shapers) await shaper.pace?.(size);
    return size;
  }

  /** How the echo ends after the piece just written, if a unit ends it: the first one says. */
  #end(): EchoEnd | undefined {
    for (const shaper of this.#shapers) {
      const end = shaper.afterPiece?.(this.#echoed);
      if (end) return end;
    }
    return undefined;
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
