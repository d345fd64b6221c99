/**
 * Ping over an echo server: one connection, one message at a time, each reply timed and checked
 * byte for byte before the next message goes out.
 *
 * @module
 */

import { DEFAULT_READ_SIZE, DEFAULT_TIMEOUT_MS, Exchange } from "./_exchange.ts";
import { EchoError, UsageError } from "../base/errors.ts";
import { sleep } from "../base/timers.ts";
import { receiveGreeting } from "../server/greeting.ts";
import { RoundTripStats, type RoundTripSummary } from "./round_trip_stats.ts";
import type { StreamConn } from "../net/stream_conn.ts";
import { connect, type ConnectOptions } from "./connect.ts";

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
  /** Read the server's greeting line before the first message, keeping it out of the check. */
  expectGreeting?: boolean;
  /** Called with the greeting line, when `expectGreeting`. */
  onGreeting?: (line: string) => void;
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

/**
 * Connects once, then sends `message` up to `count` times, waiting for each reply to come back
 * whole and unchanged before sleeping `interval` milliseconds and sending the next. A reply that
 * differs, is cut short, is late by more than `timeout`, or bytes the server sends beyond a
 * reply (while the next message waits, or after the last) end the run with `error` set, naming
 * the message they follow. Throws a {@linkcode RuntimeError} only when the
 * connection cannot be made.
 *
 * @example Three pings at a server on a free port
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { ping, startEchoServer } from "../mod.ts";
 *
 * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
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
  const timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
  if (message.length === 0) throw new UsageError("cannot ping with an empty message");

  let conn: StreamConn;
  try {
    conn = await connect(options);
  } catch (err) {
    if (signal?.aborted) return { sent: 0, received: 0, elapsedMs: 0 };
    throw err;
  }
  if (options.expectGreeting) {
    try {
      options.onGreeting?.(await receiveGreeting(conn, timeout));
    } catch (err) {
      conn.close();
      throw err;
    }
  }
  options.onConnected?.(conn.remoteAddr);

  const stats = new RoundTripStats();
  const exchange = new Exchange(conn, {
    timeout,
    bufferSize: options.bufferSize ?? DEFAULT_READ_SIZE,
  });
  let sent = 0;
  let received = 0;
  let error: EchoError | undefined;
  const started = performance.now();
  const stop = () => exchange.close();
  signal?.addEventListener("abort", stop);
  // The server sending more, or closing, between messages ends the wait for the next one.
  const readerStopped = new AbortController();
  exchange.reading.then(() => readerStopped.abort());
  const wake = signal ? AbortSignal.any([signal, readerStopped.signal]) : readerStopped.signal;
  try {
    while (sent < count && !signal?.aborted) {
      if (sent > 0) {
        await sleep(interval, wake);
        if (signal?.aborted) break;
      }
      if (exchange.failure) throw exchange.failure;
      sent++;
      exchange.mark();
      const sentAt = performance.now();
      await exchange.send(message);
      await exchange.echoed();
      const timeMs = performance.now() - sentAt;
      received++;
      stats.add(timeMs);
      options.onReply?.({ seq: sent, bytes: message.length, timeMs });
    }
    if (!signal?.aborted) await exchange.finish();
  } catch (err) {
    if (!(err instanceof EchoError)) throw err;
    if (!signal?.aborted) {
      error = new EchoError(`seq=${sent}: ${err.message}`, received, undefined, err.code);
    }
  } finally {
    signal?.removeEventListener("abort", stop);
    exchange.close();
  }
  return {
    sent,
    received,
    elapsedMs: performance.now() - started,
    rtt: stats.summary(),
    error,
  };
}
