import { deepEqual, equal, match, ok } from "node:assert/strict";
import { startEchoServer } from "../../lib/mod.ts";
import { makeCertificates } from "../certificates.ts";
import { benchJson, needs, runCli, TcpFixture } from "../helpers.ts";

/**
 * An echo server that stalls: for the first `stallMs` of every `periodMs` from its start, it holds
 * what it reads and echoes it when the stall ends (wrk2's demonstration of coordinated omission).
 */
function stallingServer(periodMs: number, stallMs: number): TcpFixture {
  const started = performance.now();
  return new TcpFixture(async (conn) => {
    const buffer = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) return;
      const phase = (performance.now() - started) % periodMs;
      // The stall itself, not a synchronisation: the server's misbehaviour under test.
      if (phase < stallMs) await new Promise((resolve) => setTimeout(resolve, stallMs - phase));
      for (let written = 0; written < n;) {
        written += await conn.write(buffer.subarray(written, n));
      }
    }
  });
}

Deno.test("bench --rate: a server stalling 500 ms a second shows in corrected latency, not in service time", async () => {
  await using server = stallingServer(1000, 500);
  const { code, stderr, report } = await benchJson(
    server.port,
    "--rate",
    "1000",
    "-c",
    "4",
    "--duration",
    "3",
  );
  equal(stderr, "");
  equal(code, 0);
  // Half of each second's messages fall due in a stall and wait up to 500 ms for it to end.
  ok(report.latency_us.p99 >= 200_000, `corrected p99 ${report.latency_us.p99} µs`);
  // Only the one message in flight on each connection when a stall starts is served slowly.
  ok(report.service_time_us.p99 < 50_000, `service p99 ${report.service_time_us.p99} µs`);
  // Every message due was sent and timed, however late (a stall at the very end may leave the
  // schedule not kept: that is what happened).
  equal(report.rate.scheduled, 3000);
  equal(report.messages, 3000);
});

Deno.test("bench --rate reports corrected latency first, then service time, and the schedule kept", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0, bufferSize: 4096 });
  const { code, stdout, stderr } = await runCli([
    "bench",
    "--host",
    "127.0.0.1",
    "--port",
    String(server.addr.port),
    "--rate",
    "400",
    "-c",
    "2",
    "--duration",
    "1",
  ]);
  equal(stderr, "");
  equal(code, 0);
  const lines = stdout.trimEnd().split("\n");
  // 1 s, or more when the client could not send the last messages on time.
  match(lines[0], /^bench 127\.0\.0\.1:\d+: 2 connections x 16 B, 1 in flight each, [\d.]+ s$/);
  match(lines[4], /^\| 400 \| \d+ \| 0\.01 \| /);
  // Kept up, unless the machine held the client back at the very end of the second.
  match(
    lines[6],
    /^open loop at 400 msgs\/s: (kept up, \d+ msgs\/s|NOT kept up, only \d+ msgs\/s)/,
  );
  equal(lines[8], "| latency | p50 | p90 | p99 | p99.9 | max |");
  match(lines[10], /^\| corrected \(from when due\) \| /);
  match(lines[11], /^\| service time \(from when sent\) \| /);
  equal(server.stats.bytesEchoed, 400 * 16);
});

Deno.test("bench --rate says when the server could not keep up", async () => {
  // Each echo takes 20 ms: one connection manages about 50 a second, not 500.
  await using server = new TcpFixture(async (conn) => {
    const buffer = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
      await conn.write(buffer.subarray(0, n));
    }
  });
  const result = await runCli([
    "bench",
    "--host",
    "127.0.0.1",
    "--port",
    String(server.port),
    "--rate",
    "500",
    "--duration",
    "0.5",
  ]);
  equal(result.code, 0);
  match(result.stdout, /\nopen loop at 500 msgs\/s: NOT kept up, only \d+ msgs\/s \(below 99 %\)/);
  const { report } = await benchJson(server.port, "--rate", "500", "-d", "0.5");
  equal(report.rate.kept_up, false);
  ok(report.msgs_per_s < 100, `${report.msgs_per_s} msgs/s`);
  // The messages that waited for the slow ones are timed from when they were due.
  ok(report.latency_us.max > 5 * report.service_time_us.max);
});

Deno.test("bench --ramp raises the rate linearly: half the messages over the ramp", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const { code, report } = await benchJson(
    server.addr.port,
    "--rate",
    "1000",
    "--ramp",
    "1",
    "--duration",
    "2",
    "-c",
    "3",
  );
  equal(code, 0);
  // 500 messages during the 1 s ramp, then 1,000 in the next second.
  equal(report.rate.scheduled, 1500);
  equal(report.messages, 1500);
});

Deno.test("bench --histogram writes HdrHistogram's percentile distribution, service time beside it", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const dir = await Deno.makeTempDir({ prefix: "tcpecho-hgrm-" });
  try {
    const { code, report } = await benchJson(
      server.addr.port,
      "--rate",
      "500",
      "-d",
      "0.5",
      "--histogram",
      `${dir}/latency.hgrm`,
    );
    equal(code, 0);
    for (const [file, count] of [["latency.hgrm", 250], ["latency.service.hgrm", 250]] as const) {
      const text = await Deno.readTextFile(`${dir}/${file}`);
      const lines = text.split("\n");
      equal(lines[0], "       Value     Percentile TotalCount 1/(1-Percentile)");
      equal(lines[1], "");
      const rows = lines.slice(2).filter((line) => line !== "" && !line.startsWith("#"));
      const last = rows.at(-1)!.trim().split(/\s+/);
      deepEqual(last.slice(1), ["1.000000000000", String(count)]);
      match(text, new RegExp(`\\n#\\[Max     = +[\\d.]+, Total count    = +${count}\\]\\n`));
    }
    // Values are in milliseconds: the last row is the maximum, within HdrHistogram's precision.
    const last = (await Deno.readTextFile(`${dir}/latency.hgrm`)).split("\n")
      .filter((line) => /^ +\d/.test(line)).at(-1)!;
    const maxMs = Number(last.trim().split(/\s+/)[0]);
    ok(Math.abs(maxMs * 1000 - report.latency_us.max) <= report.latency_us.max * 0.002 + 1);
    // Without leave to write, it says so before the run, naming the flag.
    const denied = await runCli(
      ["bench", "--port", String(server.addr.port), "--histogram", `${dir}/denied.hgrm`],
      { permissions: ["--allow-net"] },
    );
    equal(denied.code, 1);
    equal(
      denied.stderr,
      `error: cannot write ${dir}/denied.hgrm: missing permission, run deno with ` +
        `--allow-write=${dir}/denied.hgrm\n`,
    );
    equal(denied.stdout, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench --percentiles picks the report's columns and JSON keys", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const port = String(server.addr.port);
  const { report } = await benchJson(server.addr.port, "-n", "200", "--percentiles", "99.99,50,75");
  deepEqual(Object.keys(report.latency_us), ["min", "mean", "p50", "p75", "p99_99", "max"]);
  const text = await runCli([
    "bench",
    "--port",
    port,
    "--host",
    "127.0.0.1",
    "-n",
    "20",
    "--percentiles",
    "75,99.99",
  ]);
  match(text.stdout, /\n\| messages \| msgs\/s \| MiB\/s \| p75 \| p99\.99 \| max \| errors \|\n/);
  for (const bad of ["", "0", "50,101", "fifty", "1,2,3,4,5,6,7,8,9,10,11,12,13"]) {
    const result = await runCli(["bench", "--port", port, "--percentiles", bad]);
    equal(result.code, 2, `--percentiles '${bad}'`);
    match(
      result.stderr,
      /^error: --percentiles must be up to 12 percentiles above 0 and at most 100/,
    );
  }
});

Deno.test("bench --reconnect 1 opens a connection per message and times each connect and first byte", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const { code, report } = await benchJson(
    server.addr.port,
    "--reconnect",
    "1",
    "-c",
    "4",
    "-n",
    "25",
  );
  equal(code, 0);
  equal(report.messages, 100);
  equal(report.connects.made, 100);
  equal(server.stats.connections, 100);
  deepEqual(Object.keys(report.connects), ["made", "attempted", "connect_us", "first_byte_us"]);
  ok(report.connects.first_byte_us.p50 >= report.connects.connect_us.p50);
  const text = await runCli([
    "bench",
    "--host",
    "127.0.0.1",
    "--port",
    String(server.addr.port),
    "--reconnect",
    "5",
    "-n",
    "10",
  ]);
  match(text.stdout, /\nconnections: 2 made, 0 refused, 0 timed out\n/);
  match(text.stdout, /\n\| connect \| .*\n\| first echo byte \| /);
});

Deno.test(needs("openssl", "bench --tls --reconnect times each TLS handshake"), async () => {
  await using certificates = await makeCertificates();
  const { cert, key, ca } = certificates;
  await using server = await startEchoServer({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: await Deno.readTextFile(cert), key: await Deno.readTextFile(key) },
  });
  const { code, report } = await benchJson(
    server.addr.port,
    "--tls",
    "--ca",
    ca,
    "--reconnect",
    "2",
    "-n",
    "10",
  );
  equal(code, 0);
  equal(report.connects.made, 5);
  deepEqual(Object.keys(report.connects), ["made", "attempted", "connect_us", "first_byte_us"]);
  // Five handshakes, one per connection, each timed.
  ok(report.handshake_us.min > 0 && report.handshake_us.p50 <= report.handshake_us.max);
});

Deno.test("bench --reconnect counts refused connects instead of stopping, and fails the run", async () => {
  // Accepts five connections, then stops listening: every later connect is refused.
  let accepted = 0;
  const fixture = new TcpFixture(async (conn) => {
    if (++accepted === 5) fixture.listener.close();
    const buffer = new Uint8Array(64);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) return;
      await conn.write(buffer.subarray(0, n));
    }
  });
  await using server = fixture;
  const { code, report, stderr } = await benchJson(
    server.port,
    "--reconnect",
    "1",
    "-d",
    "1",
    "-t",
    "0.3",
  );
  equal(code, 1);
  equal(report.messages, 5);
  ok(report.errors.refused > 0, JSON.stringify(report.errors));
  // Attempts against made: the refused ones were attempted, and backed off, not hammered.
  equal(report.connects.attempted, report.connects.made + report.errors.refused);
  match(stderr, /^error: the echo check failed: \d+ refused connects?\n$/);
});

Deno.test("bench --connect-rate caps new connections per second", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const { code, report } = await benchJson(
    server.addr.port,
    "--reconnect",
    "1",
    "--connect-rate",
    "50",
    "-c",
    "5",
    "-d",
    "1",
  );
  equal(code, 0);
  // One connect every 20 ms from the start: at most 51 begin within the second.
  ok(report.connects.made <= 51 && report.connects.made >= 10, `${report.connects.made} made`);
});
