/**
 * The echo client: send a message, read the echo back while still sending, and check that every
 * byte came back unchanged.
 *
 * @module
 */

import { describeMismatch, describeProgress } from "./echo_check.ts";
import { explainCertificateError } from "./certificates.ts";
import { errorReason, RuntimeError, UsageError } from "./errors.ts";
import {
  type ClientConn,
  type ClientTlsDetails,
  connect,
  type ConnectOptions,
  DEFAULT_PORT,
  describeEndpoint,
  listenDatagram,
  type StreamConn,
} from "./transport.ts";

/** What to send, where, and how patiently. */
export interface SendOptions extends Omit<ConnectOptions, "signal"> {
  /** Send one UDP datagram and wait for its echo instead of using a stream. */
  udp?: boolean;
  /** The bytes to send. */
  message: Uint8Array;
  /** Bytes read at a time. Default 16. */
  bufferSize?: number;
  /** Give up after this many milliseconds without progress. Default 10000. */
  timeout?: number;
  /** Called once connected (for UDP: once the socket is open), before the first byte is sent. */
  onConnected?: () => void;
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
  /** Over TLS: how long the handshake took and the ALPN protocol agreed on. */
  tls?: ClientTlsDetails;
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
  if (options.udp) return await sendDatagramAndVerify(options);
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
  let conn: ClientConn;
  try {
    conn = await connect({ ...options, signal: abort.signal });
  } catch (err) {
    clearTimeout(timer);
    if (timedOut) {
      throw new RuntimeError(
        `cannot connect to ${describeEndpoint(options)}: timed out after ${timeoutMs / 1000} s`,
      );
    }
    throw err;
  }

  let received = 0;
  const fail = (text: string) => new EchoError(text, received);
  const onAbort = () => conn.close();
  abort.signal.addEventListener("abort", onAbort);
  try {
    options.onConnected?.();
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
        throw fail(
          `${explainCertificateError(errorReason(err))} after ${
            describeProgress(received, message.length)
          }`,
        );
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
      // Over TLS 1.3 the server judges a client certificate after the handshake, so a refusal
      // looks like a server that hangs up before echoing anything.
      const refused = received === 0 && typeof options.tls === "object" && options.tls.cert
        ? " (right after the TLS handshake: did it refuse the client certificate?)"
        : "";
      throw fail(
        `the server closed the connection${refused}: ${describeProgress(received, message.length)}`,
      );
    }
    return {
      bytesSent: message.length,
      bytesReceived: received,
      roundTripMs: finished - started,
      ...(conn.tls ? { tls: conn.tls } : {}),
    };
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
  conn: StreamConn,
  bytes: Uint8Array,
  onProgress: () => void = () => {},
): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    written += await conn.write(bytes.subarray(written, written + 1024 * 1024));
    onProgress();
  }
}

/**
 * The largest UDP payload that fits one IPv4 datagram: the most {@linkcode sendAndVerify} sends
 * with `udp: true`.
 *
 * @example
 * ```ts
 * import { rejects } from "node:assert/strict";
 * import { MAX_DATAGRAM, sendAndVerify, UsageError } from "./mod.ts";
 *
 * await rejects(
 *   sendAndVerify({ udp: true, port: 9, message: new Uint8Array(MAX_DATAGRAM + 1) }),
 *   UsageError,
 * );
 * ```
 */
export const MAX_DATAGRAM = 65_507;

/**
 * Sends `message` as one UDP datagram and waits for one datagram back from the server's port:
 * RFC 862 echoes each datagram whole, so the reply must equal the message exactly.
 */
async function sendDatagramAndVerify(options: SendOptions): Promise<SendResult> {
  const { message } = options;
  if (message.length > MAX_DATAGRAM) {
    throw new UsageError(
      `a UDP datagram holds at most ${MAX_DATAGRAM} bytes, the message has ${message.length}`,
    );
  }
  const hostname = options.hostname ?? "localhost";
  const port = options.port ?? DEFAULT_PORT;
  const timeoutMs = options.timeout ?? 10_000;
  const socket = listenDatagram({ hostname: localAddressFor(hostname), port: 0 });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    socket.close();
  }, timeoutMs);
  try {
    options.onConnected?.();
    const started = performance.now();
    try {
      await socket.send(message, { transport: "udp", hostname, port });
    } catch (err) {
      throw new RuntimeError(`cannot send to ${hostname} port ${port}: ${errorReason(err)}`);
    }
    const buffer = new Uint8Array(MAX_DATAGRAM + 1);
    let echo: Uint8Array;
    try {
      echo = await receiveFrom(socket, port, buffer);
    } catch (err) {
      if (!timedOut) throw new EchoError(errorReason(err), 0);
      throw new EchoError(
        `timed out after ${timeoutMs / 1000} s without a reply: the ${message.length}-byte ` +
          "datagram or its echo was lost",
        0,
      );
    }
    const finished = performance.now();
    if (options.onReceived) {
      const chunkSize = options.bufferSize ?? 16;
      let offset = 0;
      do {
        options.onReceived(echo.subarray(offset, offset + chunkSize));
        offset += chunkSize;
      } while (offset < echo.length);
    }
    const mismatch = describeMismatch(echo.subarray(0, message.length), message, 0);
    if (mismatch) throw new EchoError(mismatch, echo.length);
    if (echo.length !== message.length) {
      throw new EchoError(
        `the echo has ${echo.length} bytes, the datagram had ${message.length}`,
        echo.length,
      );
    }
    return {
      bytesSent: message.length,
      bytesReceived: echo.length,
      roundTripMs: finished - started,
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
function localAddressFor(hostname: string): string {
  const ipv6 = hostname.includes(":");
  if (hostname === "localhost" || hostname === "::1" || hostname.startsWith("127.")) {
    return ipv6 ? "::1" : "127.0.0.1";
  }
  return ipv6 ? "::" : "0.0.0.0";
}
