/**
 * Checking an echo as it comes back: where it first differs from what was sent, said in words.
 *
 * @module
 */

/**
 * Compares `chunk`, which came back at offset `at` of the echo, with `expected`, the bytes sent
 * there. Returns undefined when they match, otherwise why not, naming the first differing byte.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { describeMismatch } from "./echo_check.ts";
 *
 * const sent = new TextEncoder().encode("hello");
 * equal(describeMismatch(new TextEncoder().encode("llo"), sent.subarray(2), 2), undefined);
 * equal(
 *   describeMismatch(new TextEncoder().encode("lx"), sent.subarray(2), 2),
 *   "the echo differs from what was sent at byte 3 (sent 0x6c, got 0x78)",
 * );
 * ```
 */
export function describeMismatch(
  chunk: Uint8Array,
  expected: Uint8Array,
  at: number,
): string | undefined {
  for (let i = 0; i < chunk.length; i++) {
    if (chunk[i] !== expected[i]) {
      return `the echo differs from what was sent at byte ${at + i} (sent ${
        hex(expected[i])
      }, got ${hex(chunk[i])})`;
    }
  }
  return undefined;
}

/** `received of expected bytes came back`, for messages about an echo cut short. */
export function describeProgress(received: number, expected: number): string {
  return `${received} of ${expected} bytes came back`;
}

function hex(byte: number): string {
  return "0x" + byte.toString(16).padStart(2, "0");
}
