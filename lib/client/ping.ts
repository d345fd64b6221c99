/**
 * Ping over an echo server: one message at a time, each reply timed and checked byte for byte
 * before the next message goes out. As `ping` does, a lost or failed round trip is counted and
 * the run carries on, over a new connection when the old one is gone (as `tcping` does).
 *
 * @module
 */

import { DEFAULT_READ_SIZE, DEFAULT_TIMEOUT_MS, Exchange } from "./_exchange.ts";
import { EchoError, RuntimeError, UsageError } from "../base/errors.ts";
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
  /** Called for every round trip lost or failed, before the run carries on. */
  onFailure?: (failure: PingFailure) => void;
  /**
   * Called when the connection ended between two messages (the next one goes over a new
   * connection), with the message it followed and how it ended.
   */
  onDisconnected?: (afterSeq: number, reason: string) => void;
  /**
   * End the run at the first lost or failed round trip, or connection ended, with `error` set:
   * what ping mode did before it counted losses. Default false: count them and carry on.
   */
  failFast?: boolean;
}

/** A round trip that did not come back whole and unchanged. */
export interface PingFailure {
  /** The message's number. */
  seq: number;
  /** `lost`: no reply within the timeout; `failed`: a wrong reply, or no connection. */
  kind: "lost" | "failed";
  /** What went wrong. */
  error: RuntimeError;
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
  /** Messages whose reply did not come back within the timeout. */
  lost: number;
  /**
   * Messages whose reply came back wrong (changed, cut short, with bytes more), or that could
   * not be sent for want of a connection.
   */
  failed: number;
  /** Milliseconds from the first message sent to the end of the run. */
  elapsedMs: number;
  /** The round-trip times, or undefined when no reply came back. */
  rtt?: RoundTripSummary;
  /**
   * With `failFast`, why the run stopped early; without, bytes the server sent after the last
   * reply.
   */
  error?: EchoError;
}

/** One connection of a ping run, and its exchange. */
interface Session {
  conn: StreamConn;
  exchange: Exchange;
  /** Aborts when the connection ends by itself (reset, close, bytes nobody sent). */
  ended: AbortSignal;
}

/**
 * Connects, then sends `message` up to `count` times, waiting for each reply to come back whole
 * and unchanged before sleeping `interval` milliseconds and sending the next. A reply late by
 * more than `timeout` is lost; one that differs, is cut short or has bytes more has failed; both
 * are counted (see {@linkcode PingFailure}) and the next message goes over a new connection, so
 * that a late reply is never taken for the next one. A connection that ends between messages is
 * replaced too, and one that cannot be replaced fails that message. With `failFast`, the first
 * of these ends the run with `error` set, naming the message. Throws a
 * {@linkcode RuntimeError} only when the first connection cannot be made.
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
 * equal(result.lost + result.failed, 0);
 * ```
 */
export async function ping(options: PingOptions): Promise<PingResult> {
  const { message, signal } = options;
  const count = options.count ?? Infinity;
  const interval = options.interval ?? 1000;
  const timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
  if (message.length === 0) throw new UsageError("cannot ping with an empty message");

  const open = async (): Promise<Session> => {
    const conn = await connect(options);
    if (options.expectGreeting) {
      try {
        options.onGreeting?.(await receiveGreeting(conn, timeout));
      } catch (err) {
        conn.close();
        throw err;
      }
    }
    const exchange = new Exchange(conn, {
      timeout,
      bufferSize: options.bufferSize ?? DEFAULT_READ_SIZE,
    });
    const ended = new AbortController();
    exchange.reading.then(() => ended.abort());
    return { conn, exchange, ended: ended.signal };
  };

  let session: Session | undefined;
  try {
    session = await open();
  } catch (err) {
    if (signal?.aborted) return { sent: 0, received: 0, lost: 0, failed: 0, elapsedMs: 0 };
    throw err;
  }
  options.onConnected?.(session.conn.remoteAddr);

  const stats = new RoundTripStats();
  let sent = 0;
  let received = 0;
  let lost = 0;
  let failed = 0;
  let error: EchoError | undefined;
  const started = performance.now();
  const stop = () => session?.exchange.close();
  signal?.addEventListener("abort", stop);
  const drop = () => {
    session?.exchange.close();
    session = undefined;
  };
  try {
    while (sent < count && !signal?.aborted) {
      if (sent > 0) {
        // Fail-fast: the server sending more, or closing, between messages ends the wait.
        const ended = options.failFast ? session?.ended : undefined;
        await sleep(interval, ended && signal ? AbortSignal.any([signal, ended]) : ended ?? signal);
        if (signal?.aborted) break;
      }
      const failure = session?.exchange.failure;
      if (failure && options.failFast) {
        error = new EchoError(`seq=${sent}: ${failure.message}`, received, undefined, failure.code);
        break;
      }
      if (session?.exchange.stopped && !options.failFast) {
        options.onDisconnected?.(sent, failure?.message ?? "the server closed the connection");
        drop();
      }
      sent++;
      try {
        session ??= await open();
        const { exchange } = session;
        exchange.mark();
        const sentAt = performance.now();
        await exchange.send(message);
        await exchange.echoed();
        const timeMs = performance.now() - sentAt;
        received++;
        stats.add(timeMs);
        options.onReply?.({ seq: sent, bytes: message.length, timeMs });
      } catch (err) {
        if (signal?.aborted) break;
        if (!(err instanceof RuntimeError)) throw err;
        const kind = err instanceof EchoError && err.code === "ECHO_TIMEOUT" ? "lost" : "failed";
        if (kind === "lost") lost++;
        else failed++;
        if (options.failFast) {
          const code = err instanceof EchoError ? err.code : undefined;
          error = new EchoError(`seq=${sent}: ${err.message}`, received, undefined, code);
          break;
        }
        options.onFailure?.({ seq: sent, kind, error: err });
        drop();
      }
    }
    if (!signal?.aborted && !error && session) {
      try {
        await session.exchange.finish();
      } catch (err) {
        if (!(err instanceof EchoError)) throw err;
        // Bytes after the last reply are the server's fault; a connection ended is not.
        if (options.failFast || err.code === "ECHO_MISMATCH") {
          error = new EchoError(`seq=${sent}: ${err.message}`, received, undefined, err.code);
        }
      }
    }
  } finally {
    signal?.removeEventListener("abort", stop);
    drop();
  }
  return {
    sent,
    received,
    lost,
    failed,
    elapsedMs: performance.now() - started,
    rtt: stats.summary(),
    error,
  };
}
