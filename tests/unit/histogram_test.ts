import { deepEqual, equal, ok } from "node:assert/strict";
import { LatencyHistogram } from "../../lib/histogram.ts";

Deno.test("histogram: exact to the microsecond below 128 µs", () => {
  const histogram = new LatencyHistogram();
  for (let us = 0; us < 128; us++) histogram.record(us + 0.9);
  equal(histogram.percentile(50), 63);
  equal(histogram.percentile(100), 127);
  deepEqual(histogram.summary(), {
    count: 128,
    min: 0,
    mean: 63.5,
    p50: 63,
    p90: 115,
    p99: 126,
    p99_9: 127,
    max: 127,
  });
});

Deno.test("histogram: within 1.6 % above 128 µs, from microseconds to hours", () => {
  for (let value = 128; value < 2 ** 36; value = Math.ceil(value * 1.37)) {
    const histogram = new LatencyHistogram();
    histogram.record(value);
    histogram.record(value * 4);
    const p50 = histogram.percentile(50);
    ok(p50 >= value && p50 <= value * 1.016, `${value} µs reported as ${p50}`);
    equal(histogram.summary().max, value * 4);
  }
});

Deno.test("histogram: percentiles follow the ranks of a skewed distribution", () => {
  const histogram = new LatencyHistogram();
  for (let i = 0; i < 9_000; i++) histogram.record(20);
  for (let i = 0; i < 900; i++) histogram.record(500);
  for (let i = 0; i < 99; i++) histogram.record(10_000);
  histogram.record(2_000_000);
  const summary = histogram.summary();
  equal(summary.count, 10_000);
  equal(summary.p50, 20);
  equal(summary.p90, 20);
  ok(summary.p99 >= 500 && summary.p99 <= 508, `p99 ${summary.p99}`);
  ok(summary.p99_9 >= 10_000 && summary.p99_9 <= 10_160, `p99.9 ${summary.p99_9}`);
  equal(summary.max, 2_000_000);
  equal(summary.min, 20);
});

Deno.test("histogram: empty, negative and enormous samples stay well defined", () => {
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
  equal(histogram.percentile(50), 0);
  equal(histogram.percentile(100), 1e15);
});

Deno.test("histogram: the chart rows add up to every sample", () => {
  const histogram = new LatencyHistogram();
  for (let us = 1; us <= 100_000; us += 7) histogram.record(us);
  const rows = histogram.distribution(8);
  equal(rows.length, 8);
  equal(rows.reduce((sum, row) => sum + row.count, 0), histogram.count);
  ok(rows.every((row, i) => i === 0 || row.upTo > rows[i - 1].upTo));
  ok(rows[7].upTo >= 99_996);
});

Deno.test("histogram: a percentile is the sample at its nearest rank, rounded up", () => {
  const histogram = new LatencyHistogram();
  for (const us of [10, 20, 30]) histogram.record(us);
  // 50 % of 3 samples is rank 1.5: the 2nd sample, not the 1st.
  equal(histogram.percentile(50), 20);
  equal(histogram.percentile(33), 10);
  equal(histogram.percentile(34), 20);
  equal(histogram.percentile(67), 30);
});
