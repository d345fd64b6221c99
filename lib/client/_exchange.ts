/**
 * One client exchange with an echo server, shared by `sendAndVerify` and `ping`: bytes are written
 * while the echo is read, every echoed byte is checked against what is still owed, nothing moving
 * for the timeout ends it, and bytes nobody sent are caught.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { describeMismatch, describeProgress } from "./echo_check.ts";
import { explainCertificateError } from "../net/certificates.ts";
import { mixUpHint } from "./mix_up.ts";
import { EchoError, type EchoErrorCode, errorReason } from "../base/errors.ts";
import { writeAll } from "../base/io.ts";
import type { StreamConn } from "../net/stream_conn.ts";

/** How long a client waits without progress before it gives up, unless told otherwise. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Bytes a client reads at a time unless told otherwise: the classic tutorial's 16. */
export const DEFAULT_READ_SIZE = 16;

/** How long to wait, once every echo is in, for the server to close or show it has more to say. */
export const LINGER_MS = 1000;

/** How an {@linkcode Exchange} reads and how patient it is. */
export interface ExchangeOptions {
  /** Milliseconds without progress, while an echo is owed, before giving up. */
  timeout: number;
  /** Bytes read at a time. */
  bufferSize: number;
  /** The most bytes sent and not yet echoed: {@linkcode Exchange.send} waits below it. */
  maxOwed?: number;
  /**
   * Called for every read, before it is checked; `chunk` is only valid during the call. A
   * promise returned holds the reader back until it settles, without counting as a stall.
   */
  onReceived?: (chunk: Uint8Array) => void | Promise<void>;
  /** Said in parentheses when the server closes before a single byte came back. */
  silentCloseNote?: string;
}

/**
 * A connection under check: what {@linkcode Exchange.send} writes is owed until the same bytes
 * come back. A reader runs from the first send and fails the exchange at the first byte that differs,
 * a byte nobody sent, an early close, or `timeout` milliseconds without progress while something
 * is owed. Owed bytes are kept by reference, never copied: callers must not change them.
 */
export class Exchange {
  readonly #conn: StreamConn;
  readonly #timeoutMs: number;
  readonly #maxOwed: number;
  readonly #onReceived?: (chunk: Uint8Array) => void | Promise<void>;
  readonly #silentCloseNote?: string;
  readonly #owed: Uint8Array[] = [];
  /** Bytes of `#owed[0]` already echoed. */
  #owedStart = 0;
  #owedBytes = 0;
  #sent = 0;
  #received = 0;
  /** Where the current message starts: offsets in messages count from here. */
  #mark = 0;
  #writes = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timedOut = false;
  #lingering = false;
  #closed = false;
  #readerDone = false;
  #failure: EchoError | undefined;
  #changed = Promise.withResolvers<void>();
  readonly #buffer: Uint8Array;
  #reader: Promise<void> | undefined;
  readonly #stopped = Promise.withResolvers<void>();

  /** Takes `conn` over; reading starts with the first send, so nothing comes unasked. */
  constructor(conn: StreamConn, options: ExchangeOptions) {
    this.#conn = conn;
    this.#timeoutMs = options.timeout;
    this.#maxOwed = options.maxOwed ?? Infinity;
    this.#onReceived = options.onReceived;
    this.#silentCloseNote = options.silentCloseNote;
    this.#buffer = new Uint8Array(options.bufferSize);
  }

  /**
   * Resolves when the reader stops: the server closed, the exchange failed or was closed. Only
   * sending starts the reader: watching for its end does not.
   */
  get reading(): Promise<void> {
    return this.#stopped.promise;
  }

  #startReading(): void {
    this.#reader ??= this.#read(this.#buffer);
  }

  /** Bytes handed to {@linkcode Exchange.send} so far. */
  get sent(): number {
    return this.#sent;
  }

  /** Bytes echoed and checked so far. */
  get received(): number {
    return this.#received;
  }

  /** True once the reader stopped (see {@linkcode Exchange.reading}). */
  get stopped(): boolean {
    return this.#readerDone;
  }

  /** Why the exchange failed, once it has. */
  get failure(): EchoError | undefined {
    return this.#failure;
  }

  /** Starts a new message: offsets and progress in messages count from the bytes sent next. */
  mark(): void {
    this.#mark = this.#sent;
  }

  /**
   * Writes `bytes` once fewer than `maxOwed` bytes are owed, and owes them until they come back.
   * Throws the exchange's failure, which a failed write leaves to the reader to name.
   */
  async send(bytes: Uint8Array): Promise<void> {
    while (this.#owedBytes > 0 && this.#owedBytes + bytes.length > this.#maxOwed) {
      await this.#whenChanged();
    }
    if (this.#failure) throw this.#failure;
    if (bytes.length === 0) return;
    if (this.#readerDone) throw this.#fail(this.#closedEarly(), "ECHO_CLOSED");
    this.#owed.push(bytes);
    this.#startReading();
    this.#owedBytes += bytes.length;
    this.#sent += bytes.length;
    this.#writes++;
    this.#arm();
    try {
      await writeAll(this.#conn, bytes, () => this.#arm());
    } catch (err) {
      // The server went away: the reader sees how (reset, close, timeout), so only it reports.
      await this.reading;
      throw this.#failure ??
        this.#fail(`${errorReason(err)} after ${this.#progress()}`, "ECHO_FAILED");
    } finally {
      this.#writes--;
      this.#arm();
    }
  }

  /** Resolves once everything sent came back; throws the exchange's failure. */
  async echoed(): Promise<void> {
    while (this.#owedBytes > 0) await this.#whenChanged();
    if (this.#failure) throw this.#failure;
  }

  /** Waits for the reader to make progress; throws once the exchange has failed. */
  async #whenChanged(): Promise<void> {
    if (this.#failure) throw this.#failure;
    if (this.#readerDone) throw this.#fail(this.#closedEarly(), "ECHO_CLOSED");
    await this.#changed.promise;
  }

  /**
   * Once everything sent came back: shuts down the sending side and gives the server a moment to
   * close, failing if it sends anything more.
   */
  async finish(): Promise<void> {
    this.#startReading();
    await this.echoed();
    await this.#conn.closeWrite().catch(() => {});
    this.#lingering = true;
    clearTimeout(this.#timer);
    // Nothing more within the linger time is all that is checked: a server may keep it open.
    this.#timer = setTimeout(() => this.#closeConn(), Math.min(this.#timeoutMs, LINGER_MS));
    await this.reading;
    if (this.#failure) throw this.#failure;
  }

  /** Stops at once: the reader ends, and what is owed stays owed. */
  close(): void {
    clearTimeout(this.#timer);
    this.#closeConn();
    if (this.#reader === undefined) {
      this.#readerDone = true;
      this.#stopped.resolve();
    }
  }

  #closeConn(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  /** Runs the progress timer while something is owed or being written; stops it otherwise. */
  #arm(): void {
    if (this.#lingering || this.#closed) return;
    clearTimeout(this.#timer);
    if (this.#owedBytes === 0 && this.#writes === 0) return;
    this.#timer = setTimeout(() => {
      this.#timedOut = true;
      this.#closeConn();
    }, this.#timeoutMs);
  }

  #notify(): void {
    this.#changed.resolve();
    this.#changed = Promise.withResolvers<void>();
  }

  #fail(message: string, code: EchoErrorCode): EchoError {
    this.#failure ??= new EchoError(message, this.#received, this.#sent, code);
    clearTimeout(this.#timer);
    this.#closeConn();
    this.#notify();
    return this.#failure;
  }

  #closedEarly(): string {
    const note = this.#received === 0 && this.#silentCloseNote ? ` (${this.#silentCloseNote})` : "";
    return `the server closed the connection${note}: ${this.#progress()}`;
  }

  #progress(): string {
    return describeProgress(this.#received - this.#mark, this.#sent - this.#mark);
  }

  async #read(buffer: Uint8Array): Promise<void> {
    try {
      for (;;) {
        let n: number | null;
        try {
          n = await this.#conn.read(buffer);
        } catch (err) {
          if (this.#lingering && this.#owedBytes === 0) return;
          if (this.#timedOut) {
            const waiting = this.#received === this.#mark
              ? "without a reply"
              : "waiting for the rest of the echo";
            this.#fail(
              `timed out after ${this.#timeoutMs / 1000} s ${waiting}: ${this.#progress()}`,
              "ECHO_TIMEOUT",
            );
          } else if (this.#closed) {
            this.#fail(`interrupted: ${this.#progress()}`, "ECHO_FAILED");
          } else {
            this.#fail(
              `${explainCertificateError(errorReason(err))} after ${this.#progress()}`,
              "ECHO_FAILED",
            );
          }
          return;
        }
        if (n === null) {
          if (this.#owedBytes > 0) {
            this.#fail(this.#closedEarly(), "ECHO_CLOSED");
          }
          return;
        }
        const chunk = buffer.subarray(0, n);
        const held = this.#onReceived?.(chunk);
        if (held) {
          clearTimeout(this.#timer);
          await held;
        }
        const problem = this.#check(chunk);
        if (problem) {
          // The first bytes of a connection may be another protocol's: say which.
          const hint = this.#received === 0 ? mixUpHint(chunk) : undefined;
          this.#fail(hint === undefined ? problem : `${problem}: ${hint}`, "ECHO_MISMATCH");
          return;
        }
        this.#received += n;
        this.#arm();
        this.#notify();
      }
    } finally {
      this.#readerDone = true;
      clearTimeout(this.#timer);
      this.#notify();
      this.#stopped.resolve();
    }
  }

  /** Checks `chunk` against what is owed and consumes it; says what is wrong, if anything. */
  #check(chunk: Uint8Array): string | undefined {
    let offset = 0;
    while (offset < chunk.length && this.#owed.length > 0) {
      const owed = this.#owed[0];
      const take = Math.min(owed.length - this.#owedStart, chunk.length - offset);
      const expected = owed.subarray(this.#owedStart, this.#owedStart + take);
      const got = chunk.subarray(offset, offset + take);
      if (Buffer.compare(got, expected) !== 0) {
        // Wrong bytes first: a server that floods garbage is reported as garbage, not as extra.
        return describeMismatch(got, expected, this.#received - this.#mark + offset);
      }
      offset += take;
      this.#owedStart += take;
      this.#owedBytes -= take;
      if (this.#owedStart === owed.length) {
        this.#owed.shift();
        this.#owedStart = 0;
      }
    }
    const extra = chunk.length - offset;
    if (extra > 0) {
      return `the server sent ${extra} more byte${extra === 1 ? "" : "s"} than it was sent`;
    }
    return undefined;
  }
}
