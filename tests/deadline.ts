/**
 * Deadlines for what tests wait on (a line, a connection, a process, a byte count): a wait that
 * runs out fails naming what it waited for and what it had seen so far, so that a regression is a
 * red test with a reason instead of a run that hangs.
 *
 * @module
 */

import { formatBytesLiteral } from "../lib/base/bytes_literal.ts";

/**
 * How long one wait lasts by default: ten times what the slowest wait of the suite takes on a
 * busy two-core machine, and well inside the per-test deadline of `backstop.ts`.
 */
export const WAIT_MS = 10_000;

/** A wait that ran out: its message names what was awaited and what had been seen. */
export class DeadlineError extends Error {
  override name = "DeadlineError";
}

/** How one wait ends when its deadline passes. */
export interface WaitOptions {
  /** Milliseconds before the wait fails; default {@linkcode WAIT_MS}. */
  ms?: number;
  /** What had been seen so far (output, bytes), for the error message; asked only on failure. */
  seen?: () => string;
  /** Runs when the deadline passes, before the wait fails: kill the process, close the socket. */
  onTimeout?: () => void | Promise<void>;
}

const EXPIRED = Symbol("expired");

/**
 * Resolves like `waiting`, or rejects with a {@linkcode DeadlineError} saying
 * `timed out after S s waiting for WHAT` (and what was seen) once `options.ms` pass.
 *
 * A test may start a wait and await it later (see {@linkcode awaitedLater}).
 */
export function within<T>(
  what: string,
  waiting: Promise<T>,
  options: WaitOptions = {},
): Promise<T> {
  return awaitedLater(race(what, waiting, options));
}

/**
 * Marks a wait that a test may start now and await later (read the echo while writing): if its
 * deadline passes in between, the test fails where it awaits, not with an unhandled rejection.
 */
export function awaitedLater<T>(waiting: Promise<T>): Promise<T> {
  waiting.catch(() => {});
  return waiting;
}

async function race<T>(what: string, waiting: Promise<T>, options: WaitOptions): Promise<T> {
  const ms = options.ms ?? WAIT_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<typeof EXPIRED>((resolve) => {
    timer = setTimeout(() => resolve(EXPIRED), ms);
  });
  try {
    const result = await Promise.race([waiting, expired]);
    if (result !== EXPIRED) return result as T;
  } finally {
    clearTimeout(timer);
  }
  // The wait lost the race: its promise may still reject later, which must not go unhandled.
  waiting.catch(() => {});
  await options.onTimeout?.();
  const seen = options.seen?.();
  throw new DeadlineError(
    `timed out after ${ms / 1000} s waiting for ${what}` +
      (seen === undefined ? "" : `; seen so far:\n${seen === "" ? "(nothing)" : seen}`),
  );
}

/** Bytes as a Python-style literal for an error message, the middle cut out when long. */
export function previewBytes(bytes: Uint8Array, keep = 120): string {
  const count = `${bytes.length} byte${bytes.length === 1 ? "" : "s"}`;
  if (bytes.length <= 2 * keep) return `${count}: ${formatBytesLiteral(bytes)}`;
  return `${count}: ${formatBytesLiteral(bytes.subarray(0, keep))} ... ` +
    formatBytesLiteral(bytes.subarray(bytes.length - keep));
}
