/**
 * The echo client: send a message, read the echo back while still sending, and check that every
 * byte came back unchanged.
 *
 * @module
 */

import { describeMismatch, describeProgress } from "./echo_check.ts";
import {
  EchoError,
  errorReason,
  isLookupFailure,
  RuntimeError,
  UnknownHostError,
  UsageError,
} from "../base/errors.ts";
import { DEFAULT_READ_SIZE, DEFAULT_TIMEOUT_MS, Exchange } from "./_exchange.ts";
import { receiveGreeting } from "../server/greeting.ts";
import {
  DEFAULT_PORT,
  describeEndpoint,
  listenDatagram,
  MAX_UDP_PAYLOAD,
  UDP_RECEIVE_BUFFER_SIZE,
} from "../net/transport.ts";
import { type ClientTlsDetails, connect, type ConnectOptions } from "./connect.ts";

/** What to send, where, and how patiently. */
export interface SendOptions extends Omit<ConnectOptions, "signal"> {
  /** Send one UDP datagram and wait for its echo instead of using a stream. */
  udp?: boolean;
  /**
   * The bytes to send, or a stream of them (standard input, a file) sent as they come, in
   * bounded memory: reading waits while {@linkcode STREAM_WINDOW} bytes are owed. A stream's
   * chunks are kept until echoed, so they must not be reused. UDP takes bytes only.
   */
  message: Uint8Array | AsyncIterable<Uint8Array>;
  /** Bytes read at a time. Default 16. */
  bufferSize?: number;
  /** Give up after this many milliseconds without progress. Default 10000. */
  timeout?: number;
  /**
   * Ends a streamed input early (Ctrl-C): what was sent is still awaited and checked, and the
   * result says `interrupted`. A message given as bytes has no input to end: it is given up at
   * once, as with `signal`.
   */
  endInput?: AbortSignal;
  /**
   * Gives up at once: a connection still being made with an `InterruptedError`, an
   * exchange under way with an {@linkcode EchoError}.
   */
  signal?: AbortSignal;
  /**
   * Read the server's greeting line (`serve --greeting`) before sending, and keep it out of the
   * echo check. Streams only.
   */
  expectGreeting?: boolean;
  /** Called with the greeting line, when `expectGreeting`. */
  onGreeting?: (line: string) => void;
  /** Called once connected (for UDP: once the socket is open), before the first byte is sent. */
  onConnected?: () => void;
  /**
   * Called for each piece of the message (all of it when given as bytes) before it is sent. When
   * it returns a promise, a stream is not read further until it settles.
   */
  onSent?: (chunk: Uint8Array) => void | Promise<void>;
  /**
   * Called for every read; `chunk` is only valid during the call. When it returns a promise, the
   * echo is not read further until it settles (a slow output holds the echo back).
   */
  onReceived?: (chunk: Uint8Array) => void | Promise<void>;
}

/** The most bytes of a streamed message sent and not yet echoed: 4 MiB. */
export const STREAM_WINDOW = 4 * 1024 * 1024;

/** The outcome of a verified round trip. */
export interface SendResult {
  /** Bytes sent. */
  bytesSent: number;
  /** Bytes that came back (all of them, and identical, or the call throws). */
  bytesReceived: number;
  /** Milliseconds from the first byte sent to the last byte received. */
  roundTripMs: number;
  /** True when `endInput` ended the input before its end. */
  interrupted: boolean;
  /** Over TLS: how long the handshake took and the ALPN protocol agreed on. */
  tls?: ClientTlsDetails;
}

/**
 * Connects, sends `message` while reading the echo (so no size can deadlock on full socket
 * buffers), checks every byte, then shuts down its sending side and waits for the server to
 * close, so that a server which sends more than it was given is caught too.
 *
 * The transport options pick TCP (the default, IPv4 or IPv6), TLS (`tls`), a Unix domain socket
 * (`unix`) or UDP (`udp`: the message goes as one datagram, and the one that comes back must equal
 * it; run with `--unstable-net`).
 *
 * Throws an {@linkcode EchoError} when a byte differs, the server closes early or sends extra
 * bytes, or nothing moves for `timeout` milliseconds; a {@linkcode RuntimeError} when the
 * connection cannot be made.
 *
 * @example Round trip through a server on a free port
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { sendAndVerify, startEchoServer } from "../mod.ts";
 *
 * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
 * const result = await sendAndVerify({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   message: new TextEncoder().encode("hello"),
 * });
 * equal(result.bytesReceived, 5);
 * ```
 *
 * @example A stream, checked as it goes without keeping it all
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { sendAndVerify, startEchoServer } from "../mod.ts";
 *
 * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0, bufferSize: 65536 });
 * async function* megabytes(count: number) {
 *   for (let i = 0; i < count; i++) yield new Uint8Array(1024 * 1024).fill(i);
 * }
 * const result = await sendAndVerify({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   message: megabytes(16),
 *   bufferSize: 65536,
 * });
 * equal(result.bytesReceived, 16 * 1024 * 1024);
 * ```
 */
export async function sendAndVerify(options: SendOptions): Promise<SendResult> {
  if (options.udp) return await sendDatagramAndVerify(options);
  const { message } = options;
  const timeoutMs = options.timeout ?? DEFAULT_TIMEOUT_MS;
  // Either signal stops a connection still being made; a timeout too.
  const stops = [options.signal, options.endInput].filter((s) => s !== undefined);
  const interrupted = () => stops.some((s) => s.aborted);
  const giveUp = new AbortController();
  const timer = setTimeout(() => giveUp.abort(), timeoutMs);
  const interrupt = () => giveUp.abort();
  for (const stop of stops) stop.addEventListener("abort", interrupt, { once: true });
  let conn;
  try {
    conn = await connect({ ...options, signal: giveUp.signal });
  } catch (err) {
    if (giveUp.signal.aborted && !interrupted()) {
      throw new RuntimeError(
        `cannot connect to ${describeEndpoint(options)}: timed out after ${timeoutMs / 1000} s`,
      );
    }
    throw err;
  } finally {
    clearTimeout(timer);
    for (const stop of stops) stop.removeEventListener("abort", interrupt);
  }

  const exchange = new Exchange(conn, {
    timeout: timeoutMs,
    bufferSize: options.bufferSize ?? DEFAULT_READ_SIZE,
    maxOwed: STREAM_WINDOW,
    onReceived: options.onReceived,
    // Over TLS 1.3 the server judges a client certificate after the handshake, so a refusal
    // looks like a server that hangs up before echoing anything.
    silentCloseNote: typeof options.tls === "object" && options.tls.cert
      ? "right after the TLS handshake: did it refuse the client certificate?"
      : undefined,
  });
  const abort = () => exchange.close();
  const giveUpNow = message instanceof Uint8Array ? stops : [options.signal].filter((s) => !!s);
  for (const stop of giveUpNow) stop?.addEventListener("abort", abort, { once: true });
  try {
    if (options.expectGreeting) {
      options.onGreeting?.(await receiveGreeting(conn, timeoutMs));
    }
    options.onConnected?.();
    const started = performance.now();
    let endedEarly = false;
    if (message instanceof Uint8Array) {
      options.onSent?.(message);
      await exchange.send(message);
    } else {
      endedEarly = await sendStream(exchange, message, options.endInput, options.onSent);
    }
    await exchange.echoed();
    const finished = performance.now();
    await exchange.finish();
    return {
      bytesSent: exchange.sent,
      bytesReceived: exchange.received,
      roundTripMs: finished - started,
      interrupted: endedEarly,
      ...(conn.tls ? { tls: conn.tls } : {}),
    };
  } finally {
    for (const stop of giveUpNow) stop?.removeEventListener("abort", abort);
    exchange.close();
  }
}

/** Sends `input` until its end or `signal`; returns whether `signal` cut it short. */
async function sendStream(
  exchange: Exchange,
  input: AsyncIterable<Uint8Array>,
  signal?: AbortSignal,
  onSent?: (chunk: Uint8Array) => void | Promise<void>,
): Promise<boolean> {
  const chunks = input[Symbol.asyncIterator]();
  // A read of the input may wait forever (a terminal): a signal or the reader stopping ends the
  // wait. One callback, replaced at every read: racing long-lived promises would keep every
  // chunk alive until they settle.
  let wake: ((stop: true) => void) | undefined;
  const stop = () => wake?.(true);
  signal?.addEventListener("abort", stop);
  exchange.reading.then(stop);
  try {
    while (!signal?.aborted) {
      const next = await new Promise<IteratorResult<Uint8Array> | true>((resolve, reject) => {
        wake = resolve;
        chunks.next().then(resolve, reject);
      });
      wake = undefined;
      if (next === true || next.done) break;
      await onSent?.(next.value);
      await exchange.send(next.value);
    }
  } finally {
    wake = undefined;
    signal?.removeEventListener("abort", stop);
    // A read still pending on the input is left behind: it ends with the process.
    chunks.return?.().catch(() => {});
  }
  if (exchange.failure) throw exchange.failure;
  if (signal?.aborted) return true;
  if (exchange.stopped) {
    throw new EchoError(
      "the server closed the connection before the end of the input: " +
        describeProgress(exchange.received, exchange.sent),
      exchange.received,
      exchange.sent,
      "ECHO_CLOSED",
    );
  }
  return false;
}

/**
 * Sends `message` as one UDP datagram and waits for one datagram back from the server's port:
 * RFC 862 echoes each datagram whole, so the reply must equal the message exactly.
 */
async function sendDatagramAndVerify(options: SendOptions): Promise<SendResult> {
  const { message } = options;
  if (!(message instanceof Uint8Array)) {
    throw new UsageError("a UDP datagram is sent whole: give the message as bytes, not a stream");
  }
  if (message.length > MAX_UDP_PAYLOAD) {
    throw new UsageError(
      `a UDP datagram holds at most ${MAX_UDP_PAYLOAD} bytes, the message has ${message.length}`,
    );
  }
  const hostname = options.hostname ?? "localhost";
  const port = options.port ?? DEFAULT_PORT;
  const timeoutMs = options.timeout ?? DEFAULT_TIMEOUT_MS;
  const socket = listenDatagram({ hostname: localAddressFor(hostname), port: 0 });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    socket.close();
  }, timeoutMs);
  try {
    options.onConnected?.();
    options.onSent?.(message);
    const started = performance.now();
    try {
      await socket.send(message, { transport: "udp", hostname, port });
    } catch (err) {
      const where = `cannot send to ${hostname} port ${port}`;
      if (isLookupFailure(err)) {
        throw new UnknownHostError(`${where}: unknown host`, { cause: err });
      }
      throw new RuntimeError(`${where}: ${errorReason(err)}`);
    }
    const buffer = new Uint8Array(UDP_RECEIVE_BUFFER_SIZE);
    let echo: Uint8Array;
    try {
      echo = await receiveFrom(socket, port, buffer);
    } catch (err) {
      if (!timedOut) throw new EchoError(errorReason(err), 0);
      // Deno's UDP sockets are never connected, so the kernel keeps the ICMP "port unreachable"
      // of a closed port to itself: silence is all there is to go by.
      throw new EchoError(
        `timed out after ${timeoutMs / 1000} s without a reply: nothing listens on ${hostname} ` +
          `port ${port}, or the ${message.length}-byte datagram or its echo was lost`,
        0,
        undefined,
        "ECHO_TIMEOUT",
      );
    }
    const finished = performance.now();
    if (options.onReceived) {
      const chunkSize = options.bufferSize ?? DEFAULT_READ_SIZE;
      let offset = 0;
      do {
        options.onReceived(echo.subarray(offset, offset + chunkSize));
        offset += chunkSize;
      } while (offset < echo.length);
    }
    const mismatch = describeMismatch(echo.subarray(0, message.length), message, 0);
    if (mismatch) throw new EchoError(mismatch, echo.length, undefined, "ECHO_MISMATCH");
    if (echo.length !== message.length) {
      throw new EchoError(
        `the echo has ${echo.length} bytes, the datagram had ${message.length}`,
        echo.length,
        undefined,
        "ECHO_MISMATCH",
      );
    }
    return {
      bytesSent: message.length,
      bytesReceived: echo.length,
      roundTripMs: finished - started,
      interrupted: false,
    };
  } finally {
    clearTimeout(timer);
    try {
      socket.close();
    } catch { /* closed by the timeout */ }
  }
}

/** The next datagram from `port`; anything from another port is not the echo and is dropped. */
async function receiveFrom(
  socket: Deno.DatagramConn,
  port: number,
  buffer: Uint8Array,
): Promise<Uint8Array> {
  for (;;) {
    const [data, from] = await socket.receive(buffer);
    if ((from as Deno.NetAddr).port === port) return data;
  }
}

/** The local address to send from: loopback for a loopback server, any address otherwise. */
export function localAddressFor(hostname: string): string {
  const ipv6 = hostname.includes(":");
  if (hostname === "localhost" || hostname === "::1" || hostname.startsWith("127.")) {
    return ipv6 ? "::1" : "127.0.0.1";
  }
  return ipv6 ? "::" : "0.0.0.0";
}
