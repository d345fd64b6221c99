import { deepEqual, equal, match, ok } from "node:assert/strict";
import { LatencyHistogram } from "../../lib/metrics/latency_histogram.ts";

Deno.test("latency histogram: exact to the microsecond up to 2,048 µs", () => {
  const histogram = new LatencyHistogram();
  for (let us = 0; us < 2048; us++) histogram.record(us + 0.9);
  equal(histogram.percentile(50), 1023);
  equal(histogram.percentile(99), 2027);
  equal(histogram.percentile(100), 2047);
  deepEqual(histogram.summary(), {
    count: 2048,
    min: 0,
    mean: 1023.5,
    p50: 1023,
    p90: 1843,
    p99: 2027,
    p99_9: 2045,
    max: 2047,
  });
});

Deno.test("latency histogram: three significant digits from microseconds to weeks", () => {
  for (let value = 2048; value < 2 ** 41; value = Math.ceil(value * 1.37)) {
    const histogram = new LatencyHistogram();
    histogram.record(value);
    histogram.record(value * 2);
    const p50 = histogram.percentile(50);
    ok(p50 >= value && p50 <= value * 1.001, `${value} µs reported as ${p50}`);
    equal(histogram.summary().max, value * 2);
  }
});

Deno.test("latency histogram: percentiles follow the ranks of a skewed distribution", () => {
  const histogram = new LatencyHistogram();
  for (let i = 0; i < 9_000; i++) histogram.record(20);
  for (let i = 0; i < 900; i++) histogram.record(500);
  for (let i = 0; i < 99; i++) histogram.record(10_000);
  histogram.record(2_000_000);
  const summary = histogram.summary();
  equal(summary.count, 10_000);
  equal(summary.p50, 20);
  equal(summary.p90, 20);
  equal(summary.p99, 500);
  ok(summary.p99_9 >= 10_000 && summary.p99_9 <= 10_010, `p99.9 ${summary.p99_9}`);
  equal(histogram.percentile(100), 2_000_000);
  equal(summary.max, 2_000_000);
  equal(summary.min, 20);
});

Deno.test("latency histogram: empty, negative and enormous samples stay well defined", () => {
  const histogram = new LatencyHistogram();
  deepEqual(histogram.summary(), {
    count: 0,
    min: 0,
    mean: 0,
    p50: 0,
    p90: 0,
    p99: 0,
    p99_9: 0,
    max: 0,
  });
  deepEqual(histogram.distribution(4), []);
  histogram.record(-5);
  histogram.record(1e15);
  histogram.record(Infinity);
  equal(histogram.percentile(1), 0);
  equal(histogram.percentile(100), 2 ** 42);
  equal(histogram.count, 3);
});

Deno.test("latency histogram: add merges counts, min, max and mean", () => {
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  const both = new LatencyHistogram();
  for (let us = 1; us <= 5_000; us++) {
    (us % 3 === 0 ? a : b).record(us * 7);
    both.record(us * 7);
  }
  a.add(b);
  a.add(new LatencyHistogram());
  deepEqual(a.summary(), both.summary());
  equal(a.percentileDistribution(), both.percentileDistribution());
});

Deno.test("latency histogram: the chart rows add up to every sample", () => {
  const histogram = new LatencyHistogram();
  for (let us = 1; us <= 100_000; us += 7) histogram.record(us);
  const rows = histogram.distribution(8);
  equal(rows.length, 8);
  equal(rows.reduce((sum, row) => sum + row.count, 0), histogram.count);
  ok(rows.every((row, i) => i === 0 || row.upTo > rows[i - 1].upTo));
  ok(rows[7].upTo >= 99_996);
  // Log-scale rows: the first row holds far fewer samples than the last.
  ok(rows[0].count < rows[7].count / 100, JSON.stringify(rows));
});

/** The data lines of a percentile distribution, parsed as HdrHistogram's plotters parse them. */
function parseDistribution(text: string) {
  const lines = text.split("\n");
  equal(lines[0], "       Value     Percentile TotalCount 1/(1-Percentile)");
  equal(lines[1], "");
  return lines.slice(2).filter((line) => line !== "" && !line.startsWith("#")).map((line) => {
    const fields = line.trim().split(/\s+/);
    return {
      line,
      value: Number(fields[0]),
      percentile: Number(fields[1]),
      totalCount: Number(fields[2]),
      inverse: fields[3] === undefined ? undefined : Number(fields[3]),
    };
  });
}

Deno.test("latency histogram: the percentile distribution is HdrHistogram's text format", () => {
  const histogram = new LatencyHistogram();
  for (let us = 1; us <= 10_000; us++) histogram.record(us);
  const text = histogram.percentileDistribution();
  const rows = parseDistribution(text);
  // Every data line has Java's widths: %12.3f %2.12f %10d %14.2f (the last has no 4th column).
  for (const row of rows.slice(0, -1)) {
    match(row.line, /^ *\d+\.\d{3} \d\.\d{12} +\d+ +\d+\.\d{2}$/);
    equal(row.line.length, 12 + 1 + 14 + 1 + 10 + 1 + 14);
  }
  equal(rows.at(-1)!.line, "      10.007 1.000000000000      10000");
  // The first line is the smallest value, in milliseconds; percentiles and counts only rise.
  deepEqual(rows[0], {
    line: rows[0].line,
    value: 0.001,
    percentile: 0,
    totalCount: 1,
    inverse: 1,
  });
  for (let i = 1; i < rows.length; i++) {
    ok(
      rows[i].percentile >= rows[i - 1].percentile && rows[i].totalCount >= rows[i - 1].totalCount,
    );
  }
  // The median line: half the samples at or below 5 ms, 1/(1-0.5) = 2.
  const median = rows.find((row) => row.percentile === 0.5)!;
  ok(Math.abs(median.value - 5) < 0.01 && median.totalCount >= 5000 && median.inverse === 2);
  // Five ticks per half distance: 0.5 to 0.75 in 5 steps.
  deepEqual(
    rows.filter((row) => row.percentile > 0.5 && row.percentile <= 0.75).map((r) => r.percentile),
    [0.55, 0.6, 0.65, 0.7, 0.75],
  );
  const footer = text.split("\n").filter((line) => line.startsWith("#"));
  deepEqual(footer, [
    "#[Mean    =        5.001, StdDeviation   =        2.887]",
    "#[Max     =       10.000, Total count    =        10000]",
    "#[Buckets =            4, SubBuckets     =         2048]",
  ]);
});

Deno.test("latency histogram: an empty distribution is a header and a footer", () => {
  const rows = parseDistribution(new LatencyHistogram().percentileDistribution());
  deepEqual(rows, []);
});
