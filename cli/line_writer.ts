/**
 * Buffered, non-blocking line output: callers queue lines and go on at once; one write loop
 * sends everything queued so far in a single write, in order.
 *
 * @module
 */

import { OutputError } from "./output.ts";

/** Where lines go: `Deno.stdout`, `Deno.stderr`, a file or a pipe. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<number>;
}

/** How a {@linkcode LineWriter} copes with a sink slower than its callers. */
export interface LineWriterOptions {
  /**
   * The most characters left waiting for the sink. While that many wait, new lines are dropped
   * and counted, so that a stalled sink cannot make memory grow without bound; a single line
   * longer than this is still written when nothing else waits. Default: no limit.
   */
  maxQueued?: number;
  /** The line written where lines were dropped, given how many. */
  droppedNote?: (dropped: number) => string;
  /** The sink's name in {@linkcode OutputError} messages. Default `standard output`. */
  name?: string;
}

/**
 * Queues lines and writes them in order without making the caller wait, so that a slow terminal
 * or pipe never slows the caller down. Lines are never reordered, and dropped only beyond
 * `maxQueued`, with a note in their place. If the sink fails (a closed pipe, a full disk), output
 * stops: {@linkcode LineWriter.failed} says why, for the caller to stop too. Await
 * {@linkcode LineWriter.flush} before exiting.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { LineWriter } from "./line_writer.ts";
 *
 * const written: Uint8Array[] = [];
 * const out = new LineWriter({ write: (bytes) => (written.push(bytes), Promise.resolve(bytes.length)) });
 * out.line("one");
 * out.line("two");
 * await out.flush();
 * equal(written.map((b) => new TextDecoder().decode(b)).join(""), "one\ntwo\n");
 * ```
 */
export class LineWriter {
  readonly #sink: ByteSink;
  readonly #encoder = new TextEncoder();
  readonly #maxQueued: number;
  readonly #droppedNote: (dropped: number) => string;
  readonly #name: string;
  readonly #failed = Promise.withResolvers<OutputError>();
  #error: OutputError | undefined;
  #queue: string[] = [];
  #queued = 0;
  #dropped = 0;
  #writing?: Promise<void>;

  constructor(sink: ByteSink, options: LineWriterOptions = {}) {
    this.#sink = sink;
    this.#maxQueued = options.maxQueued ?? Infinity;
    this.#droppedNote = options.droppedNote ??
      ((dropped) =>
        `(${dropped} line${dropped === 1 ? "" : "s"} dropped: the output was too slow)`);
    this.#name = options.name ?? "standard output";
  }

  /** Why the sink failed, once it has; nothing is written after that. */
  get error(): OutputError | undefined {
    return this.#error;
  }

  /** Characters queued and not yet handed to the sink. */
  get queued(): number {
    return this.#queued;
  }

  /** Resolves with the sink's failure, when it fails. */
  get failed(): Promise<OutputError> {
    return this.#failed.promise;
  }

  /**
   * Queues `text` and a newline, or drops it while `maxQueued` characters wait, unless `keep`:
   * lines that must reach the reader, such as a summary, are never dropped.
   */
  line(text: string, keep = false): void {
    if (this.#error) return;
    // One line alone always fits, however long: a limit below it would drop it every time.
    if (!keep && this.#queued > 0 && this.#queued + text.length >= this.#maxQueued) {
      // A relayed batch holds several lines: count each.
      for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) this.#dropped++;
      this.#dropped++;
      return;
    }
    if (this.#dropped > 0) this.#noteDropped();
    this.#push(text);
  }

  #push(text: string): void {
    this.#queue.push(text, "\n");
    this.#queued += text.length + 1;
    this.#writing ??= this.#writeQueued();
  }

  #noteDropped(): void {
    const note = this.#droppedNote(this.#dropped);
    this.#dropped = 0;
    this.#push(note);
  }

  async #writeQueued(): Promise<void> {
    // Start on the next microtask, so that #writing is set before this can finish.
    await null;
    try {
      while (this.#queue.length > 0) {
        const bytes = this.#encoder.encode(this.#queue.join(""));
        this.#queue = [];
        this.#queued = 0;
        let written = 0;
        while (written < bytes.length) written += await this.#sink.write(bytes.subarray(written));
      }
    } catch (err) {
      this.#error = new OutputError(err, this.#name);
      this.#failed.resolve(this.#error);
      this.#queue = [];
      this.#queued = 0;
    } finally {
      this.#writing = undefined;
    }
  }

  /** Resolves once every queued line (and the note of any dropped at the end) has been written. */
  async flush(): Promise<void> {
    if (this.#dropped > 0 && !this.#error) this.#noteDropped();
    while (this.#writing) await this.#writing;
  }
}
