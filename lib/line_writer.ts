/**
 * Buffered, non-blocking line output: callers queue lines and go on at once; one write loop
 * sends everything queued so far in a single write, in order.
 *
 * @module
 */

/** Where lines go: `Deno.stdout`, `Deno.stderr`, a file or a pipe. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<number>;
}

/**
 * Queues lines and writes them in order without making the caller wait, so that a slow terminal
 * or pipe never slows the caller down. Lines are never dropped or reordered; if the sink fails
 * (a closed pipe), output stops quietly. Await {@linkcode LineWriter.flush} before exiting.
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
  #queue: string[] = [];
  #writing?: Promise<void>;
  #broken = false;

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  /** Queues `text` and a newline. */
  line(text: string): void {
    if (this.#broken) return;
    this.#queue.push(text, "\n");
    this.#writing ??= this.#writeQueued();
  }

  async #writeQueued(): Promise<void> {
    // Start on the next microtask, so that #writing is set before this can finish.
    await null;
    try {
      while (this.#queue.length > 0) {
        const bytes = this.#encoder.encode(this.#queue.join(""));
        this.#queue = [];
        let written = 0;
        while (written < bytes.length) written += await this.#sink.write(bytes.subarray(written));
      }
    } catch {
      this.#broken = true;
      this.#queue = [];
    } finally {
      this.#writing = undefined;
    }
  }

  /** Resolves once every queued line has been written. */
  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
  }
}
