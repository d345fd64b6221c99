/**
 * Writing a whole buffer to a connection whose `write` may take only part of it.
 *
 * @module
 */

/** Anything with a `write` like `Deno.Conn`'s: it may take fewer bytes than it was given. */
export interface Writer {
  /** Writes some of `bytes` and resolves with how many it took. */
  write(bytes: Uint8Array): Promise<number>;
}

/** The most one write hands the socket, so that progress is seen at least this often. */
const WRITE_SLICE = 1024 * 1024;

/**
 * Writes all of `bytes` from offset `from` on, in writes of at most 1 MiB, calling `onWrite`
 * with the count each write took.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { writeAll } from "./io.ts";
 *
 * const taken: number[] = [];
 * const twoAtATime = { write: (bytes: Uint8Array) => Promise.resolve(Math.min(2, bytes.length)) };
 * await writeAll(twoAtATime, new Uint8Array(5), (n) => taken.push(n));
 * equal(taken.join(), "2,2,1");
 * ```
 */
export async function writeAll(
  conn: Writer,
  bytes: Uint8Array,
  onWrite?: (written: number) => void,
  from = 0,
): Promise<void> {
  for (let written = from; written < bytes.length;) {
    const n = await conn.write(bytes.subarray(written, written + WRITE_SLICE));
    written += n;
    onWrite?.(n);
  }
}
