import { deepEqual, equal, ok } from "node:assert/strict";
import { NO_BENCH_ERRORS, readExactly, runCli, TcpFixture, writeAll } from "../helpers.ts";

const SIZE = 16;
const MESSAGES = 100;
const MEDIUM_MS = 30;
const SLOW_MS = 150;

/**
 * Of every 20 messages, 12 are echoed at once, 7 after MEDIUM_MS and 1 after SLOW_MS: over 100
 * messages, ranks 1-60 are fast (p50), 61-95 medium (p90 is rank 90) and 96-100 slow (p99 is rank
 * 99, p99.9 rank 100).
 */
function delayOf(message: number): number {
  const place = message % 20;
  return place === 19 ? SLOW_MS : place >= 12 ? MEDIUM_MS : 0;
}

/** An echo server whose round trips follow {@linkcode delayOf}, message by message. */
function knownLatencyServer(): TcpFixture {
  return new TcpFixture(async (conn) => {
    for (let message = 0;; message++) {
      const bytes = await readExactly(conn, SIZE);
      if (bytes.length < SIZE) return;
      const delay = delayOf(message);
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      await writeAll(conn, bytes);
    }
  });
}

/** The bench flags for one connection sending MESSAGES messages one at a time. */
function benchArgs(port: number): string[] {
  return ["bench", "--host", "127.0.0.1", "-p", String(port), "-c", "1", "-w", "1", "-n", "100"];
}

/** Checks each percentile against the rank it must fall on, in microseconds. */
function checkPercentiles(latency: Record<string, number>): void {
  const { min, p50, p90, p99, p99_9, max } = latency;
  const fast = MEDIUM_MS * 1000;
  const slow = SLOW_MS * 1000;
  ok(min < fast, `min ${min} µs: a fast message`);
  ok(p50 < fast, `p50 ${p50} µs: a fast message`);
  ok(p90 >= fast && p90 < slow, `p90 ${p90} µs: a ${MEDIUM_MS} ms message`);
  ok(p99 >= slow, `p99 ${p99} µs: a ${SLOW_MS} ms message`);
  ok(p99_9 >= slow && max >= slow, `p99.9 ${p99_9} µs, max ${max} µs`);
}

Deno.test("bench --json reports each percentile at its rank of a known latency distribution", async () => {
  await using server = knownLatencyServer();
  const result = await runCli([...benchArgs(server.port), "--json"]);
  equal(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  equal(report.messages, MESSAGES);
  deepEqual(report.errors, NO_BENCH_ERRORS);
  checkPercentiles(report.latency_us);
  // 35 medium and 5 slow round trips over 100 messages put the mean above 18 ms.
  const floor = (35 * MEDIUM_MS + 5 * SLOW_MS) * 1000 / MESSAGES;
  ok(report.latency_us.mean >= floor, `mean ${report.latency_us.mean} µs`);
});

Deno.test("bench's table shows each percentile at its rank of a known latency distribution", async () => {
  await using server = knownLatencyServer();
  const result = await runCli(benchArgs(server.port));
  equal(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split("\n");
  // The table, wherever it is: a busy machine adds a generator-bound line after it.
  const header = lines.indexOf(
    "| messages | msgs/s | MiB/s | p50 | p90 | p99 | p99.9 | max | errors |",
  );
  ok(header > 0, result.stdout);
  const cells = lines[header + 2].split("|").slice(1, -1).map((cell) => cell.trim());
  equal(cells[0], String(MESSAGES));
  equal(cells[8], "none");
  const [p50, p90, p99, p99_9, max] = cells.slice(3, 8).map(parseMicros);
  checkPercentiles({ min: 0, p50, p90, p99, p99_9, max });
});

/** Reads a table cell such as `1,234 µs` or `31.2 ms` back in microseconds. */
function parseMicros(cell: string): number {
  const match = cell.match(/^([\d,.]+) (µs|ms)$/);
  if (!match) throw new Error(`not a duration: '${cell}'`);
  const value = Number(match[1].replaceAll(",", ""));
  return match[2] === "ms" ? value * 1000 : value;
}

Deno.test("bench times each round trip to the last byte of its echo, not the first", async () => {
  const SPLIT_MS = 50;
  // Echoes each message's first byte at once and the rest SPLIT_MS later.
  await using server = new TcpFixture(async (conn) => {
    for (;;) {
      const bytes = await readExactly(conn, SIZE);
      if (bytes.length < SIZE) return;
      await writeAll(conn, bytes.subarray(0, 1));
      await new Promise((resolve) => setTimeout(resolve, SPLIT_MS));
      await writeAll(conn, bytes.subarray(1));
    }
  });
  const result = await runCli([
    "bench",
    "--host",
    "127.0.0.1",
    "-p",
    String(server.port),
    "-n",
    "5",
    "--json",
  ]);
  equal(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  equal(report.messages, 5);
  ok(report.latency_us.min >= SPLIT_MS * 1000, `min ${report.latency_us.min} µs`);
});
