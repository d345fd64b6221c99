/**
 * The mutants `deno task mutate` tries: each one small, plausible bug, written as the exact text
 * it replaces, with the test files that cover that code. A mutant whose text no longer appears
 * exactly once fails the run, so the list follows the code it mutates.
 *
 * @module
 */

/** One small bug put into one file. */
export interface Mutant {
  /** A short unique name, to run just this one: `deno task mutate ID`. */
  id: string;
  /** The file it changes, from the project root. */
  file: string;
  /** What the bug does, in a few words. */
  bug: string;
  /** Text that appears exactly once in `file`... */
  from: string;
  /** ...and what it becomes. */
  to: string;
  /** The test files to run against it. */
  tests: string[];
  /** Why no test can catch it: it behaves like the original. Such mutants are not run. */
  equivalent?: string;
}

const SERVER_TESTS = ["tests/cli/serve_test.ts", "tests/unit/echo_server_test.ts"];
const LIMIT_TESTS = ["tests/cli/limits_test.ts", "tests/unit/idle_timeout_test.ts"];
const SHUTDOWN_TESTS = [
  "tests/unit/echo_server_test.ts",
  "tests/cli/shutdown_test.ts",
  "tests/cli/signals_test.ts",
  "tests/unit/shutdown_read_test.ts",
];
const BENCH_TESTS = ["tests/cli/bench_test.ts", "tests/cli/bench_percentiles_test.ts"];
const FAULT_TESTS = ["tests/unit/fault_echo_test.ts", "tests/cli/fault_injection_test.ts"];

export const MUTANTS: Mutant[] = [
  {
    id: "max-connections-off-by-one",
    file: "lib/server/echo_server.ts",
    bug: "--max-connections N lets N+1 in",
    from: "if (this.#stats.open >= this.#maxConnections) {",
    to: "if (this.#stats.open > this.#maxConnections) {",
    tests: LIMIT_TESTS,
  },
  {
    id: "echo-drops-last-byte",
    file: "lib/server/echo_loop.ts",
    bug: "the echo loop drops the last byte of each chunk",
    from: `for (let written = 0; written < n;) {
      const sent = await conn.write(written === 0 ? chunk : chunk.subarray(written));`,
    to: `for (let written = 0; written < n - 1;) {
      const sent = await conn.write(chunk.subarray(written, n - 1));`,
    tests: ["tests/unit/bytes_literal_test.ts", ...SERVER_TESTS],
  },
  {
    id: "idle-timeout-tenth",
    file: "lib/server/echo_server.ts",
    bug: "the idle timer closes after a tenth of --idle-timeout",
    from: "if (silent < timeout) {",
    to: "if (silent < timeout / 10) {",
    tests: LIMIT_TESTS,
  },
  {
    id: "idle-timer-not-rearmed",
    file: "lib/server/echo_server.ts",
    bug: "an active connection is closed when its first idle timer fires",
    from: "connection.idleTimer = setTimeout(check, timeout - silent);\n        return;",
    to: "",
    tests: LIMIT_TESTS,
  },
  {
    id: "shutdown-discards-read",
    file: "lib/server/echo_loop.ts",
    bug: "a read completing once shutdown began is dropped as discarded",
    from: "if (discardedAfterFin(connection, stats, n)) break;",
    to: 'if (connection.state !== "open" || discardedAfterFin(connection, stats, n)) break;',
    tests: SHUTDOWN_TESTS,
  },
  {
    id: "shutdown-fin-too-early",
    file: "lib/server/echo_server.ts",
    bug: "the drain deadline sends FIN before a completed read is echoed",
    from: "await new Promise((resolve) => setTimeout(resolve, 0));\n    for (const connection",
    to: "for (const connection",
    tests: SHUTDOWN_TESTS,
  },
  {
    id: "echoed-counted-as-discarded",
    file: "lib/server/echo_loop.ts",
    bug: "bytes echoed while draining are counted as discarded",
    from: "stats.bytesEchoed += sent;",
    to:
      'if (connection.state === "draining") stats.bytesDiscarded += sent;\n      else stats.bytesEchoed += sent;',
    tests: SHUTDOWN_TESTS,
  },
  {
    id: "turned-away-not-closed",
    file: "lib/server/echo_server.ts",
    bug: "a connection beyond the limit is counted but left open",
    from: "limit: this.#maxConnections,\n      });\n      conn.close();",
    to: "limit: this.#maxConnections,\n      });",
    tests: LIMIT_TESTS,
  },
  {
    id: "histogram-p99-is-p90",
    file: "lib/metrics/latency_histogram.ts",
    bug: "p99 reports the 90th percentile",
    from: "p99: this.percentile(99),",
    to: "p99: this.percentile(90),",
    tests: ["tests/unit/latency_histogram_test.ts", ...BENCH_TESTS],
  },
  {
    id: "bench-json-p99-is-p90",
    file: "bench.ts",
    bug: "bench --json prints p90 as p99",
    from: "[percentileKey(p), histogram.percentile(p)]",
    to: "[percentileKey(p), histogram.percentile(p === 99 ? 90 : p)]",
    tests: BENCH_TESTS,
  },
  {
    id: "bench-table-p99-is-p90",
    file: "bench.ts",
    bug: "bench's table shows p90 in the p99 column",
    from: "[...percentiles.map((p) => histogram.percentile(p)), histogram.summary().max]",
    to:
      "[...percentiles.map((p) => histogram.percentile(p === 99 ? 90 : p)), histogram.summary().max]",
    tests: BENCH_TESTS,
  },
  {
    id: "bench-latency-from-first-byte",
    file: "lib/load/load.ts",
    bug: "bench times a round trip up to the first echoed byte instead of the last",
    from: "while (this.#received >= (this.#echoed + 1) * size && this.#echoed < this.#started) {",
    to: "while (this.#received > this.#echoed * size && this.#echoed < this.#started) {",
    tests: BENCH_TESTS,
  },
  {
    id: "bench-misses-extra-bytes",
    file: "lib/load/load.ts",
    bug: "bench does not count bytes nobody sent as a mismatch",
    from: "if (chunk.length > owed) errors.mismatches++;",
    to: "",
    tests: BENCH_TESTS,
  },
  {
    id: "send-misses-extra-bytes",
    file: "lib/client/_exchange.ts",
    bug: "send accepts a server that sends one byte more than it was given",
    from: "const extra = chunk.length - offset;\n    if (extra > 0) {",
    to: "const extra = chunk.length - offset;\n    if (extra > 1) {",
    tests: ["tests/cli/errors_test.ts", "tests/cli/send_hostile_server_test.ts"],
  },
  {
    id: "send-stall-timer-not-rearmed",
    file: "lib/client/_exchange.ts",
    bug: "send's timeout runs from the start, not from the last progress",
    from: "this.#received += n;\n        this.#arm();",
    to: "this.#received += n;",
    tests: ["tests/cli/errors_test.ts", "tests/cli/send_hostile_server_test.ts"],
  },
  {
    id: "repr-quote-choice",
    file: "lib/base/bytes_literal.ts",
    bug: "bytes holding both quote kinds are written in double quotes",
    from: "bytes.includes(SINGLE_QUOTE) && !bytes.includes(DOUBLE_QUOTE)",
    to: "bytes.includes(SINGLE_QUOTE)",
    tests: ["tests/unit/bytes_literal_test.ts"],
  },
  {
    id: "ipv6-peer-tuple",
    file: "lib/net/peer.ts",
    bug: "an IPv6 peer is logged as a pair, like IPv4",
    from: "${addr.port}, 0, 0)`",
    to: "${addr.port})`",
    tests: ["tests/unit/peer_test.ts", "tests/cli/ipv6_test.ts"],
  },
  {
    id: "ping-mdev-variance",
    file: "lib/client/round_trip_stats.ts",
    bug: "ping's mdev is the variance, not its square root",
    from: "mdevMs: Math.sqrt(variance)",
    to: "mdevMs: variance",
    tests: ["tests/cli/ping_test.ts", "tests/cli/send_test.ts"],
  },
  {
    id: "rtt-min-is-first",
    file: "lib/client/round_trip_stats.ts",
    bug: "ping's min is the first round trip instead of the smallest",
    from: "this.#min = Math.min(this.#min, ms);",
    to: "if (this.#count === 1) this.#min = ms;",
    tests: ["tests/cli/ping_test.ts", "tests/cli/send_test.ts"],
  },
  {
    id: "close-after-one-more",
    file: "lib/faults/close.ts",
    bug: "--close-after N echoes N+1 bytes before its FIN",
    from: "pieceLimit: (echoed) => limit - echoed,",
    to: "pieceLimit: (echoed) => limit - echoed + 1,",
    tests: FAULT_TESTS,
  },
  {
    id: "bandwidth-doubled",
    file: "lib/faults/bandwidth.ts",
    bug: "--bandwidth lets twice the rate through",
    from: "+ size * 1000 / rate;",
    to: "+ size * 500 / rate;",
    tests: FAULT_TESTS,
  },
  {
    id: "slice-ignored",
    file: "lib/faults/slice.ts",
    bug: "--slice writes each chunk whole",
    from: "pieceLimit: () => size,",
    to: "pieceLimit: () => Infinity,",
    tests: FAULT_TESTS,
  },
];
