/**
 * Latency histograms as the field expects them: HdrHistogram (`hdr-histogram-js`) with three
 * significant digits, so every percentile is within 0.1 % of the true value, from a microsecond
 * to weeks, in memory that grows with the range of the samples, not their number.
 *
 * @module
 */

import {
  Float64Histogram,
  type Histogram,
  HistogramLogReader,
  HistogramLogWriter,
} from "../_deps/hdr_histogram.ts";

/** Significant decimal digits kept: every value is within 0.1 % of the one recorded. */
const SIGNIFICANT_DIGITS = 3;
/** The largest sample kept, about 51 days in microseconds; larger ones count as this. */
const MAX_MICROS = 2 ** 42;

/** The percentiles every report shows, in microseconds. */
export interface LatencySummary {
  /** Samples recorded. */
  count: number;
  /** The smallest sample, exact. */
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

/** One tagged interval of an HdrHistogram interval log. */
export interface HistogramInterval {
  /** What the histogram measures, such as `latency` or `service`. */
  tag: string;
  /** Seconds from the log's start time to the interval's start. */
  start: number;
  /** Seconds from the log's start time to the interval's end. */
  end: number;
  /** The samples of the interval, in microseconds. */
  histogram: LatencyHistogram;
}

/**
 * Counts round-trip times in whole microseconds in an HdrHistogram. Percentiles are exact up to
 * 2,048 µs and within 0.1 % above; `min`, `max` and `mean` are exact.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { LatencyHistogram } from "./latency_histogram.ts";
 *
 * const histogram = new LatencyHistogram();
 * for (let us = 1; us <= 100; us++) histogram.record(us);
 * equal(histogram.percentile(50), 50);
 * equal(histogram.summary().max, 100);
 * ```
 */
export class LatencyHistogram {
  readonly #hdr: Float64Histogram;
  #sum = 0;
  #min = Infinity;
  #max = 0;

  constructor() {
    this.#hdr = new Float64Histogram(1, 2, SIGNIFICANT_DIGITS);
    this.#hdr.autoResize = true;
  }

  /**
   * Intervals in HdrHistogram's interval log format (version 1.3), as its `HistogramLogWriter`
   * writes them and its `HistogramLogReader` and HdrLogProcessing read them: a start time, a
   * legend, then one line per interval with its tag, start, length, max (in milliseconds) and
   * the histogram compressed in base64. `comments` become `#` lines after the header.
   *
   * @example
   * ```ts
   * import { equal, match } from "node:assert/strict";
   * import { LatencyHistogram } from "./latency_histogram.ts";
   *
   * const histogram = new LatencyHistogram();
   * histogram.record(1500);
   * const log = LatencyHistogram.formatIntervalLog(
   *   [{ tag: "latency", start: 0, end: 1, histogram }],
   *   Date.UTC(2026, 0, 1),
   * );
   * match(log, /^Tag=latency,0\.000,1\.000,1\.500,/m);
   * equal(LatencyHistogram.parseIntervalLog(log)[0].histogram.percentile(50), 1500);
   * ```
   */
  static formatIntervalLog(
    intervals: HistogramInterval[],
    startTimeMs: number,
    comments: string[] = [],
  ): string {
    let text = "";
    const writer = new HistogramLogWriter((line) => text += line);
    writer.outputLogFormatVersion();
    writer.outputStartTime(startTimeMs);
    for (const comment of comments) writer.outputComment(comment);
    writer.outputLegend();
    for (const { tag, start, end, histogram } of intervals) {
      // A copy carries the tag: the writer reads it from the histogram.
      const tagged = new Float64Histogram(1, 2, SIGNIFICANT_DIGITS);
      tagged.autoResize = true;
      tagged.add(histogram.#hdr);
      tagged.tag = tag;
      writer.outputIntervalHistogram(tagged, start, end, 1000);
    }
    return text;
  }

  /**
   * The intervals of an HdrHistogram interval log, read with its `HistogramLogReader`; lines it
   * cannot read are skipped, as it skips them. Each histogram's min and max are those of its
   * buckets (within 0.1 %), and its mean that of its buckets' midpoints.
   */
  static parseIntervalLog(text: string): HistogramInterval[] {
    const reader = new HistogramLogReader(text, 64);
    const intervals: HistogramInterval[] = [];
    for (let hdr = reader.nextIntervalHistogram(); hdr; hdr = reader.nextIntervalHistogram()) {
      const start = hdr.startTimeStampMsec / 1000 - reader.baseTimeSec;
      intervals.push({
        tag: hdr.tag,
        start,
        end: hdr.endTimeStampMsec / 1000 - reader.baseTimeSec,
        histogram: LatencyHistogram.#fromHdr(hdr),
      });
    }
    return intervals;
  }

  static #fromHdr(hdr: Histogram): LatencyHistogram {
    const histogram = new LatencyHistogram();
    const own = histogram.#hdr;
    // The reader decodes 64-bit buckets into a Float64Histogram, which `add` takes.
    own.add(hdr as unknown as Float64Histogram);
    const count = own.totalCount;
    if (count === 0) return histogram;
    histogram.#sum = own.mean * count;
    histogram.#min = own.getCountAtIndex(0) > 0 ? 0 : own.minNonZeroValue;
    histogram.#max = own.maxValue;
    return histogram;
  }

  /**
   * Adds one sample of `micros` microseconds: fractions are dropped, negatives count as 0 and
   * anything beyond about 51 days as 51 days.
   */
  record(micros: number): void {
    const value = micros > 0 ? Math.min(Math.floor(micros), MAX_MICROS) : 0;
    this.#hdr.recordValue(value);
    this.#sum += value;
    if (value < this.#min) this.#min = value;
    if (value > this.#max) this.#max = value;
  }

  /** Adds every sample of `other`, as if each had been recorded here too. */
  add(other: LatencyHistogram): void {
    if (other.count === 0) return;
    this.#hdr.add(other.#hdr);
    this.#sum += other.#sum;
    this.#min = Math.min(this.#min, other.#min);
    this.#max = Math.max(this.#max, other.#max);
  }

  /** Samples recorded so far. */
  get count(): number {
    return this.#hdr.totalCount;
  }

  /**
   * The smallest value that at least `percent` % of the samples do not exceed, within 0.1 % and
   * never above the largest sample; 0 when empty.
   */
  percentile(percent: number): number {
    if (this.count === 0) return 0;
    return Math.min(this.#hdr.getValueAtPercentile(percent), this.#max);
  }

  /** Count, min, mean, p50, p90, p99, p99.9 and max, in microseconds. */
  summary(): LatencySummary {
    const count = this.count;
    return {
      count,
      min: count === 0 ? 0 : this.#min,
      mean: count === 0 ? 0 : this.#sum / count,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      p99_9: this.percentile(99.9),
      max: this.#max,
    };
  }

  /**
   * Counts merged into `rows` ranges of equal width on a log scale, for a small chart: each row's
   * upper edge in microseconds and how many samples fell in it. Empty when no samples.
   */
  distribution(rows: number): { upTo: number; count: number }[] {
    if (this.count === 0) return [];
    const low = Math.max(1, this.#min);
    const ratio = (Math.max(this.#max, low + 1) / low) ** (1 / rows);
    const result = Array.from(
      { length: rows },
      (_, row) => ({ upTo: Math.ceil(low * ratio ** (row + 1)), count: 0 }),
    );
    const hdr = this.#hdr;
    let row = 0;
    for (let index = 0; index < hdr.countsArrayLength; index++) {
      const count = hdr.getCountAtIndex(index);
      if (count === 0) continue;
      const edge = Math.min(hdr.highestEquivalentValue(hdr.valueFromIndex(index)), this.#max);
      while (row < rows - 1 && edge > result[row].upTo) row++;
      result[row].count += count;
    }
    return result;
  }

  /**
   * The full percentile distribution in HdrHistogram's text format (columns Value, Percentile,
   * TotalCount and 1/(1-Percentile), then the mean, deviation, max and count), as
   * `outputPercentileDistribution` prints it and its plotters read it. Values are in milliseconds,
   * as wrk2 writes them, with five percentile ticks per half distance.
   *
   * @example
   * ```ts
   * import { match } from "node:assert/strict";
   * import { LatencyHistogram } from "./latency_histogram.ts";
   *
   * const histogram = new LatencyHistogram();
   * histogram.record(1500);
   * match(histogram.percentileDistribution(), /^ +Value +Percentile TotalCount 1\/\(1-Percentile\)\n/);
   * match(histogram.percentileDistribution(), /\n +1\.500 1\.000000000000 +1\n/);
   * ```
   */
  percentileDistribution(): string {
    return this.#hdr.outputPercentileDistribution(5, 1000);
  }
}
