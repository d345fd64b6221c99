/**
 * Writing to standard output and standard error so that a failed write is never lost: a reader
 * that went away (a closed pipe) stops the command quietly, as `cat` stops; any other failure
 * (a full disk, `> /dev/full`) is an error.
 *
 * @module
 */

import { errorReason, RuntimeError } from "../lib/base/errors.ts";

/**
 * Output could not be written. When `closed` (the reader went away: a broken pipe), the command
 * ends with exit code 1 and says nothing, since no one reads what it would say.
 */
export class OutputError extends RuntimeError {
  /** Always `OutputError`. */
  override name = "OutputError";
  /** True when the reader closed the output (EPIPE). */
  readonly closed: boolean;
  /** Wraps `cause`, the error of a write to the output called `output`. */
  constructor(cause: unknown, output = "standard output") {
    const closed = cause instanceof Deno.errors.BrokenPipe;
    super(
      closed
        ? `${output} was closed by its reader`
        : `cannot write to ${output}: ${errorReason(cause)}`,
    );
    this.closed = closed;
  }
}

const encoder = new TextEncoder();

/**
 * Writes `text` and a newline to standard output, all of it, or throws an
 * {@linkcode OutputError}.
 *
 * @example
 * ```ts
 * import { printLine } from "./output.ts";
 *
 * printLine("hello");
 * ```
 */
export function printLine(text: string): void {
  const bytes = encoder.encode(`${text}\n`);
  try {
    let written = 0;
    while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
  } catch (err) {
    throw new OutputError(err);
  }
}
