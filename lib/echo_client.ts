/**
 * The echo client: send a message, read the echo back while still sending, and check that every
 * byte came back unchanged.
 *
 * @module
 */

import { describeMismatch, describeProgress } from "./echo_check.ts";
import { errorReason, explainNetworkError, netPermission, RuntimeError } from "./errors.ts";

/** What to send, where, and how patiently. */
export interface SendOptions {
  /** Host name or address of the echo server. Default `localhost`. */
  hostname?: string;
  /** Port of the echo server. Default 10000. */
  port?: number;
  /** The bytes to send. */
  message: Uint8Array;
  /** Bytes read at a time. Default 16. */
  bufferSize?: number;
  /** Give up after this many milliseconds without progress. Default 10000. */
  timeout?: number;
  /** Called once connected, before the first byte is sent. */
  onConnected?: (conn: Deno.Conn) => void;
  /** Called for every read; `chunk` is only valid during the call. */
  onReceived?: (chunk: Uint8Array) => void;
}

/** How long to wait for the server to close once the whole echo came back. */
const LINGER_MS = 1000;

/** The outcome of a verified round trip. */
export interface SendResult {
  /** Bytes sent. */
  bytesSent: number;
  /** Bytes that came back (all of them, and identical, or the call throws). */
  bytesReceived: number;
  /** Milliseconds from the first byte sent to the last byte received. */
  roundTripMs: number;
}

/** The echo did not match what was sent, or did not come back whole. */
export class EchoError extends RuntimeError {
  /** Always `EchoError`. */
  override name = "EchoError";
  /** Bytes that came back before the failure. */
  readonly bytesReceived: number;
  /** `message` says what went wrong; `bytesReceived` how far the echo got before it did. */
  constructor(message: string, bytesReceived: number) {
    super(message);
    this.bytesReceived = bytesReceived;
  }
}

/**
 * Connects, sends `message` while reading the echo (so no size can deadlock on full socket
 * buffers), checks every byte, then shuts down its sending side and waits for the server to
 * close, so that a server which sends more than it was given is caught too.
 *
 * Throws an {@linkcode EchoError} when a byte differs, the server closes early or sends extra
 * bytes, or nothing moves for `timeout` milliseconds; a {@linkcode RuntimeError} when the
 * connection cannot be made.
 *
 * @example Round trip through a server on a free port
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { sendAndVerify, startEchoServer } from "./mod.ts";
 *
 * await using server = startEchoServer({ hostname: "127.0.0.1", port: 0 });
 * const result = await sendAndVerify({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   message: new TextEncoder().encode("hello"),
 * });
 * equal(result.bytesReceived, 5);
 * ```
 */
export async function sendAndVerify(options: SendOptions): Promise<SendResult> {
  const hostname = options.hostname ?? "localhost";
  const port = options.port ?? 10000;
  const { message } = options;
  const timeoutMs = options.timeout ?? 10_000;
  const abort = new AbortController();
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const armTimer = (ms = timeoutMs) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, ms);
  };

  armTimer();
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname, port, signal: abort.signal });
  } catch (err) {
    clearTimeout(timer);
    if (timedOut) {
      throw new RuntimeError(
        `cannot connect to ${hostname} port ${port}: timed out after ${timeoutMs / 1000} s`,
      );
    }
    throw explainNetworkError(err, "connect", {
      hostname,
      port,
      permission: netPermission(hostname, port),
    });
  }

  let received = 0;
  const fail = (text: string) => new EchoError(text, received);
  const onAbort = () => conn.close();
  abort.signal.addEventListener("abort", onAbort);
  try {
    conn.setNoDelay(true);
    options.onConnected?.(conn);
    const started = performance.now();
    let finished = started;
    armTimer();
    const sending = writeAll(conn, message, () => armTimer());
    // A failed write means the server went away; the reader says how, so only it reports.
    sending.catch(() => {});

    const buffer = new Uint8Array(options.bufferSize ?? 16);
    const echoed = async () => {
      finished = performance.now();
      // All came back: say so, and give the server a moment to close or to show it has more to say.
      await conn.closeWrite().catch(() => {});
      armTimer(Math.min(timeoutMs, LINGER_MS));
    };
    if (message.length === 0) await echoed();
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buffer);
      } catch (err) {
        if (timedOut) break;
        throw fail(`${errorReason(err)} after ${describeProgress(received, message.length)}`);
      }
      if (n === null) break;
      if (received < message.length) armTimer();
      const chunk = buffer.subarray(0, n);
      options.onReceived?.(chunk);
      const extra = received + n - message.length;
      // Wrong bytes first: a server that floods garbage is reported as garbage, not as extra.
      const mismatch = describeMismatch(
        chunk.subarray(0, n - Math.max(0, extra)),
        message,
        received,
      );
      if (mismatch) throw fail(mismatch);
      if (extra > 0) {
        throw fail(`the server sent ${extra} more byte${extra === 1 ? "" : "s"} than it was sent`);
      }
      received += n;
      if (received === message.length) await echoed();
    }
    if (timedOut && received < message.length) {
      throw fail(
        `timed out after ${timeoutMs / 1000} s ${
          received === 0 ? "without a reply" : "waiting for the rest of the echo"
        }: ${describeProgress(received, message.length)}`,
      );
    }
    if (received < message.length) {
      throw fail(`the server closed the connection: ${describeProgress(received, message.length)}`);
    }
    return { bytesSent: message.length, bytesReceived: received, roundTripMs: finished - started };
  } finally {
    clearTimeout(timer);
    abort.signal.removeEventListener("abort", onAbort);
    try {
      conn.close();
    } catch { /* closed by the timeout */ }
  }
}

/** Writes all of `bytes` in slices of at most 1 MiB, calling `onProgress` after each. */
export async function writeAll(
  conn: Deno.Conn,
  bytes: Uint8Array,
  onProgress: () => void = () => {},
): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    written += await conn.write(bytes.subarray(written, written + 1024 * 1024));
    onProgress();
  }
}
