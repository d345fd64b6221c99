import { deepEqual, equal, match, throws } from "node:assert/strict";
import { addHistograms, BucketHistogram, PrometheusText } from "../../lib/metrics/prometheus.ts";
import { needs, promtoolCheck } from "../helpers.ts";

function sampleExposition(): string {
  const times = new BucketHistogram([0.00001, 0.0001, 0.001]);
  for (const seconds of [0.000004, 0.00002, 0.00002, 0.5]) times.observe(seconds);
  return new PrometheusText()
    .counter("demo_connections_accepted_total", "Connections accepted.", 7)
    .counter("demo_connections_closed_total", "Connections closed, by reason.", [
      { labels: { reason: "eof" }, value: 5 },
      { labels: { reason: "reset" }, value: 1 },
    ])
    .gauge("demo_connections_open", 'Open connections; "quoted"\nand a \\ backslash.', [
      { labels: { worker: "1" }, value: 1 },
      { labels: { worker: 'a "b"\\\n' }, value: 0 },
    ])
    .histogram("demo_echo_seconds", "Time to echo one chunk.", times.snapshot())
    .toString();
}

Deno.test({
  ...needs("promtool", "promtool check metrics accepts every kind of family, escapes included"),
  async fn() {
    const text = sampleExposition();
    equal(await promtoolCheck(text), "");
    // A check that can fail: promtool does object to a malformed exposition.
    const broken = text.replace("demo_echo_seconds_count 4", "demo_echo_seconds_count x");
    match(await promtoolCheck(broken), /^promtool failed: /);
  },
});

Deno.test("the exposition escapes label values and help, and counts histogram buckets cumulatively", () => {
  const lines = sampleExposition().split("\n");
  deepEqual(lines.filter((line) => line.startsWith("demo_echo_seconds")), [
    'demo_echo_seconds_bucket{le="0.00001"} 1',
    'demo_echo_seconds_bucket{le="0.0001"} 3',
    'demo_echo_seconds_bucket{le="0.001"} 3',
    'demo_echo_seconds_bucket{le="+Inf"} 4',
    "demo_echo_seconds_sum 0.500044",
    "demo_echo_seconds_count 4",
  ]);
  equal(lines.includes('demo_connections_open{worker="a \\"b\\"\\\\\\n"} 0'), true);
  equal(
    lines.includes(
      '# HELP demo_connections_open Open connections; "quoted"\\nand a \\\\ backslash.',
    ),
    true,
  );
});

Deno.test("the exposition refuses what Prometheus would reject", () => {
  throws(() => new PrometheusText().counter("demo_bytes", "no _total", 1), /must end in _total/);
  throws(() => new PrometheusText().gauge("demo-open", "a dash", 1), /invalid metric name/);
  throws(
    () => new PrometheusText().gauge("demo_open", "x", [{ labels: { __name: "x" }, value: 1 }]),
    /invalid label name/,
  );
  throws(() => new PrometheusText().gauge("demo_open", "x", 1).gauge("demo_open", "x", 2), /twice/);
  throws(() => new BucketHistogram([1, 1]), /ascending/);
});

Deno.test("histograms with the same bounds add up, others do not", () => {
  const a = new BucketHistogram([1, 2]);
  const b = new BucketHistogram([1, 2]);
  a.observe(0.5);
  b.observe(1.5);
  b.observe(3);
  deepEqual(addHistograms(a.snapshot(), b.snapshot()), {
    bounds: [1, 2],
    counts: [1, 1, 1],
    sum: 5,
  });
  throws(() => addHistograms(a.snapshot(), new BucketHistogram([1]).snapshot()), /same bounds/);
});
