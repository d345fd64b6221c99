/**
 * `tcpecho bench`: the load generator on the command line.
 *
 * @module
 */

import { anyText, byteSize, duration, formatSize, wholeNumber } from "./cli/args.ts";
import { command, option, parseCommand, toggle } from "./cli/flags.ts";
import { renderHelp } from "./cli/help.ts";
import { errorReason, RuntimeError, UsageError } from "./lib/base/errors.ts";
import { durationForms, parseDuration } from "./lib/base/units.ts";
import { sleep } from "./lib/base/timers.ts";
import { shardOf } from "./lib/load/shard.ts";
import type { LatencyHistogram } from "./lib/metrics/latency_histogram.ts";
import {
  GENERATOR_LAG_LIMIT_US,
  type IntervalReport,
  type LoadProgress,
  type LoadReport,
  runLoad,
} from "./lib/load/load.ts";
import { formatAddress, isLoopback } from "./lib/net/peer.ts";
import { CLIENT_TRANSPORT_FLAGS, clientTransport } from "./cli/transport_flags.ts";
import { transportField, transportName, warnIfInsecure } from "./cli/transport_label.ts";
import { printLine } from "./cli/output.ts";
import { ExitCode } from "./cli/exit_codes.ts";
import {
  checkThresholds,
  parseThreshold,
  type Threshold,
  type ThresholdResult,
} from "./lib/load/thresholds.ts";
import { proxyHeaderFromFlags, SEND_PROXY_FLAGS } from "./cli/proxy_flags.ts";

const MAX_SIZE = 16 * 1024 * 1024;

/** `tcpecho bench`: what it does and the flags it takes. */
export const BENCH = command({
  name: "bench",
  summary: "load an echo server and measure its throughput and latency",
  description: `A load generator: drive a TCP echo server (ours, socat, any other) as hard as the
options say, check every echoed byte against what was sent, and report messages/s, MiB/s and
latency percentiles: round trips in a closed loop (the default), or with --rate an open loop timed
from when each message was due (corrected) and from when it was sent (service time). Connections
can be churned (--reconnect) and the report split by backend (--expect-greeting). Any corrupted
byte, early close, reset or timeout is counted and makes the exit code 1. Point it only at servers you run: it warns when the target is not a
loopback address. Speaks TCP (IPv4 or IPv6), TLS or Unix domain sockets.`,
  flags: {
    ...CLIENT_TRANSPORT_FLAGS,
    ...SEND_PROXY_FLAGS,
    udp: toggle({
      help: "load a UDP echo server: numbered datagrams of --size bytes (8 at least), --window " +
        "in flight or at --rate, with loss, duplicates and reordering counted",
    }),
    connections: option({
      short: "c",
      value: "N",
      help: "connections at once",
      default: "1",
      parse: wholeNumber(1, 10000),
    }),
    size: option({
      short: "s",
      value: "SIZE",
      help: "bytes per message, 1 B to 16 MiB",
      default: "16",
      parse: byteSize(1, MAX_SIZE),
    }),
    window: option({
      short: "w",
      value: "K",
      help: "messages in flight per connection",
      default: "1",
      parse: wholeNumber(1, 1024),
    }),
    duration: option({
      short: "d",
      value: "TIME",
      help: "how long to send for",
      absent: "5, unless --count",
      parse: duration(),
    }),
    count: option({
      short: "n",
      value: "N",
      help: "messages per connection, then stop",
      parse: wholeNumber(1, 1e12),
    }),
    timeout: option({
      short: "t",
      value: "TIME",
      help: "how long an echo may take before it counts as an error",
      default: "5",
      parse: duration(),
    }),
    rate: option({
      value: "N",
      help: "open loop: N messages per second over all connections on a fixed schedule, each " +
        "timed from when it was due (corrected) and from when it was sent (service time)",
      absent: "closed loop: each connection sends as soon as its window allows",
      parse: wholeNumber(1, 10_000_000),
    }),
    ramp: option({
      value: "TIME",
      help: "raise the load linearly over TIME: the rate with --rate, else the connections",
      absent: "full load at once",
      parse: duration(),
    }),
    reconnect: option({
      value: "N",
      help: "open a new connection every N messages per connection (1: one connection per " +
        "message), timing each connect, TLS handshake and first echo byte",
      absent: "one connection each for the whole run",
      parse: wholeNumber(1, 1e12),
    }),
    "connect-rate": option({
      value: "R",
      help: "open at most R new connections per second",
      absent: "no limit",
      parse: wholeNumber(1, 1_000_000),
    }),
    "expect-greeting": toggle({
      help: "read the server's greeting line (serve --greeting) first on every connection, keep " +
        "it out of the check, and report per greeting: per backend behind a load balancer",
    }),
    percentiles: option({
      value: "LIST",
      help: "latency percentiles to report, comma-separated",
      default: "50,90,99,99.9",
      parse: percentileList,
    }),
    histogram: option({
      value: "FILE",
      help: "write the latency distribution to FILE in HdrHistogram's text format (values in " +
        "ms), and with --rate the service time to FILE with .service before its extension",
      absent: "not written",
      parse: anyText,
    }),
    interval: option({
      value: "TIME",
      help: "print one line per TIME (messages, bytes, errors, connects and that " +
        "interval's percentiles), and with --hdr-log log each interval's histograms",
      absent: "a progress line on a terminal only",
      parse: duration(),
    }),
    "json-stream": toggle({
      help: "print one JSON object per --interval (1 s unless given), then the report's, one a " +
        "line (NDJSON); --json with --interval does the same",
    }),
    "hdr-log": option({
      value: "FILE",
      help: "write the run to FILE as an HdrHistogram interval log (tags latency, service, " +
        "connect, handshake, first-byte), which 'tcpecho bench merge' adds up exactly",
      absent: "not written",
      parse: anyText,
    }),
    shard: option({
      value: "I/N",
      help: "make share I (from 0) of N generators' load: 1/N of the connections and of --rate; " +
        "N alone takes I from JOB_COMPLETION_INDEX, as a Kubernetes Indexed Job sets it",
      absent: "the whole load",
      parse: shardSpec,
    }),
    "start-at": option({
      value: "TIME",
      help: "wait until TIME to start: a UTC time such as 2026-12-06T03:30:00Z, or +DURATION " +
        "from now, such as +10s; generators given the same TIME start together",
      absent: "at once",
      parse: startTime,
    }),
    assert: option({
      value: "EXPR",
      help: "a threshold the run must meet, else exit 99: p99<5ms, p99.9<20ms, service.p99<1ms, " +
        "connect.p99<2ms, errors=0, mismatches=0, msgs/s>=1000, kept-up, not-generator-bound; repeatable, or " +
        "comma-separated (latency is the corrected one with --rate unless service. is named)",
      absent: "no threshold",
      parse: thresholdList,
      repeatable: true,
    }),
    json: toggle({ help: "print one JSON object instead of the report" }),
  },
  notes: "On a terminal, a progress line is shown once a second on standard error. Refused and " +
    "timed-out connects are counted, not fatal, once the run has started (with --reconnect or " +
    "--ramp); any error counted makes the exit code 1.",
  examples: [
    "tcpecho bench --port 7 --duration 3",
    "tcpecho bench -c 50 -s 16 --json",
    "tcpecho bench -c 4 -s 64KiB -w 4 --count 1000",
    "tcpecho bench --tls --ca ca.pem --port 4433 -c 50",
    "tcpecho bench --unix /tmp/echo.sock -c 10",
    "tcpecho bench --send-proxy v2 --proxy-source 203.0.113.7:4242 -c 10",
    "tcpecho bench --rate 20000 -c 10 --duration 3 --histogram latency.hgrm",
    "tcpecho bench --reconnect 1 -c 50 --connect-rate 5000",
    "tcpecho bench --port 8000 --expect-greeting -c 10",
    "tcpecho bench --rate 5000 -c 20 --assert p99<5ms,errors=0,kept-up",
    "tcpecho bench --rate 5000 -c 20 --interval 1 --json-stream",
    "tcpecho bench --rate 40000 -c 200 --shard 0/4 --start-at +30s --hdr-log 0.hlog",
    "tcpecho bench --udp --port 7 --rate 1000 --duration 10 --assert lost=0",
  ],
});

/** `2/4` or `4` (the index to come from the environment). */
function shardSpec(text: string, flag: string): { index?: number; count: number } {
  const match = text.trim().match(/^(?:(\d+)\/)?(\d+)$/);
  const index = match?.[1] === undefined ? undefined : Number(match[1]);
  const count = Number(match?.[2]);
  if (!match || !(count >= 1 && count <= 10000) || (index !== undefined && index >= count)) {
    throw new UsageError(
      `${flag} must be I/N with 0 <= I < N <= 10000 (such as 0/4), or N alone, not '${text}'`,
    );
  }
  return { index, count };
}

/** `2026-12-06T03:30:00Z` or `+10s`, as milliseconds since the epoch or from now. */
function startTime(text: string, flag: string): { at?: number; after?: number } {
  const trimmed = text.trim();
  if (trimmed.startsWith("+")) {
    const after = parseDuration(trimmed.slice(1), "s");
    if (after !== undefined) return { after };
  } else if (/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(trimmed)) {
    const at = Date.parse(trimmed);
    if (!Number.isNaN(at)) return { at };
  }
  throw new UsageError(
    `${flag} must be a time with its zone such as 2026-12-06T03:30:00Z, or + and ` +
      `${durationForms("s")}, not '${text}'`,
  );
}

/** Parses `p99<5ms,errors=0` into thresholds. */
function thresholdList(text: string, flag: string): Threshold[] {
  return text.split(",").map((part) => parseThreshold(part, flag));
}

/** Parses `50,99,99.9` into percentiles, ascending and without repeats. */
function percentileList(text: string, flag: string): number[] {
  const parts = text.split(",").map((part) => part.trim());
  const values = parts.map((part) => /^\d+(\.\d+)?$/.test(part) ? Number(part) : NaN);
  if (parts.length > 12 || values.some((value) => !(value > 0 && value <= 100))) {
    throw new UsageError(
      `${flag} must be up to 12 percentiles above 0 and at most 100, comma-separated, such as ` +
        `50,99,99.9, not '${text}'`,
    );
  }
  return [...new Set(values)].sort((a, b) => a - b);
}

const numbers = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const decimals = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

/** Runs `tcpecho bench` with `args`; returns the exit code. */
export async function bench(args: string[]): Promise<number> {
  if (args[0] === "merge") return await benchMerge(args.slice(1));
  const { flags: values } = parseCommand(BENCH, args);
  if (values.help) {
    printLine(renderHelp(BENCH));
    return 0;
  }
  if (values.duration !== undefined && values.count !== undefined) {
    throw new UsageError(
      "give either --duration or --count, not both (see 'tcpecho bench --help')",
    );
  }
  const thresholds = values.assert ?? [];
  const needsRate = thresholds.find((threshold) => threshold.needsRate);
  if (needsRate && values.rate === undefined) {
    throw new UsageError(
      `--assert ${needsRate.expression} needs an open loop: add --rate (see 'tcpecho bench --help')`,
    );
  }
  const { endpoint, udp } = await clientTransport("bench", values);
  if (udp) checkUdpFlags(values);
  const share = values.shard === undefined
    ? { connections: values.connections, rate: values.rate }
    : shardOf(values, {
      count: values.shard.count,
      index: values.shard.index ?? jobIndex(values.shard.count),
    });
  const options = {
    ...endpoint,
    proxyHeader: proxyHeaderFromFlags("bench", values),
    ...share,
    size: values.size,
    window: values.window,
    duration: values.duration,
    count: values.count,
    timeout: values.timeout,
    ramp: values.ramp,
    reconnect: values.reconnect,
    connectRate: values["connect-rate"],
    expectGreeting: values["expect-greeting"],
  };
  const { hostname } = endpoint;
  if (hostname !== undefined && !isLoopback(hostname)) {
    console.error(
      `warning: ${hostname} is not a loopback address: this load goes over a real network`,
    );
  }
  warnIfInsecure(endpoint);
  // Say so before a long run, not after it.
  if (values.histogram !== undefined) checkWritable(histogramFiles(values.histogram, options.rate));
  if (values["hdr-log"] !== undefined) checkWritable([values["hdr-log"]]);
  const stream = values["json-stream"];
  const json = values.json || stream;
  const interval = values.interval ?? (stream ? 1000 : undefined);
  const intervals: IntervalReport[] = [];
  const onInterval = interval === undefined ? undefined : (stretch: IntervalReport) => {
    if (values["hdr-log"] !== undefined) intervals.push(stretch);
    printLine(
      json
        ? JSON.stringify(intervalJson(stretch, values.percentiles))
        : formatInterval(stretch, values.percentiles),
    );
  };
  const progress = !json && interval === undefined && Deno.stderr.isTerminal();
  // The first Ctrl-C ends the run and still reports it; a second one exits at once.
  const interrupt = new AbortController();
  const onSignal = () =>
    interrupt.signal.aborted ? Deno.exit(ExitCode.interrupted) : interrupt.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  let report: LoadReport;
  let startedAt = Date.now();
  try {
    if (values["start-at"] !== undefined) {
      const { at = startedAt + values["start-at"].after! } = values["start-at"];
      // A generator that starts late would skew the sum of all: refuse rather than start alone.
      if (at < startedAt - 1000) {
        throw new RuntimeError(
          `--start-at ${new Date(at).toISOString()} is ${
            formatSeconds((startedAt - at) / 1000)
          } past: give a later time`,
        );
      }
      await sleep(at - startedAt, interrupt.signal);
      startedAt = Math.max(at, Date.now());
    }
    report = udp
      ? await (await import("./lib/load/udp_load.ts")).runUdpLoad({
        ...options,
        signal: interrupt.signal,
      })
      : await runLoad({
        ...options,
        signal: interrupt.signal,
        onProgress: progress ? showProgress : undefined,
        interval,
        onInterval,
      });
  } catch (err) {
    if (json) {
      printLine(JSON.stringify({
        target: formatAddress(
          endpoint.unix === undefined
            ? { transport: "tcp", hostname: endpoint.hostname!, port: endpoint.port! }
            : { transport: "unix", path: endpoint.unix },
        ),
        ...transportField(transportName(endpoint)),
        ok: false,
        error: err instanceof Error ? err.message : String(err),
      }));
    }
    throw err;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    // Keep the last progress line when interrupted, so the report starts on a line of its own.
    if (progress) endProgress(interrupt.signal.aborted);
  }
  const percentiles = values.percentiles;
  const verdicts = checkThresholds(thresholds, report);
  printLine(
    json ? JSON.stringify(toJson(report, percentiles, verdicts)) : formatReport(report, {
      percentiles,
      // Connections are worth a table when they come and go.
      connections: values.reconnect !== undefined || values["connect-rate"] !== undefined,
      thresholds: verdicts,
    }),
  );
  if (!json && Deno.stdout.isTerminal()) printLine(formatChart(report));
  if (values.histogram !== undefined) await writeHistograms(values.histogram, report);
  if (values["hdr-log"] !== undefined) {
    const { formatHdrLog } = await import("./lib/load/hdr_log.ts");
    await writeText(values["hdr-log"], formatHdrLog(report, startedAt, intervals));
  }
  return exitCodeOf(report, verdicts);
}

/**
 * A hint when the mismatches look like a greeting taken for an echo: at least one a connection,
 * more than the messages echoed, and no greeting expected.
 */
function greetingHint(report: LoadReport): string {
  const { mismatches } = report.errors;
  if (report.backends.length > 0 || mismatches === 0) return "";
  if (mismatches < report.connects.made || mismatches <= report.messages) return "";
  return " (does the server send a greeting first? try --expect-greeting)";
}

/** Refuses the flags that mean nothing over UDP, naming the first one given. */
function checkUdpFlags(values: Record<string, unknown>): void {
  const streamOnly = [
    "reconnect",
    "connect-rate",
    "expect-greeting",
    "ramp",
    "interval",
    "json-stream",
    "send-proxy",
  ];
  const given = streamOnly.find((flag) => values[flag] !== undefined && values[flag] !== false);
  const flag = given ?? (values.connections !== 1 ? "connections" : undefined);
  if (flag !== undefined) {
    throw new UsageError(
      `--${flag} works over streams only, not with --udp (see 'tcpecho bench --help')`,
    );
  }
}

/** The Job's index of this pod, for `--shard N`. */
function jobIndex(count: number): number {
  const name = "JOB_COMPLETION_INDEX";
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
    throw new RuntimeError(
      `--shard ${count} reads ${name}: missing permission, run deno with --allow-env=${name}`,
    );
  }
  const text = Deno.env.get(name);
  if (text === undefined) {
    throw new UsageError(
      `--shard ${count} takes its index from ${name}, which is not set: give --shard I/${count}`,
    );
  }
  return shardSpec(`${text}/${count}`, name).index!;
}

/** `tcpecho bench merge`: what it does and the flags it takes. */
export const BENCH_MERGE = command({
  name: "bench merge",
  summary: "add the HdrHistogram logs of several bench runs into one report",
  description: `Adds the logs that 'tcpecho bench --hdr-log' wrote, as if one generator had made
all their load at once: messages, errors and rates add, the time is the longest run's, and each
histogram is the exact sum of theirs (percentiles cannot be averaged; histograms add). Prints the
same report as a run, and checks --assert thresholds on the sum.`,
  arguments: [
    { name: "FILE", usage: "FILE...", help: "logs written by bench --hdr-log", repeatable: true },
  ],
  flags: {
    percentiles: BENCH.flags.percentiles,
    assert: BENCH.flags.assert,
    json: BENCH.flags.json,
  },
  examples: ["tcpecho bench merge shard-*.hlog --assert 'p99<5ms'"],
});

/** Runs `tcpecho bench merge` with `args`; returns the exit code. */
async function benchMerge(args: string[]): Promise<number> {
  const { flags: values, positionals: files } = parseCommand(BENCH_MERGE, args);
  if (values.help) {
    printLine(renderHelp(BENCH_MERGE));
    return 0;
  }
  if (files.length === 0) {
    throw new UsageError("bench merge needs the logs to add (see 'tcpecho bench merge --help')");
  }
  const logs = await Promise.all(files.map(async (file) => {
    try {
      return await Deno.readTextFile(file);
    } catch (err) {
      throw new RuntimeError(`cannot read ${file}: ${errorReason(err)}`);
    }
  }));
  const { mergeHdrLogs } = await import("./lib/load/hdr_log.ts");
  const report = mergeHdrLogs(logs, files);
  const verdicts = checkThresholds(values.assert ?? [], report);
  printLine(
    values.json
      ? JSON.stringify(toJson(report, values.percentiles, verdicts))
      : formatReport(report, { percentiles: values.percentiles, thresholds: verdicts }),
  );
  return exitCodeOf(report, verdicts);
}

/** Writes `text` to `file`, saying which file could not be written. */
async function writeText(file: string, text: string): Promise<void> {
  try {
    await Deno.writeTextFile(file, text);
  } catch (err) {
    throw new RuntimeError(`cannot write ${file}: ${errorReason(err)}`);
  }
}

/**
 * The exit code of a run reported: 1 (thrown) when errors were counted, else 130 when
 * interrupted, else 99 when a threshold failed (said in one line), else 0.
 */
export function exitCodeOf(report: LoadReport, verdicts: ThresholdResult[]): number {
  if (!report.ok) {
    throw new RuntimeError(
      `the echo check failed: ${describeErrors(report)}${
        report.interrupted ? " (interrupted)" : ""
      }${report.mixUp === undefined ? greetingHint(report) : `: ${report.mixUp}`}`,
    );
  }
  if (report.interrupted) return ExitCode.interrupted;
  const failed = verdicts.filter((verdict) => !verdict.ok);
  if (failed.length > 0) {
    console.error(
      `error: ${failed.length} of ${verdicts.length} threshold${
        verdicts.length === 1 ? "" : "s"
      } failed: ${failed.map(describeVerdict).join("; ")}`,
    );
    return ExitCode.thresholdFailed;
  }
  return ExitCode.ok;
}

const encoder = new TextEncoder();

function showProgress(p: LoadProgress): void {
  const line = `${p.seconds.toFixed(0)} s: ${numbers.format(p.messages)} messages, ` +
    `${numbers.format(p.messagesPerSecond)}/s, p50 ${formatMicros(p.p50)}, ` +
    `${p.errors} error${p.errors === 1 ? "" : "s"}`;
  Deno.stderr.writeSync(encoder.encode(`\r\x1b[K${line}`));
}

function endProgress(keep: boolean): void {
  Deno.stderr.writeSync(encoder.encode(keep ? "\n" : "\r\x1b[K"));
}

/** One interval as a line of text: `1-2 s: 20,011 messages, 20,011/s, ... p99 210 µs`. */
function formatInterval(stretch: IntervalReport, percentiles: number[]): string {
  const seconds = stretch.end - stretch.start;
  const { histogram } = stretch;
  const figures = histogram.count === 0
    ? "no echo"
    : percentiles.map((p) => `p${p} ${formatMicros(histogram.percentile(p))}`).join(", ");
  return `${decimals.format(stretch.start)}-${decimals.format(stretch.end)} s: ` +
    `${numbers.format(stretch.messages)} messages, ` +
    `${numbers.format(seconds > 0 ? stretch.messages / seconds : 0)}/s, ${figures}, ` +
    `${stretch.errors} error${stretch.errors === 1 ? "" : "s"}, ` +
    `${numbers.format(stretch.connects)} connect${stretch.connects === 1 ? "" : "s"}`;
}

/** One interval as a JSON object of `--json-stream`. */
function intervalJson(stretch: IntervalReport, percentiles: number[]): Record<string, unknown> {
  const round = (value: number) => Number(value.toFixed(3));
  return {
    interval: { start: round(stretch.start), end: round(stretch.end) },
    messages: stretch.messages,
    bytes: stretch.bytes,
    errors: stretch.errors,
    connects: stretch.connects,
    latency_us: latencyJson(stretch.histogram, percentiles),
    ...(stretch.serviceTime && {
      service_time_us: latencyJson(stretch.serviceTime, percentiles),
    }),
  };
}

/** A histogram's min, mean, percentiles and max in JSON; all null when nothing was measured. */
function latencyJson(histogram: LatencyHistogram, percentiles: number[]): Record<string, unknown> {
  const summary = histogram.summary();
  // Nothing measured is no figure at all, not 0 µs.
  if (summary.count === 0) {
    const keys = ["min", "mean", ...percentiles.map(percentileKey), "max"];
    return Object.fromEntries(keys.map((key) => [key, null]));
  }
  return {
    min: summary.min,
    mean: Number(summary.mean.toFixed(1)),
    ...Object.fromEntries(percentiles.map((p) => [percentileKey(p), histogram.percentile(p)])),
    max: summary.max,
  };
}

/** The percentiles a report shows when `--percentiles` is not given. */
const DEFAULT_PERCENTILES = [50, 90, 99, 99.9];

/** `p99<5ms (7.2 ms, 2.2 ms over)`: a threshold, what was measured and by how much it missed. */
function describeVerdict({ threshold, value }: ThresholdResult): string {
  if (value === null) return `${threshold.expression} (nothing measured)`;
  if (typeof value === "boolean") return `${threshold.expression} (${value ? "yes" : "no"})`;
  const show = (n: number) => threshold.latency ? formatMicros(n) : decimals.format(n);
  const missed = Math.abs(value - threshold.limit!);
  const side = value > threshold.limit! ? "over" : "under";
  return `${threshold.expression} (${show(value)}${missed > 0 ? `, ${show(missed)} ${side}` : ""})`;
}

/** What a report shows beyond the main table. */
export interface ReportOptions {
  /** Thresholds checked (`--assert`): a line each, with its verdict. */
  thresholds?: ThresholdResult[];
  /** The latency percentiles, ascending. Default 50, 90, 99 and 99.9. */
  percentiles?: number[];
  /** Add how connections were opened: connect, TLS handshake and first echo byte times. */
  connections?: boolean;
}

/** The report as small markdown tables, readable as plain text too. */
export function formatReport(report: LoadReport, options: ReportOptions = {}): string {
  const { percentiles = DEFAULT_PERCENTILES } = options;
  const load = report.datagrams
    ? `UDP, ${formatSize(report.size)} datagrams, ${report.window} in flight`
    : `${report.connections} connection${report.connections === 1 ? "" : "s"} x ` +
      `${formatSize(report.size)}, ${report.window} in flight each`;
  const columns = percentiles.map((p) => `p${p}`);
  const latencyOf = (histogram: LatencyHistogram) =>
    histogram.count === 0
      ? Array(percentiles.length + 1).fill("-")
      : [...percentiles.map((p) => histogram.percentile(p)), histogram.summary().max].map(
        formatMicros,
      );
  const lines = [
    `bench ${formatAddress(report.target)}: ${load}, ${formatSeconds(report.seconds)}${
      report.interrupted
        ? ` (interrupted${report.unfinished > 0 ? `, ${report.unfinished} echoes unfinished` : ""})`
        : ""
    }`,
    "",
    `| messages | msgs/s | MiB/s | ${columns.join(" | ")} | max | errors |`,
    `|---:|---:|---:|${"---:|".repeat(columns.length)}---:|---|`,
    `| ${
      [
        numbers.format(report.messages),
        numbers.format(report.messagesPerSecond),
        decimals.format(report.mibPerSecond),
        ...latencyOf(report.histogram),
        report.ok ? "none" : describeErrors(report),
      ].join(" | ")
    } |`,
  ];
  if (report.datagrams) {
    const { sent, lost, duplicates, reordered } = report.datagrams;
    lines.push(
      "",
      `datagrams: ${numbers.format(sent)} sent, ${numbers.format(report.messages)} echoed, ` +
        `${numbers.format(lost)} lost (${
          decimals.format(sent > 0 ? (lost / sent) * 100 : 0)
        } %), ` +
        `${numbers.format(duplicates)} duplicated, ${numbers.format(reordered)} reordered`,
    );
  }
  const table = (title: string, rows: [string, LatencyHistogram | undefined][]) => [
    "",
    `| ${title} | ${columns.join(" | ")} | max |`,
    `|---|${"---:|".repeat(columns.length)}---:|`,
    ...rows.flatMap(([name, histogram]) =>
      histogram ? [`| ${name} | ${latencyOf(histogram).join(" | ")} |`] : []
    ),
  ];
  if (report.rate && report.serviceTime) {
    lines.push("", describeRate(report));
    lines.push(...table("latency", [
      ["corrected (from when due)", report.histogram],
      ["service time (from when sent)", report.serviceTime],
      ["send delay (from when due to sent)", report.audit.sendDelay],
    ]));
  }
  const { connects } = report;
  // Without churn, one line is enough for a handful of handshakes.
  if (connects.handshakeTime && !options.connections) {
    const handshake = connects.handshakeTime.summary();
    lines.push(
      "",
      `TLS handshakes: p50 ${formatMicros(handshake.p50)}, p99 ${formatMicros(handshake.p99)}, ` +
        `max ${formatMicros(handshake.max)}`,
    );
  }
  if (options.connections) {
    const { refused, connectTimeouts } = report.errors;
    lines.push(
      "",
      `connections: ${numbers.format(connects.made)} made, ${numbers.format(refused)} refused, ` +
        `${numbers.format(connectTimeouts)} timed out`,
    );
    lines.push(...table("connection", [
      ["connect", connects.connectTime],
      ["TLS handshake", connects.handshakeTime],
      ["first echo byte", connects.firstByte],
    ]));
  }
  if (report.backends.length > 0) {
    lines.push(
      "",
      `| backend | connections | messages | ${columns.join(" | ")} | max |`,
      `|---|---:|---:|${"---:|".repeat(columns.length)}---:|`,
      ...report.backends.map((backend) =>
        `| ${backend.greeting.replaceAll("|", "\\|")} | ${numbers.format(backend.connections)} | ${
          numbers.format(backend.messages)
        } | ${latencyOf(backend.histogram).join(" | ")} |`
      ),
    );
  }
  if (report.audit.generatorBound) {
    lines.push(
      "",
      `GENERATOR-BOUND: bench's own event loop ran ${
        formatMicros(report.audit.eventLoopLag.percentile(99))
      } late at p99 (over ${
        formatMicros(GENERATOR_LAG_LIMIT_US)
      }): this machine limited the run, and its figures include its own delays`,
    );
  }
  if (options.thresholds?.length) {
    lines.push(
      "",
      ...options.thresholds.map((verdict) =>
        `threshold ${verdict.ok ? "met" : "FAILED"}: ${describeVerdict(verdict)}`
      ),
    );
  }
  return lines.join("\n");
}

/** Whether the open loop kept its schedule, in one line. */
function describeRate(report: LoadReport): string {
  const rate = report.rate!;
  const asked = `open loop at ${numbers.format(rate.target)} msgs/s` +
    (rate.scheduledPerSecond < rate.target * 0.99
      ? ` (${numbers.format(rate.scheduledPerSecond)} msgs/s on average with the ramp)`
      : "");
  if (rate.keptUp) return `${asked}: kept up, ${numbers.format(report.messagesPerSecond)} msgs/s`;
  return `${asked}: NOT kept up, only ${numbers.format(report.messagesPerSecond)} msgs/s ` +
    `(below 99 %): the server or the client could not keep up, and latency includes the wait`;
}

function formatChart(report: LoadReport): string {
  const rows = report.histogram.distribution(8);
  const most = Math.max(...rows.map((row) => row.count), 1);
  const lines = rows.map((row) =>
    `  <= ${formatMicros(row.upTo).padStart(9)} ${
      "#".repeat(Math.ceil((row.count / most) * 40)).padEnd(41)
    }${numbers.format(row.count)}`
  );
  return ["", report.rate ? "corrected latency:" : "round trips:", ...lines].join("\n");
}

/** Seconds as the header shows them: a short run in milliseconds rather than "0 s". */
function formatSeconds(seconds: number): string {
  return seconds < 1 ? `${decimals.format(seconds * 1000)} ms` : `${decimals.format(seconds)} s`;
}

function formatMicros(micros: number): string {
  return micros >= 10_000 ? `${decimals.format(micros / 1000)} ms` : `${numbers.format(micros)} µs`;
}

function describeErrors(report: LoadReport): string {
  const { mismatches, earlyCloses, resets, timeouts, refused, connectTimeouts } = report.errors;
  const parts: [number, string, string][] = [
    [mismatches, "mismatch", "mismatches"],
    [earlyCloses, "early close", "early closes"],
    [resets, "reset", "resets"],
    [timeouts, "timeout", "timeouts"],
    [refused, "refused connect", "refused connects"],
    [connectTimeouts, "connect timeout", "connect timeouts"],
  ];
  return parts.filter(([n]) => n > 0).map(([n, one, many]) => `${n} ${n === 1 ? one : many}`)
    .join(", ");
}

/** The files `--histogram FILE` writes: FILE, and with an open loop the service time beside it. */
function histogramFiles(path: string, rate: number | undefined): string[] {
  return rate === undefined ? [path] : [path, servicePath(path)];
}

/**
 * Fails at once when Deno may not write `files`, naming the flag that allows it, or when the
 * folder of one is missing: better before a long run than after it.
 */
function checkWritable(files: string[]): void {
  for (const file of files) {
    const folder = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) || "/" : ".";
    let isFolder = true;
    try {
      isFolder = Deno.statSync(folder).isDirectory;
    } catch (err) {
      // Without read permission the write itself will say what is wrong.
      if (err instanceof Deno.errors.NotFound) isFolder = false;
    }
    if (!isFolder) throw new RuntimeError(`cannot write ${file}: no folder ${folder}`);
  }
  const denied = files.find((path) =>
    Deno.permissions.querySync({ name: "write", path }).state !== "granted"
  );
  if (denied !== undefined) {
    throw new RuntimeError(
      `cannot write ${denied}: missing permission, run deno with --allow-write=${denied}`,
    );
  }
}

/**
 * Writes the latency distribution in HdrHistogram's text format to `path`, and with an open loop
 * the service time beside it (`latency.hgrm` and `latency.service.hgrm`).
 */
async function writeHistograms(path: string, report: LoadReport): Promise<void> {
  const [main, service] = histogramFiles(path, report.rate?.target);
  const files: [string, LatencyHistogram | undefined][] = [
    [main, report.histogram],
    [service, report.serviceTime],
  ];
  for (const [file, histogram] of files) {
    if (file === undefined || histogram === undefined) continue;
    await writeText(file, histogram.percentileDistribution());
  }
}

/** `latency.hgrm` -> `latency.service.hgrm`; `latency` -> `latency.service`. */
function servicePath(path: string): string {
  const match = path.match(/^(.*[^/.])(\.[^./]+)$/);
  return match ? `${match[1]}.service${match[2]}` : `${path}.service`;
}

/** `99.9` -> `p99_9`, the way JSON names a percentile. */
function percentileKey(percentile: number): string {
  return `p${String(percentile).replace(".", "_")}`;
}

function toJson(
  report: LoadReport,
  percentiles = DEFAULT_PERCENTILES,
  verdicts: ThresholdResult[] = [],
): Record<string, unknown> {
  const round = (value: number, digits: number) => Number(value.toFixed(digits));
  const { errors, connects } = report;
  const latency = (histogram: LatencyHistogram) => latencyJson(histogram, percentiles);
  return {
    target: formatAddress(report.target),
    connections: report.connections,
    size: report.size,
    window: report.window,
    seconds: round(report.seconds, 3),
    messages: report.messages,
    bytes: report.bytes,
    msgs_per_s: round(report.messagesPerSecond, 0),
    mib_per_s: round(report.mibPerSecond, 2),
    ...(report.rate && {
      rate: {
        target: report.rate.target,
        scheduled: report.rate.scheduled,
        scheduled_per_s: round(report.rate.scheduledPerSecond, 0),
        kept_up: report.rate.keptUp,
      },
    }),
    latency_us: latency(report.histogram),
    ...(connects.handshakeTime && { handshake_us: latency(connects.handshakeTime) }),
    ...(report.serviceTime && { service_time_us: latency(report.serviceTime) }),
    connects: {
      made: connects.made,
      attempted: connects.attempted,
      connect_us: latency(connects.connectTime),
      first_byte_us: latency(connects.firstByte),
    },
    ...(report.backends.length > 0 && {
      backends: report.backends.map((backend) => ({
        greeting: backend.greeting,
        connections: backend.connections,
        messages: backend.messages,
        latency_us: latency(backend.histogram),
        ...(backend.serviceTime && { service_time_us: latency(backend.serviceTime) }),
      })),
    }),
    ...(report.datagrams && { datagrams: report.datagrams }),
    generator: {
      event_loop_lag_us: latency(report.audit.eventLoopLag),
      ...(report.audit.sendDelay && { send_delay_us: latency(report.audit.sendDelay) }),
      bound: report.audit.generatorBound,
    },
    errors: {
      mismatches: errors.mismatches,
      early_closes: errors.earlyCloses,
      resets: errors.resets,
      timeouts: errors.timeouts,
      refused: errors.refused,
      connect_timeouts: errors.connectTimeouts,
    },
    ok: report.ok,
    ...(verdicts.length > 0 && {
      thresholds: verdicts.map(({ threshold, value, ok }) => ({
        expression: threshold.expression,
        value: typeof value === "number" ? round(value, 2) : value,
        ...(threshold.latency && { unit: "us" }),
        ok,
      })),
    }),
    ...(report.interrupted ? { interrupted: true, unfinished: report.unfinished } : {}),
  };
}
