/**
 * The Prometheus text exposition format (version 0.0.4), and a histogram with fixed buckets that
 * costs one comparison loop and two additions per sample, so that a hot path can feed it.
 *
 * @example A counter, a labelled gauge and a histogram
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { BucketHistogram, PrometheusText } from "./prometheus.ts";
 *
 * const times = new BucketHistogram([0.001, 0.01]);
 * times.observe(0.0005);
 * times.observe(0.004);
 * const text = new PrometheusText()
 *   .counter("demo_requests_total", "Requests served.", 2)
 *   .gauge("demo_open", "Open connections.", [{ labels: { worker: "1" }, value: 3 }])
 *   .histogram("demo_seconds", "Time per request.", times.snapshot())
 *   .toString();
 * equal(text.split("\n").includes('demo_open{worker="1"} 3'), true);
 * equal(text.split("\n").includes('demo_seconds_bucket{le="0.01"} 2'), true);
 * equal(text.split("\n").includes("demo_seconds_count 2"), true);
 * ```
 *
 * @module
 */

/** The `Content-Type` of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** One value of a metric, with the labels that tell it apart from its siblings. */
export interface Sample {
  /** Label names and values; omit for a metric with a single value. */
  labels?: Readonly<Record<string, string>>;
  /** The value. */
  value: number;
}

/**
 * What a {@linkcode BucketHistogram} has counted: plain data, so that it can cross to another
 * thread and be added to the counts of another histogram with the same bounds.
 */
export interface HistogramSnapshot {
  /** The upper bound of each bucket, ascending; a last bucket up to `+Inf` is implied. */
  bounds: readonly number[];
  /** Samples in each bucket, not cumulative: one more entry than `bounds`, the last for `+Inf`. */
  counts: number[];
  /** The sum of all samples. */
  sum: number;
}

/**
 * Counts samples in buckets with fixed upper bounds. Observing a sample walks the bounds from the
 * smallest, which is cheap when most samples are small, as the times of a fast path are.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { BucketHistogram } from "./prometheus.ts";
 *
 * const histogram = new BucketHistogram([1, 10]);
 * for (const value of [0.5, 1, 7, 99]) histogram.observe(value);
 * deepEqual(histogram.snapshot().counts, [2, 1, 1]);
 * ```
 */
export class BucketHistogram {
  readonly #bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;

  /** Buckets up to each of `bounds` (ascending, finite), and one more up to `+Inf`. */
  constructor(bounds: readonly number[]) {
    for (let i = 0; i < bounds.length; i++) {
      if (!Number.isFinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
        throw new RangeError("histogram bounds must be finite and ascending");
      }
    }
    this.#bounds = [...bounds];
    this.#counts = new Array(bounds.length + 1).fill(0);
  }

  /** Counts one sample in the first bucket whose upper bound is at least `value`. */
  observe(value: number): void {
    const bounds = this.#bounds;
    let bucket = 0;
    while (bucket < bounds.length && value > bounds[bucket]) bucket++;
    this.#counts[bucket]++;
    this.#sum += value;
  }

  /** A copy of the counts so far. */
  snapshot(): HistogramSnapshot {
    return { bounds: this.#bounds, counts: [...this.#counts], sum: this.#sum };
  }
}

/**
 * Adds the counts of histograms that share their bounds, such as the same histogram kept by
 * several threads.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { addHistograms } from "./prometheus.ts";
 *
 * const sum = addHistograms(
 *   { bounds: [1], counts: [1, 0], sum: 0.5 },
 *   { bounds: [1], counts: [2, 1], sum: 4 },
 * );
 * deepEqual(sum, { bounds: [1], counts: [3, 1], sum: 4.5 });
 * ```
 */
export function addHistograms(a: HistogramSnapshot, b: HistogramSnapshot): HistogramSnapshot {
  if (a.bounds.length !== b.bounds.length || a.bounds.some((bound, i) => bound !== b.bounds[i])) {
    throw new RangeError("only histograms with the same bounds add up");
  }
  return {
    bounds: a.bounds,
    counts: a.counts.map((count, i) => count + b.counts[i]),
    sum: a.sum + b.sum,
  };
}

/**
 * Writes metrics in the Prometheus text format: each family once, with its `HELP` and `TYPE`
 * lines, then its samples. Names and label names are checked, label values and help escaped.
 */
export class PrometheusText {
  readonly #lines: string[] = [];
  readonly #names = new Set<string>();

  /** A counter: a count that only goes up while the process lives. Its name ends in `_total`. */
  counter(name: string, help: string, samples: number | readonly Sample[]): this {
    if (!name.endsWith("_total")) throw new RangeError(`counter ${name} must end in _total`);
    return this.#family(name, help, "counter", samples);
  }

  /** A gauge: a value that goes up and down, such as the connections open right now. */
  gauge(name: string, help: string, samples: number | readonly Sample[]): this {
    return this.#family(name, help, "gauge", samples);
  }

  /** A histogram: `name_bucket` lines with cumulative counts, then `name_sum` and `name_count`. */
  histogram(name: string, help: string, histogram: HistogramSnapshot): this {
    this.#header(name, help, "histogram");
    let cumulative = 0;
    histogram.counts.forEach((count, i) => {
      cumulative += count;
      const le = i < histogram.bounds.length ? formatValue(histogram.bounds[i]) : "+Inf";
      this.#lines.push(`${name}_bucket{le="${le}"} ${cumulative}`);
    });
    this.#lines.push(`${name}_sum ${formatValue(histogram.sum)}`, `${name}_count ${cumulative}`);
    return this;
  }

  /** The whole exposition, ending in a newline. */
  toString(): string {
    return this.#lines.join("\n") + "\n";
  }

  #family(name: string, help: string, type: string, samples: number | readonly Sample[]): this {
    this.#header(name, help, type);
    for (const sample of typeof samples === "number" ? [{ value: samples }] : samples) {
      this.#lines.push(`${name}${formatLabels(sample.labels)} ${formatValue(sample.value)}`);
    }
    return this;
  }

  #header(name: string, help: string, type: string): void {
    if (!METRIC_NAME.test(name)) throw new RangeError(`invalid metric name '${name}'`);
    if (this.#names.has(name)) throw new RangeError(`metric ${name} written twice`);
    this.#names.add(name);
    this.#lines.push(`# HELP ${name} ${help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}`);
    this.#lines.push(`# TYPE ${name} ${type}`);
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function formatLabels(labels: Readonly<Record<string, string>> | undefined): string {
  if (labels === undefined) return "";
  const pairs = Object.entries(labels).map(([name, value]) => {
    if (!LABEL_NAME.test(name) || name.startsWith("__")) {
      throw new RangeError(`invalid label name '${name}'`);
    }
    const escaped = value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
    return `${name}="${escaped}"`;
  });
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
