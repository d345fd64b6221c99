/**
 * Typed errors: what went wrong, in words a user can act on, and a {@linkcode ErrorCode} a
 * program can branch on (`err.code === "TLS_HANDSHAKE"`) without reading the words. Every error
 * class of the library is here. Only the CLI entry point prints them and picks the exit code.
 *
 * @module
 */

/**
 * What kind of failure an error is: the value of `code` on every error of the library.
 *
 * - `USAGE`: a mistake in how the command or function was called ({@linkcode UsageError}).
 * - `RUNTIME`: the network, the peer or the system said no ({@linkcode RuntimeError}).
 * - `INTERRUPTED`: the user stopped the work ({@linkcode InterruptedError}).
 * - `UNKNOWN_HOST`: a host name did not resolve ({@linkcode UnknownHostError}).
 * - `TLS_HANDSHAKE`: a TLS handshake failed ({@linkcode TlsHandshakeError}).
 * - `PROXY_HEADER`: a PROXY protocol header was bad, late or missing ({@linkcode ProxyHeaderError}).
 * - `GREETING`: a server's greeting line was followed by bytes nobody sent
 *   ({@linkcode GreetingError}).
 * - `ECHO_MISMATCH`: the echo differs from what was sent, or has more bytes ({@linkcode EchoError}).
 * - `ECHO_CLOSED`: the server closed before the whole echo came back ({@linkcode EchoError}).
 * - `ECHO_TIMEOUT`: the echo stopped coming for the timeout ({@linkcode EchoError}).
 * - `ECHO_FAILED`: the connection failed or was stopped during the exchange ({@linkcode EchoError}).
 * - `ILLEGAL_TRANSITION`: a bug: a connection moved to a state its life does not have
 *   ({@linkcode IllegalTransitionError}).
 */
export type ErrorCode =
  | "USAGE"
  | "RUNTIME"
  | "INTERRUPTED"
  | "UNKNOWN_HOST"
  | "TLS_HANDSHAKE"
  | "PROXY_HEADER"
  | "GREETING"
  | "ECHO_MISMATCH"
  | "ECHO_CLOSED"
  | "ECHO_TIMEOUT"
  | "ECHO_FAILED"
  | "ILLEGAL_TRANSITION";

/** The root of the library's errors: each carries its {@linkcode ErrorCode}. */
export abstract class TcpechoError extends Error {
  /** What kind of failure this is; see {@linkcode ErrorCode}. */
  abstract readonly code: ErrorCode;
}

/**
 * A mistake in how the command was called: unknown flag, bad value. The CLI exits with 2.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { UsageError } from "./errors.ts";
 *
 * equal(new UsageError("unknown flag --nope").code, "USAGE");
 * ```
 */
export class UsageError extends TcpechoError {
  /** Always `UsageError`. */
  override name = "UsageError";
  /** Always `USAGE`. */
  readonly code: ErrorCode = "USAGE";
}

/** A failure while running: the network, the peer or the system said no. The CLI exits with 1. */
export class RuntimeError extends TcpechoError {
  /** Always `RuntimeError`. */
  override name = "RuntimeError";
  /** `RUNTIME`, or the more precise code of a subclass. */
  readonly code: ErrorCode = "RUNTIME";
}

/** The user stopped the work (Ctrl-C) before it could finish. The CLI exits with 130. */
export class InterruptedError extends RuntimeError {
  /** Always `InterruptedError`. */
  override name = "InterruptedError";
  /** Always `INTERRUPTED`. */
  override readonly code: ErrorCode = "INTERRUPTED";
}

/** A host name that does not resolve: `cannot connect to nosuch.invalid port 7: unknown host`. */
export class UnknownHostError extends RuntimeError {
  /** Always `UnknownHostError`. */
  override name = "UnknownHostError";
  /** Always `UNKNOWN_HOST`. */
  override readonly code: ErrorCode = "UNKNOWN_HOST";
}

/**
 * Why a TLS handshake failed, for a server's counters: `timeout` (its deadline passed), `closed`
 * (the client closed or reset the connection first), `certificate` (the client certificate was
 * missing or refused) or `protocol` (anything else).
 */
export type TlsFailure = "timeout" | "closed" | "certificate" | "protocol";

/**
 * A TLS handshake that failed, on either end: `TLS handshake failed: REASON`, with the reason
 * alone in {@linkcode TlsHandshakeError.reason}.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { TlsHandshakeError } from "./errors.ts";
 *
 * const err = new TlsHandshakeError("the client closed the connection");
 * equal(err.message, "TLS handshake failed: the client closed the connection");
 * equal(err.code, "TLS_HANDSHAKE");
 * ```
 */
export class TlsHandshakeError extends RuntimeError {
  /** Always `TlsHandshakeError`. */
  override name = "TlsHandshakeError";
  /** Always `TLS_HANDSHAKE`. */
  override readonly code: ErrorCode = "TLS_HANDSHAKE";
  /** Why it failed, as the message says it after `TLS handshake failed: `. */
  readonly reason: string;
  /** Why it failed, for a server's counters; `protocol` unless the constructor was told. */
  readonly failure: TlsFailure;
  /** True when the client ended the connection without sending one byte of the handshake. */
  readonly beforeFirstByte: boolean;
  /**
   * `reason` says why the handshake failed; `options.context`, when given, comes first in the
   * message, such as `cannot connect to localhost port 7`.
   */
  constructor(
    reason: string,
    options?: ErrorOptions & {
      context?: string;
      failure?: TlsFailure;
      beforeFirstByte?: boolean;
    },
  ) {
    const context = options?.context === undefined ? "" : `${options.context}: `;
    super(`${context}TLS handshake failed: ${reason}`, options);
    this.reason = reason;
    this.failure = options?.failure ?? "protocol";
    this.beforeFirstByte = options?.beforeFirstByte ?? false;
  }
}

/** A received PROXY header is malformed, truncated, late, or of a version not accepted. */
export class ProxyHeaderError extends RuntimeError {
  /** Always `ProxyHeaderError`. */
  override name = "ProxyHeaderError";
  /** Always `PROXY_HEADER`. */
  override readonly code: ErrorCode = "PROXY_HEADER";
  /** True when the connection ended before its first byte, as a TCP health check's does. */
  readonly beforeFirstByte: boolean;
  /** `options.beforeFirstByte` says the connection ended before its first byte. */
  constructor(message: string, options?: ErrorOptions & { beforeFirstByte?: boolean }) {
    super(message, options);
    this.beforeFirstByte = options?.beforeFirstByte ?? false;
  }
}

/** A server's greeting line came with bytes after it, before anything was sent. */
export class GreetingError extends RuntimeError {
  /** Always `GreetingError`. */
  override name = "GreetingError";
  /** Always `GREETING`. */
  override readonly code: ErrorCode = "GREETING";
}

/** The codes an {@linkcode EchoError} carries. */
export type EchoErrorCode = "ECHO_MISMATCH" | "ECHO_CLOSED" | "ECHO_TIMEOUT" | "ECHO_FAILED";

/**
 * The echo did not match what was sent, or did not come back whole; `code` says which way.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { EchoError } from "./errors.ts";
 *
 * const err = new EchoError("byte 3 differs", 2, 5, "ECHO_MISMATCH");
 * equal(err.code, "ECHO_MISMATCH");
 * equal(err.bytesReceived, 2);
 * ```
 */
export class EchoError extends RuntimeError {
  /** Always `EchoError`. */
  override name = "EchoError";
  /** How the echo failed; `ECHO_FAILED` unless told. */
  override readonly code: EchoErrorCode;
  /** Bytes that came back before the failure. */
  readonly bytesReceived: number;
  /** Bytes sent before the failure; undefined where the caller knows better (a whole message). */
  readonly bytesSent?: number;
  /**
   * `message` says what went wrong; `bytesReceived` how far the echo got before it did; `code`
   * what kind of failure it is.
   */
  constructor(
    message: string,
    bytesReceived: number,
    bytesSent?: number,
    code: EchoErrorCode = "ECHO_FAILED",
  ) {
    super(message);
    this.bytesReceived = bytesReceived;
    this.bytesSent = bytesSent;
    this.code = code;
  }
}

/**
 * A step the program itself must never take, such as a connection moving to a state its life
 * does not have: a bug, not a failure of the network or a peer. The CLI reports an internal error
 * (exit 70).
 */
export class IllegalTransitionError extends TcpechoError {
  /** Always `IllegalTransitionError`. */
  override name = "IllegalTransitionError";
  /** Always `ILLEGAL_TRANSITION`. */
  readonly code: ErrorCode = "ILLEGAL_TRANSITION";
}

/** Where a network operation was aimed, to name it in error messages. */
export interface Target {
  /** The host name or address as the user gave it. */
  hostname: string;
  /** The port, when the transport has one. */
  port?: number;
  /** The Deno permission flag that would allow the operation. */
  permission: string;
}

/**
 * The Deno flag that allows network access to `hostname` (and `port`, when not 0): IPv6
 * addresses go in brackets, as `--allow-net` expects.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { netPermission } from "./errors.ts";
 *
 * equal(netPermission("localhost", 10000), "--allow-net=localhost:10000");
 * equal(netPermission("::1", 7), "--allow-net=[::1]:7");
 * equal(netPermission("127.0.0.1", 0), "--allow-net=127.0.0.1");
 * ```
 */
export function netPermission(hostname: string, port?: number): string {
  const host = hostname.includes(":") && !hostname.startsWith("[") ? `[${hostname}]` : hostname;
  return `--allow-net=${host}${port ? `:${port}` : ""}`;
}

function describeTarget(target: Target): string {
  return target.port === undefined ? target.hostname : `${target.hostname} port ${target.port}`;
}

/** node's codes for a name that did not resolve. */
const LOOKUP_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_NONAME", "EAI_FAIL"]);

/**
 * True when `err`, thrown by a listen, connect or send of Deno or `node:net`, says that the host
 * name did not resolve. node gives such errors a lookup code; Deno throws a plain `Error` for
 * them, where every other network failure is one of the `Deno.errors` classes (or a `TypeError`,
 * `RangeError` or `URIError` for a malformed address).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { isLookupFailure } from "./errors.ts";
 *
 * equal(isLookupFailure(Object.assign(new Error("getaddrinfo"), { code: "ENOTFOUND" })), true);
 * equal(isLookupFailure(new Deno.errors.ConnectionRefused("refused")), false);
 * ```
 */
export function isLookupFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as Error & { code?: unknown }).code;
  if (typeof code === "string") return LOOKUP_CODES.has(code);
  return Object.getPrototypeOf(err) === Error.prototype;
}

/**
 * Turns an error thrown by `Deno.listen`, `Deno.connect` or friends into a {@linkcode RuntimeError}
 * whose message says what failed and, where there is one, what to do about it. A host name that
 * does not resolve gives an {@linkcode UnknownHostError}. Errors that are already
 * {@linkcode UsageError} or {@linkcode RuntimeError} pass through unchanged.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { explainNetworkError } from "./errors.ts";
 *
 * const busy = new Deno.errors.AddrInUse("Address already in use (os error 98)");
 * const target = { hostname: "localhost", port: 10000, permission: "--allow-net=localhost:10000" };
 * equal(
 *   explainNetworkError(busy, "listen", target).message,
 *   "cannot listen on localhost port 10000: the address is already in use",
 * );
 * ```
 */
export function explainNetworkError(
  err: unknown,
  action: "listen" | "connect",
  target: Target,
): Error {
  if (err instanceof UsageError || err instanceof RuntimeError) return err;
  const where = describeTarget(target);
  const verb = action === "listen" ? `cannot listen on ${where}` : `cannot connect to ${where}`;
  if (isLookupFailure(err)) return new UnknownHostError(`${verb}: unknown host`, { cause: err });
  if (err instanceof Deno.errors.NotCapable) {
    return new RuntimeError(`${verb}: missing permission, run deno with ${target.permission}`);
  }
  const reason = errorReason(err);
  return new RuntimeError(`${verb}: ${reason}`, { cause: err });
}

/** A short lower-case reason for a failed network or file operation, without the OS error number. */
export function errorReason(err: unknown): string {
  if (err instanceof Deno.errors.AddrInUse) return "the address is already in use";
  if (err instanceof Deno.errors.AddrNotAvailable) {
    return "the address is not available on this machine";
  }
  if (err instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (err instanceof Deno.errors.ConnectionReset) return "connection reset by peer";
  if (err instanceof Deno.errors.ConnectionAborted) return "connection aborted";
  if (err instanceof Deno.errors.BrokenPipe) return "the peer closed the connection";
  if (err instanceof Deno.errors.TimedOut) return "timed out";
  if (err instanceof Deno.errors.PermissionDenied) {
    return "permission denied by the operating system (ports below 1024 need privileges)";
  }
  if (err instanceof Deno.errors.NotFound) return "no such file or directory";
  if (err instanceof Deno.errors.IsADirectory) return "it is a directory, not a file";
  const message = err instanceof Error ? err.message : String(err);
  // Lower-case the first word, unless it is an acronym such as TLS; drop OS error numbers and
  // the documentation links some TLS errors end with.
  return message.replace(/\s*\(os error \d+\)$/, "").replace(/:\s*https?:\/\/\S+$/, "")
    .replace(/^[A-Z](?![A-Z])/, (c) => c.toLowerCase());
}
