/**
 * A latency histogram with log-linear buckets: exact to the microsecond below 128 µs, then 64
 * buckets per power of two (under 1.6 % error), in a fixed 16 KiB whatever the number of samples.
 *
 * @module
 */

/** Values below this are counted one microsecond per bucket. */
const LINEAR = 128;
/** Buckets per power of two above {@linkcode LINEAR}. */
const PER_OCTAVE = 64;
/** The largest power of two with its own buckets: 2^36 µs is about 19 hours. */
const MAX_EXPONENT = 36;
const BUCKETS = LINEAR + (MAX_EXPONENT - 7 + 1) * PER_OCTAVE;

/** The percentiles every report shows, in microseconds. */
export interface LatencySummary {
  /** Samples recorded. */
  count: number;
  /** The smallest sample. */
  min: number;
  /** The mean of all samples. */
  mean: number;
  /** The median. */
  p50: number;
  /** 90 % of the samples are at most this. */
  p90: number;
  /** 99 % of the samples are at most this. */
  p99: number;
  /** 99.9 % of the samples are at most this. */
  p99_9: number;
  /** The largest sample, exact. */
  max: number;
}

/**
 * Counts round-trip times in whole microseconds. Percentiles are exact below 128 µs and within
 * 1.6 % above; `min` and `max` are always exact.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { LatencyHistogram } from "./histogram.ts";
 *
 * const histogram = new LatencyHistogram();
 * for (let us = 1; us <= 100; us++) histogram.record(us);
 * equal(histogram.percentile(50), 50);
 * equal(histogram.summary().max, 100);
 * ```
 */
export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #sum = 0;
  #min = Infinity;
  #max = 0;

  /** Adds one sample of `micros` microseconds (fractions are dropped, negatives count as 0). */
  record(micros: number): void {
    const value = micros > 0 ? Math.floor(micros) : 0;
    this.#counts[bucketOf(value)]++;
    this.#count++;
    this.#sum += value;
    if (value < this.#min) this.#min = value;
    if (value > this.#max) this.#max = value;
  }

  /** Samples recorded so far. */
  get count(): number {
    return this.#count;
  }

  /**
   * The smallest value that at least `percent` % of the samples do not exceed (the upper edge of
   * its bucket, never above the largest sample); 0 when empty.
   */
  percentile(percent: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil((percent / 100) * this.#count));
    let seen = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      seen += this.#counts[bucket];
      if (seen >= rank) {
        // The last bucket also holds everything beyond it: only max is known there.
        return bucket === BUCKETS - 1 ? this.#max : Math.min(upperEdge(bucket), this.#max);
      }
    }
    return this.#max;
  }

  /** Count, min, mean, p50, p90, p99, p99.9 and max, in microseconds. */
  summary(): LatencySummary {
    const empty = this.#count === 0;
    return {
      count: this.#count,
      min: empty ? 0 : this.#min,
      mean: empty ? 0 : this.#sum / this.#count,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      p99_9: this.percentile(99.9),
      max: this.#max,
    };
  }

  /**
   * Bucket counts merged into `rows` ranges of equal width on a log scale, for a small chart:
   * each row's upper edge in microseconds and how many samples fell in it. Empty when no samples.
   */
  distribution(rows: number): { upTo: number; count: number }[] {
    if (this.#count === 0) return [];
    const low = Math.max(1, this.#min);
    const ratio = (Math.max(this.#max, low + 1) / low) ** (1 / rows);
    const result = Array.from(
      { length: rows },
      (_, row) => ({ upTo: Math.ceil(low * ratio ** (row + 1)), count: 0 }),
    );
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      const count = this.#counts[bucket];
      if (count === 0) continue;
      const edge = Math.min(upperEdge(bucket), this.#max);
      const row = result.findIndex((r) => edge <= r.upTo);
      result[row === -1 ? rows - 1 : row].count += count;
    }
    return result;
  }
}

function bucketOf(value: number): number {
  if (value < LINEAR) return value;
  const exponent = Math.min(Math.floor(Math.log2(value)), MAX_EXPONENT);
  const shift = exponent - 6;
  const step = Math.min(Math.floor(value / 2 ** shift), 2 * PER_OCTAVE - 1);
  return LINEAR + (exponent - 7) * PER_OCTAVE + (step - PER_OCTAVE);
}

/** The largest value that falls in `bucket`. */
function upperEdge(bucket: number): number {
  if (bucket < LINEAR) return bucket;
  const offset = bucket - LINEAR;
  const shift = Math.floor(offset / PER_OCTAVE) + 1;
  const step = PER_OCTAVE + (offset % PER_OCTAVE);
  return (step + 1) * 2 ** shift - 1;
}
