/**
 * The test pattern that echo checks send: byte `i` of the stream is `(i * 131 + 7) % 251`. Its
 * period of 251 (a prime, not 256) means a dropped, repeated or shifted byte never lines up again.
 *
 * @module
 */

/** The pattern's period in bytes. */
export const PATTERN_PERIOD = 251;

/**
 * `length` bytes of the pattern, starting at stream offset `offset`.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { pattern } from "./pattern.ts";
 *
 * deepEqual([...pattern(3)], [7, 138, 18]);
 * deepEqual([...pattern(2, 1)], [138, 18]);
 * ```
 */
export function pattern(length: number, offset = 0): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = ((offset + i) * 131 + 7) % PATTERN_PERIOD;
  return bytes;
}
