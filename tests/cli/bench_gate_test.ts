/**
 * bench as a CI gate and across generators (issue 21): `--assert` thresholds and their exit code,
 * `--hdr-log` files that hdr-histogram-js's own reader decodes, `bench merge` adding them exactly,
 * and N processes sharing one load as a Kubernetes Indexed Job would run them.
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { build, HistogramLogReader } from "npm:hdr-histogram-js@^3.0.1";
import { startEchoServer } from "../../lib/mod.ts";
import { benchJson, cliCommand, runCli, ServeProcess, TcpFixture, within } from "../helpers.ts";

Deno.test("bench --assert: met thresholds exit 0; a failed one exits 99, says by how much, and JSON lists each", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const port = server.addr.port;
  const met = await benchJson(port, "-n", "20", "--assert", "errors=0", "--assert", "p99<10s");
  equal(met.code, 0, met.stderr);
  deepEqual(met.report.thresholds.map((t: { ok: boolean }) => t.ok), [true, true]);
  equal(met.report.thresholds[0].value, 0);

  const failed = await benchJson(port, "-n", "20", "--assert", "messages>=100,errors=0");
  equal(failed.code, 99);
  deepEqual(failed.report.thresholds, [
    { expression: "messages>=100", value: 20, ok: false },
    { expression: "errors=0", value: 0, ok: true },
  ]);
  equal(
    failed.stderr,
    "error: 1 of 2 thresholds failed: messages>=100 (20, 80 under)\n",
  );

  const text = await runCli([
    "bench",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "-n",
    "5",
    "--assert",
    "connect.max<1us",
  ]);
  equal(text.code, 99);
  match(
    text.stdout,
    /\nthreshold FAILED: connect\.max<1us \([\d,.]+ (µs|ms), [\d,.]+ (µs|ms) over\)\n$/,
  );
});

Deno.test("bench --assert kept-up fails an open loop the server cannot keep up with", async () => {
  // One connection, one message in flight, 50 ms an echo: at most 20 a second, 100 asked for.
  await using server = await ServeProcess.start(["--host", "127.0.0.1", "--delay", "50"]);
  const { code, report, stderr } = await benchJson(
    server.port,
    "--rate",
    "100",
    "-d",
    "1",
    "--assert",
    "kept-up",
    "--assert",
    "service.p50>=50ms",
  );
  equal(code, 99, stderr);
  equal(report.rate.kept_up, false);
  deepEqual(report.thresholds.map((t: { ok: boolean }) => t.ok), [false, true]);
  match(stderr, /^error: 1 of 2 thresholds failed: kept-up \(no\)\n$/);
});

Deno.test("bench --assert refuses what it cannot check before the run", async () => {
  for (
    const [args, message] of [
      [["--assert", "p99<<5ms"], /--assert 'p99<<5ms': the limit must be a duration/],
      [["--assert", "q99<5ms"], /unknown measure 'q99'/],
      [["--assert", "kept-up"], /--assert kept-up needs an open loop: add --rate/],
      [["--assert", "service.p99<1ms"], /needs an open loop/],
    ] as const
  ) {
    const { code, stderr } = await runCli(["bench", "--port", "1", ...args]);
    equal(code, 2, stderr);
    match(stderr, message);
  }
});

/** Values from 1 µs to about 4 s, spread over many buckets. */
function samples(seed: number, count: number): number[] {
  let state = seed;
  return Array.from({ length: count }, () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return Math.floor(2 ** ((state / 2 ** 31) * 22));
  });
}

Deno.test("bench --hdr-log files decode with hdr-histogram-js's reader, and bench merge adds them exactly", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const dir = await Deno.makeTempDir();
  try {
    const files = [0, 1, 2].map((i) => `${dir}/run${i}.hlog`);
    const runs = [];
    for (const [i, file] of files.entries()) {
      const run = await benchJson(
        server.addr.port,
        "-c",
        String(i + 1),
        "-n",
        "50",
        "--rate",
        "2000",
        "--hdr-log",
        file,
      );
      equal(run.code, 0, run.stderr);
      runs.push(run.report);
    }
    // The library's own reader finds every tagged histogram with every sample.
    const reference = build({ bitBucketSize: 64, numberOfSignificantValueDigits: 3 });
    for (const [i, file] of files.entries()) {
      const reader = new HistogramLogReader(await Deno.readTextFile(file));
      const tags = new Map<string, number>();
      for (let h = reader.nextIntervalHistogram(); h; h = reader.nextIntervalHistogram()) {
        tags.set(h.tag, h.totalCount);
        if (h.tag === "latency") reference.add(h);
      }
      deepEqual(Object.fromEntries(tags), {
        latency: runs[i].messages,
        service: runs[i].messages,
        connect: i + 1,
        "first-byte": i + 1,
        "send-delay": runs[i].messages,
        "loop-lag": tags.get("loop-lag"),
      });
      ok(tags.get("loop-lag")! > 0, "the event loop's lag was sampled");
    }
    const merged = await runCli(["bench", "merge", ...files, "--json", "--percentiles", "50,99"]);
    equal(merged.code, 0, merged.stderr);
    const report = JSON.parse(merged.stdout);
    equal(report.messages, 50 * 6);
    equal(report.connections, 6);
    equal(report.rate.target, 6000);
    equal(report.rate.scheduled, 300);
    equal(report.connects.made, 6);
    equal(report.latency_us.p50, reference.getValueAtPercentile(50));
    equal(report.latency_us.p99, reference.getValueAtPercentile(99));
    equal(report.latency_us.max, reference.maxValue);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("merged histograms give the percentiles of one histogram fed every value", async () => {
  const { LatencyHistogram } = await import("../../lib/mod.ts");
  const parts = [samples(1, 3000), samples(2, 500), samples(3, 7000)];
  const whole = new LatencyHistogram();
  const logs = parts.map((values) => {
    const histogram = new LatencyHistogram();
    for (const value of values) {
      histogram.record(value);
      whole.record(value);
    }
    return LatencyHistogram.formatIntervalLog(
      [{ tag: "latency", start: 0, end: 1, histogram }],
      Date.now(),
    );
  });
  const merged = new LatencyHistogram();
  for (const log of logs) merged.add(LatencyHistogram.parseIntervalLog(log)[0].histogram);
  equal(merged.count, whole.count);
  for (const p of [1, 10, 50, 90, 99, 99.9, 99.99]) {
    // The whole's percentile is capped at its exact max; the merged one's max is its bucket's.
    equal(merged.percentile(p), whole.percentile(p), `p${p}`);
  }
});

Deno.test("N bench processes with a Job's environment share a load: merged, they make the one run's rate", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const dir = await Deno.makeTempDir();
  const shards = 3;
  try {
    const common = [
      "bench",
      "--host",
      "127.0.0.1",
      "--port",
      String(server.addr.port),
      "-c",
      "7",
      "--rate",
      "1200",
      "-d",
      "1",
    ];
    const startAt = new Date(Date.now() + 3000).toISOString();
    const files = Array.from({ length: shards }, (_, i) => `${dir}/shard${i}.hlog`);
    const results = await Promise.all(files.map((file, index) =>
      runCli(
        [...common, "--shard", String(shards), "--start-at", startAt, "--hdr-log", file, "--json"],
        { env: { JOB_COMPLETION_INDEX: String(index) } },
      )
    ));
    const reports = results.map((result) => {
      equal(result.code, 0, result.stderr);
      return JSON.parse(result.stdout);
    });
    // 7 connections in three shares, 3+2+2, and 1200 msgs/s in 400 each.
    deepEqual(reports.map((r) => r.connections), [3, 2, 2]);
    deepEqual(reports.map((r) => r.rate.target), [400, 400, 400]);
    const merged = await runCli(["bench", "merge", ...files, "--json"]);
    equal(merged.code, 0, merged.stderr);
    const sum = JSON.parse(merged.stdout);
    const single = await runCli([...common, "--json"]);
    equal(single.code, 0, single.stderr);
    const one = JSON.parse(single.stdout);
    // The same schedule: as many messages due and echoed as the one run of the whole load.
    equal(sum.rate.target, one.rate.target);
    equal(sum.rate.scheduled, one.rate.scheduled);
    equal(sum.messages, one.messages);
    equal(sum.connections, one.connections);
    // The sum's percentiles lie within its parts', never an average of them.
    for (const key of ["p50", "p99"]) {
      const parts = reports.map((r) => r.latency_us[key]);
      ok(sum.latency_us[key] >= Math.min(...parts) && sum.latency_us[key] <= Math.max(...parts));
    }
    // The largest of all, as its bucket gives it back: within 0.1 %, never below.
    const max = Math.max(...reports.map((r) => r.latency_us.max));
    ok(sum.latency_us.max >= max && sum.latency_us.max <= max * 1.001, `${sum.latency_us.max}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench --shard and --start-at refuse bad values, and --shard N needs JOB_COMPLETION_INDEX", async () => {
  for (
    const [args, message] of [
      [["--shard", "4/4"], /--shard must be I\/N with 0 <= I < N/],
      [["--shard", "0/4", "-c", "2"], /at least 4 connections/],
      [["--start-at", "tomorrow"], /--start-at must be a time with its zone/],
      [["--shard", "4"], /takes its index from JOB_COMPLETION_INDEX, which is not set/],
    ] as const
  ) {
    const { code, stderr } = await runCli(["bench", "--port", "1", ...args]);
    equal(code, 2, stderr);
    match(stderr, message);
  }
  const late = await runCli(["bench", "--port", "1", "--start-at", "2020-01-01T00:00:00Z"]);
  equal(late.code, 1);
  match(late.stderr, /^error: --start-at 2020-01-01T00:00:00.000Z is [\d,.]+ s past/);
});

Deno.test("bench --reconnect against a closed port stops at once with one line", async () => {
  const fixture = new TcpFixture(async () => {});
  const port = fixture.port;
  await fixture[Symbol.asyncDispose]();
  const { code, stdout, stderr } = await runCli([
    "bench",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--reconnect",
    "1",
    "-c",
    "4",
    "-d",
    "30",
  ]);
  equal(code, 1);
  equal(stdout, "");
  equal(stderr, `error: cannot connect to 127.0.0.1 port ${port}: connection refused\n`);
});

Deno.test("bench reports nothing measured as null, not 0, and hints at a greeting taken for an echo", async () => {
  // Every connection is closed before any echo: no round trip is ever timed.
  await using closing = new TcpFixture(async () => {});
  const closed = await benchJson(closing.port, "--reconnect", "1", "-d", "0.3", "-t", "0.3");
  equal(closed.code, 1);
  ok(closed.report.errors.early_closes > 0, JSON.stringify(closed.report.errors));
  deepEqual(closed.report.latency_us, {
    min: null,
    mean: null,
    p50: null,
    p90: null,
    p99: null,
    p99_9: null,
    max: null,
  });

  await using greeter = await ServeProcess.start(["--host", "127.0.0.1", "--greeting", "hi"]);
  const greeted = await runCli(["bench", "--host", "127.0.0.1", "--port", String(greeter.port)]
    .concat(["-c", "2", "-n", "50"]));
  equal(greeted.code, 1);
  match(
    greeted.stderr,
    /^error: the echo check failed: \d+ mismatches \(does the server send a greeting first\? try --expect-greeting\)\n$/,
  );
});

Deno.test("bench checks its output files' folders before the run", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  for (const flag of ["--hdr-log", "--histogram"]) {
    const { code, stdout, stderr } = await runCli([
      "bench",
      "--host",
      "127.0.0.1",
      "--port",
      String(server.addr.port),
      "-n",
      "5",
      flag,
      "/nonexistent-folder/run.log",
    ]);
    equal(code, 1);
    equal(stdout, "", "no run was made");
    equal(
      stderr,
      "error: cannot write /nonexistent-folder/run.log: no folder /nonexistent-folder\n",
    );
  }
  equal(server.stats.connections, 0);
});

Deno.test("Ctrl-C while echoes are owed exits 130 and counts them unfinished, not as timeouts", async () => {
  // A server that reads and never answers: the echo in flight never comes.
  const loaded = Promise.withResolvers<void>();
  await using server = new TcpFixture(async (conn) => {
    const sink = new Uint8Array(1024);
    while (await conn.read(sink) !== null) loaded.resolve();
  });
  const child = cliCommand(
    ["bench", "--host", "127.0.0.1", "-p", String(server.port), "-c", "2", "-t", "0.5", "--json"],
    { killAfter: 20_000 },
  ).spawn();
  await within("bench's first message", loaded.promise);
  child.kill("SIGINT");
  const { code, signal, stdout } = await child.output();
  equal(signal, null);
  equal(code, 130);
  const report = JSON.parse(new TextDecoder().decode(stdout));
  equal(report.interrupted, true);
  equal(report.ok, true);
  equal(report.errors.timeouts, 0);
  ok(report.unfinished >= 1 && report.unfinished <= 2, `unfinished ${report.unfinished}`);
});

Deno.test("bench --json-stream: one object per interval adding up to the report, and --hdr-log logs each interval", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const dir = await Deno.makeTempDir();
  try {
    const log = `${dir}/intervals.hlog`;
    const { code, stdout, stderr } = await runCli([
      "bench",
      "--host",
      "127.0.0.1",
      "--port",
      String(server.addr.port),
      "-c",
      "2",
      "--rate",
      "1000",
      "-d",
      "1.2",
      "--json-stream",
      "--interval",
      "0.5",
      "--hdr-log",
      log,
    ]);
    equal(code, 0, stderr);
    const objects = stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    const report = objects.pop();
    ok(objects.length >= 2, stdout);
    let at = 0;
    for (const stretch of objects) {
      equal(stretch.interval.start, at, "intervals follow each other");
      at = stretch.interval.end;
      deepEqual(Object.keys(stretch), [
        "interval",
        "messages",
        "bytes",
        "errors",
        "connects",
        "latency_us",
        "service_time_us",
      ]);
    }
    equal(objects.reduce((sum, s) => sum + s.messages, 0), report.messages);
    equal(objects.reduce((sum, s) => sum + s.connects, 0), 2);
    // The log holds one latency histogram per interval, their counts those of the stream.
    const reader = new HistogramLogReader(await Deno.readTextFile(log));
    const counts = [];
    for (let h = reader.nextIntervalHistogram(); h; h = reader.nextIntervalHistogram()) {
      if (h.tag === "latency") counts.push(h.totalCount);
    }
    deepEqual(counts, objects.map((s) => s.messages));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench times the first echo byte from each connect's own start, not from bench's wait", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  // Two connects a second: the first connection waits a second for the third before any message.
  const { code, report, stderr } = await benchJson(
    server.addr.port,
    "-c",
    "3",
    "--connect-rate",
    "2",
    "-n",
    "1",
  );
  equal(code, 0, stderr);
  equal(report.connects.made, 3);
  // The wait for the others (1 s) is not in it; a loopback connect and echo are far below 0.5 s.
  ok(report.connects.first_byte_us.max < 500_000, JSON.stringify(report.connects));
  ok(report.connects.first_byte_us.min >= report.connects.connect_us.min);
});

Deno.test("bench --udp counts the losses and duplicates of serve --udp's faults, and --assert judges them", async () => {
  await using server = await ServeProcess.start([
    "--udp",
    "--host",
    "127.0.0.1",
    "--drop-rate",
    "0.3",
    "--duplicate-rate",
    "0.3",
    "--seed",
    "7",
  ]);
  const { code, report, stderr } = await benchJson(
    server.port,
    "--udp",
    "-n",
    "400",
    "-w",
    "8",
    "-t",
    "0.3",
    "--assert",
    "lost=0",
  );
  equal(code, 99, stderr);
  equal(report.datagrams.sent, 400);
  ok(report.datagrams.lost > 0 && report.datagrams.duplicates > 0, JSON.stringify(report));
  // Every datagram was echoed once or lost; duplicates are extra, not messages.
  equal(report.messages + report.datagrams.lost, 400);
  equal(report.errors.mismatches, 0);
  ok(report.latency_us.p50 > 0);
  match(stderr, /^error: 1 of 1 threshold failed: lost=0 \(\d+, \d+ over\)\n$/);
});

Deno.test("bench --udp at a rate keeps the schedule and reports UDP in its header; stream-only flags are refused", async () => {
  await using server = await ServeProcess.start(["--udp", "--host", "127.0.0.1"]);
  const text = await runCli(
    ["bench", "--udp", "--host", "127.0.0.1", "--port", String(server.port)]
      .concat(["--rate", "500", "-d", "0.5"]),
  );
  equal(text.code, 0, text.stderr);
  match(text.stdout, /^bench 127\.0\.0\.1:\d+: UDP, 16 B datagrams, 1 in flight, /);
  match(
    text.stdout,
    /\ndatagrams: 250 sent, 250 echoed, 0 lost \(0 %\), 0 duplicated, \d+ reordered\n/,
  );
  for (const flag of [["--reconnect", "1"], ["-c", "2"], ["--expect-greeting"]]) {
    const refused = await runCli(["bench", "--udp", "--port", String(server.port), ...flag]);
    equal(refused.code, 2);
    match(refused.stderr, /works over streams only, not with --udp/);
  }
});
