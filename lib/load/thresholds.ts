/**
 * Pass/fail thresholds on a load run's report, as `bench --assert` takes them: `p99<5ms`,
 * `service.p99.9<=20ms`, `errors=0`, `msgs/s>=10000`, `kept-up`. A CI job runs bench and lets the
 * exit code say whether the server met them.
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";
import { durationForms, parseDuration } from "../base/units.ts";
import type { LatencyHistogram } from "../metrics/latency_histogram.ts";
import { type LoadErrors, type LoadReport, totalErrors } from "./load.ts";

/** How a threshold compares the measured value with its limit. */
export type ThresholdOperator = "<" | "<=" | ">" | ">=" | "=";

/** One threshold, parsed. */
export interface Threshold {
  /** The expression as given, such as `p99<5ms`. */
  expression: string;
  /** What it measures: `p99`, `service.p99`, `errors`, `kept-up`, `not-generator-bound`... */
  metric: string;
  /** How the value compares with `limit`; absent for `kept-up` and `not-generator-bound`. */
  operator?: ThresholdOperator;
  /** The limit: microseconds for a latency, a plain number for a count or a rate. */
  limit?: number;
  /** Whether the value is a latency in microseconds (shown as a duration). */
  latency: boolean;
  /** Whether the threshold needs an open loop (`--rate`): `kept-up`, `service.*`, `send-delay.*`. */
  needsRate: boolean;
}

/** A threshold checked against a report. */
export interface ThresholdResult {
  /** The threshold checked. */
  threshold: Threshold;
  /**
   * The value measured (microseconds for a latency); null when nothing was measured, such as a
   * percentile of an empty histogram; a boolean for `kept-up`.
   */
  value: number | boolean | null;
  /** Whether the threshold held. A value that was not measured never holds. */
  ok: boolean;
}

/** Latency histograms a threshold can name, by prefix. */
const HISTOGRAMS: Record<string, (report: LoadReport) => LatencyHistogram | undefined> = {
  "": (report) => report.histogram,
  "service.": (report) => report.serviceTime,
  "connect.": (report) => report.connects.connectTime,
  "handshake.": (report) => report.connects.handshakeTime,
  "first-byte.": (report) => report.connects.firstByte,
  "send-delay.": (report) => report.audit.sendDelay,
  "loop-lag.": (report) => report.audit.eventLoopLag,
};

/** Counts and rates a threshold can name. */
const COUNTS: Record<string, (report: LoadReport) => number> = {
  errors: (report) => totalErrors(report.errors),
  messages: (report) => report.messages,
  "msgs/s": (report) => report.messagesPerSecond,
  connects: (report) => report.connects.made,
  lost: (report) => report.datagrams?.lost ?? 0,
  duplicates: (report) => report.datagrams?.duplicates ?? 0,
  reordered: (report) => report.datagrams?.reordered ?? 0,
  ...Object.fromEntries(
    (
      [
        ["mismatches", "mismatches"],
        ["early-closes", "earlyCloses"],
        ["resets", "resets"],
        ["timeouts", "timeouts"],
        ["refused", "refused"],
        ["connect-timeouts", "connectTimeouts"],
      ] as [string, keyof LoadErrors][]
    ).map(([name, key]) => [name, (report: LoadReport) => report.errors[key]]),
  ),
};

const FORMS =
  "p99<5ms, service.p99.9<20ms, connect.max<1s, errors=0, msgs/s>=1000, kept-up or not-generator-bound";

/**
 * Parses one threshold expression: a latency (`p99`, `p99.9`, `min`, `mean`, `max`, optionally
 * after `service.`, `connect.`, `handshake.`, `first-byte.`, `send-delay.` or `loop-lag.`)
 * against a duration (a bare number is in milliseconds), a count (`errors`, `mismatches`,
 * `timeouts`, `messages`, `connects`...) or `msgs/s` against a number, or `kept-up` or
 * `not-generator-bound` alone. Throws a {@linkcode UsageError} otherwise.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { parseThreshold } from "./thresholds.ts";
 *
 * equal(parseThreshold("p99<5ms").limit, 5000);
 * equal(parseThreshold("service.p99.9 <= 1.5ms").metric, "service.p99.9");
 * equal(parseThreshold("errors=0").latency, false);
 * ```
 */
export function parseThreshold(expression: string, flag = "--assert"): Threshold {
  const text = expression.trim();
  if (text === "kept-up" || text === "not-generator-bound") {
    return { expression: text, metric: text, latency: false, needsRate: text === "kept-up" };
  }
  const match = text.match(/^([a-z./-]+?(?:\d+(?:\.\d+)?)?)\s*(<=|>=|<|>|=)\s*(\S+)$/);
  const bad = (why: string) => new UsageError(`${flag} '${expression}': ${why} (such as ${FORMS})`);
  if (!match) throw bad("not a threshold");
  const [, metric, operator, limitText] = match;
  if (metric in COUNTS) {
    const limit = /^\d+(\.\d+)?$/.test(limitText) ? Number(limitText) : NaN;
    if (Number.isNaN(limit)) throw bad(`'${limitText}' is not a number`);
    return {
      expression: text,
      metric,
      operator: operator as ThresholdOperator,
      limit,
      latency: false,
      needsRate: false,
    };
  }
  const prefix = Object.keys(HISTOGRAMS).find((p) => p !== "" && metric.startsWith(p)) ?? "";
  const stat = metric.slice(prefix.length);
  const percent = stat.startsWith("p") ? Number(stat.slice(1)) : NaN;
  if (!["min", "mean", "max"].includes(stat) && !(percent > 0 && percent <= 100)) {
    throw bad(`unknown measure '${metric}'`);
  }
  const millis = parseDuration(limitText, "ms");
  if (millis === undefined) throw bad(`the limit must be ${durationForms("ms")}`);
  return {
    expression: text,
    metric,
    operator: operator as ThresholdOperator,
    limit: millis * 1000,
    latency: true,
    needsRate: prefix === "service." || prefix === "send-delay.",
  };
}

/** The value `threshold` names in `report`; null when nothing was measured. */
function measure(threshold: Threshold, report: LoadReport): number | boolean | null {
  const { metric } = threshold;
  if (metric === "kept-up") return report.rate?.keptUp ?? null;
  if (metric === "not-generator-bound") return !report.audit.generatorBound;
  if (metric in COUNTS) return COUNTS[metric](report);
  const prefix = Object.keys(HISTOGRAMS).find((p) => p !== "" && metric.startsWith(p)) ?? "";
  const histogram = HISTOGRAMS[prefix](report);
  if (histogram === undefined || histogram.count === 0) return null;
  const stat = metric.slice(prefix.length);
  const summary = histogram.summary();
  if (stat === "min" || stat === "mean" || stat === "max") return summary[stat];
  return histogram.percentile(Number(stat.slice(1)));
}

/**
 * Checks every threshold against `report`, in order.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { checkThresholds, parseThreshold, runLoad, startEchoServer } from "../mod.ts";
 *
 * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
 * const report = await runLoad({ hostname: "127.0.0.1", port: server.addr.port, count: 100 });
 * const [errors, messages] = checkThresholds(
 *   [parseThreshold("errors=0"), parseThreshold("messages>100")],
 *   report,
 * );
 * equal(errors.ok, true);
 * equal(messages.ok, false);
 * equal(messages.value, 100);
 * ```
 */
export function checkThresholds(thresholds: Threshold[], report: LoadReport): ThresholdResult[] {
  return thresholds.map((threshold) => {
    const value = measure(threshold, report);
    if (typeof value !== "number") return { threshold, value, ok: value === true };
    const limit = threshold.limit!;
    const ok = {
      "<": value < limit,
      "<=": value <= limit,
      ">": value > limit,
      ">=": value >= limit,
      "=": value === limit,
    }[threshold.operator!];
    return { threshold, value, ok };
  });
}
