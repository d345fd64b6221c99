/**
 * Typed errors: what went wrong, in words a user can act on. Only the CLI entry point prints them
 * and picks the exit code.
 *
 * @module
 */

/** A mistake in how the command was called: unknown flag, bad value. The CLI exits with 2. */
export class UsageError extends Error {
  /** Always `UsageError`. */
  override name = "UsageError";
}

/** A failure while running: the network, the peer or the system said no. The CLI exits with 1. */
export class RuntimeError extends Error {
  /** Always `RuntimeError`. */
  override name = "RuntimeError";
}

/** The user stopped the work (Ctrl-C) before it could finish. The CLI exits with 130. */
export class InterruptedError extends RuntimeError {
  /** Always `InterruptedError`. */
  override name = "InterruptedError";
}

/**
 * A step the program itself must never take, such as a connection moving to a state its life
 * does not have: a bug, not a failure of the network or a peer. The CLI reports an internal error
 * (exit 70).
 */
export class IllegalTransitionError extends Error {
  /** Always `IllegalTransitionError`. */
  override name = "IllegalTransitionError";
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

/**
 * Turns an error thrown by `Deno.listen`, `Deno.connect` or friends into a {@linkcode RuntimeError}
 * whose message says what failed and, where there is one, what to do about it. Errors that are
 * already {@linkcode UsageError} or {@linkcode RuntimeError} pass through unchanged.
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
  if (message.includes("failed to lookup address")) return "unknown host";
  // Lower-case the first word, unless it is an acronym such as TLS; drop OS error numbers and
  // the documentation links some TLS errors end with.
  return message.replace(/\s*\(os error \d+\)$/, "").replace(/:\s*https?:\/\/\S+$/, "")
    .replace(/^[A-Z](?![A-Z])/, (c) => c.toLowerCase());
}
