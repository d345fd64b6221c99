/**
 * Ping over an echo server: one connection, one message at a time, each reply timed and checked
 * byte for byte before the next message goes out.
 *
 * @module
 */

import { EchoError, writeAll } from "./echo_client.ts";
import { describeMismatch, describeProgress } from "./echo_check.ts";
import { errorReason, UsageError } from "./errors.ts";
import { RoundTripStats, type RoundTripSummary } from "./round_trip_stats.ts";
import { connect, type ConnectOptions, type StreamConn } from "./transport.ts";

/**
 * Where to ping, with what, how often, and for how long. The server is reached as
 * {@linkcode ConnectOptions} say: TCP, TLS or a Unix domain socket.
 */
export interface PingOptions extends Omit<ConnectOptions, "signal"> {
  /** The bytes sent each time. Must not be empty. */
  message: Uint8Array;
  /** How many messages to send. Default `Infinity`: until `signal` aborts. */
  count?: number;
  /** Milliseconds between one reply and the next message. Default 1000. */
  interval?: number;
  /** Give up on a reply after this many milliseconds. Default 10000. */
  timeout?: number;
  /** Bytes read at a time. Default 16. */
  bufferSize?: number;
  /** Stops the run at once (Ctrl-C); the result counts what was done so far. */
  signal?: AbortSignal;
  /** Called once connected, with the server's address. */
  onConnected?: (remote: Deno.Addr) => void;
  /** Called for every reply that came back whole and unchanged. */
  onReply?: (reply: PingReply) => void;
}

/** One verified reply. */
export interface PingReply {
  /** 1 for the first message, 2 for the next, and so on. */
  seq: number;
  /** Bytes that came back. */
  bytes: number;
  /** Milliseconds from sending the first byte to receiving the last. */
  timeMs: number;
}

/** What a ping run did. */
export interface PingResult {
  /** Messages sent (a message whose reply was still awaited when the run stopped counts). */
  sent: number;
  /** Replies that came back whole and unchanged. */
  received: number;
  /** Milliseconds from the first message sent to the end of the run. */
  elapsedMs: number;
  /** The round-trip times, or undefined when no reply came back. */
  rtt?: RoundTripSummary;
  /** Why the run stopped early, if the server misbehaved or went silent. */
  error?: EchoError;
}

/** How long to wait for the server to close after the last reply. */
const LINGER_MS = 1000;

/**
 * Connects once, then sends `message` up to `count` times, waiting for each reply to come back
 * whole and unchanged before sleeping `interval` milliseconds and sending the next. A reply that
 * differs, is cut short, is late by more than `timeout`, or bytes the server sends beyond the
 * last reply end the run with `error` set. Throws a {@linkcode RuntimeError} only when the
 * connection cannot be made.
 *
 * @example Three pings at a server on a free port
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { ping, startEchoServer } from "./mod.ts";
 *
 * await using server = startEchoServer({ hostname: "127.0.0.1", port: 0 });
 * const result = await ping({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   message: new TextEncoder().encode("ping"),
 *   count: 3,
 *   interval: 0,
 * });
 * equal(result.received, 3);
 * equal(result.error, undefined);
 * ```
 */
export async function ping(options: PingOptions): Promise<PingResult> {
  const { message, signal } = options;
  const count = options.count ?? Infinity;
  const interval = options.interval ?? 1000;
  const timeout = options.timeout ?? 10_000;
  if (message.length === 0) throw new UsageError("cannot ping with an empty message");

  let conn: StreamConn;
  try {
    conn = await connect(options);
  } catch (err) {
    if (signal?.aborted) return { sent: 0, received: 0, elapsedMs: 0 };
    throw err;
  }
  options.onConnected?.(conn.remoteAddr);

  const stats = new RoundTripStats();
  const buffer = new Uint8Array(options.bufferSize ?? 16);
  let sent = 0;
  let received = 0;
  let error: EchoError | undefined;
  const started = performance.now();
  const stop = () => conn.close();
  signal?.addEventListener("abort", stop);
  try {
    while (sent < count && !signal?.aborted) {
      if (sent > 0 && !await sleep(interval, signal)) break;
      sent++;
      const sentAt = performance.now();
      const reply = await exchange(conn, message, buffer, timeout, signal);
      if (typeof reply === "string") {
        if (!signal?.aborted) error = new EchoError(`seq=${sent}: ${reply}`, received);
        break;
      }
      const timeMs = performance.now() - sentAt;
      received++;
      stats.add(timeMs);
      options.onReply?.({ seq: sent, bytes: message.length, timeMs });
    }
    if (!error && !signal?.aborted) error = await checkNothingMore(conn, received);
  } finally {
    signal?.removeEventListener("abort", stop);
    try {
      conn.close();
    } catch { /* closed by the signal */ }
  }
  return {
    sent,
    received,
    elapsedMs: performance.now() - started,
    rtt: stats.summary(),
    error,
  };
}

/**
 * Sends `message` and reads exactly as many bytes back, checking each chunk. Returns the reply's
 * size, or why it did not come back whole and unchanged.
 */
async function exchange(
  conn: StreamConn,
  message: Uint8Array,
  buffer: Uint8Array,
  timeout: number,
  signal?: AbortSignal,
): Promise<number | string> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, timeout);
  let got = 0;
  try {
    const sending = writeAll(conn, message);
    // A failed write means the server went away; the reader says how.
    sending.catch(() => {});
    while (got < message.length) {
      // Never read past this reply: anything beyond it belongs to the next check.
      const n = await conn.read(buffer.subarray(0, Math.min(buffer.length, message.length - got)));
      if (n === null) {
        return `the server closed the connection: ${describeProgress(got, message.length)}`;
      }
      const mismatch = describeMismatch(buffer.subarray(0, n), message, got);
      if (mismatch) return mismatch;
      got += n;
    }
    await sending;
    return got;
  } catch (err) {
    if (timedOut) {
      return `timed out after ${timeout / 1000} s: ${describeProgress(got, message.length)}`;
    }
    if (signal?.aborted) return "interrupted";
    return `${errorReason(err)} after ${describeProgress(got, message.length)}`;
  } finally {
    clearTimeout(timer);
  }
}

/** After the last reply: say we are done and check the server closes without sending more. */
async function checkNothingMore(
  conn: StreamConn,
  received: number,
): Promise<EchoError | undefined> {
  await conn.closeWrite().catch(() => {});
  const timer = setTimeout(() => conn.close(), LINGER_MS);
  try {
    const n = await conn.read(new Uint8Array(1));
    if (n !== null) {
      return new EchoError("the server sent more bytes than it was sent", received);
    }
  } catch {
    /* the server did not close in time: nothing more came, which is all we check */
  } finally {
    clearTimeout(timer);
  }
  return undefined;
}

/** Waits `ms` milliseconds; resolves false at once if `signal` aborts first. */
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (finished: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(finished);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener("abort", onAbort);
  });
}
