/**
 * Round-trip times summed up the way `ping` does: minimum, average, maximum and mean deviation.
 *
 * @module
 */

/** The spread of a set of round-trip times, in milliseconds. */
export interface RoundTripSummary {
  /** The fastest round trip. */
  minMs: number;
  /** The mean. */
  avgMs: number;
  /** The slowest round trip. */
  maxMs: number;
  /** The standard deviation, which `ping` calls mdev. */
  mdevMs: number;
}

/**
 * Collects round-trip times one at a time, in constant memory.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { RoundTripStats } from "./round_trip_stats.ts";
 *
 * const stats = new RoundTripStats();
 * for (const ms of [1, 3, 2, 2]) stats.add(ms);
 * deepEqual(stats.summary(), { minMs: 1, avgMs: 2, maxMs: 3, mdevMs: Math.SQRT1_2 });
 * ```
 */
export class RoundTripStats {
  #count = 0;
  #sum = 0;
  #sumOfSquares = 0;
  #min = Infinity;
  #max = -Infinity;

  /** Adds one round trip of `ms` milliseconds. */
  add(ms: number): void {
    this.#count++;
    this.#sum += ms;
    this.#sumOfSquares += ms * ms;
    this.#min = Math.min(this.#min, ms);
    this.#max = Math.max(this.#max, ms);
  }

  /** The summary so far, or undefined before the first round trip. */
  summary(): RoundTripSummary | undefined {
    if (this.#count === 0) return undefined;
    const avgMs = this.#sum / this.#count;
    // Rounding can push the variance of equal samples a hair below zero.
    const variance = Math.max(0, this.#sumOfSquares / this.#count - avgMs * avgMs);
    return { minMs: this.#min, avgMs, maxMs: this.#max, mdevMs: Math.sqrt(variance) };
  }
}
