/**
 * `tcpecho bench`: the load generator on the command line.
 *
 * @module
 */

import { byteSize, duration, formatSize, wholeNumber } from "./cli/args.ts";
import { command, option, parseCommand, toggle } from "./cli/flags.ts";
import { renderHelp } from "./cli/help.ts";
import { RuntimeError, UsageError } from "./lib/errors.ts";
import { type LoadProgress, type LoadReport, runLoad } from "./lib/load.ts";
import { formatAddress, isLoopback } from "./lib/peer.ts";
import { CLIENT_TRANSPORT_FLAGS, clientTransport } from "./cli/transport_flags.ts";
import { transportField, transportName, warnIfInsecure } from "./cli/transport_label.ts";
import { printLine } from "./cli/output.ts";
import { ExitCode } from "./cli/exit_codes.ts";
import { proxyHeaderFromFlags, SEND_PROXY_FLAGS } from "./cli/proxy_flags.ts";

const MAX_SIZE = 16 * 1024 * 1024;

/** `tcpecho bench`: what it does and the flags it takes. */
export const BENCH = command({
  name: "bench",
  summary: "load an echo server and measure its throughput and latency",
  description: `A load generator: drive a TCP echo server (ours, socat, any other) as hard as the
options say, check every echoed byte against what was sent, and report messages/s, MiB/s and
round-trip latency percentiles. Any corrupted byte, early close, reset or timeout is counted and
makes the exit code 1. Point it only at servers you run: it warns when the target is not a
loopback address. Speaks TCP (IPv4 or IPv6), TLS or Unix domain sockets.`,
  flags: {
    ...CLIENT_TRANSPORT_FLAGS,
    ...SEND_PROXY_FLAGS,
    udp: toggle({ help: "refused: bench loads stream servers only (TCP, TLS, Unix sockets)" }),
    connections: option({
      short: "c",
      value: "N",
      help: "connections at once",
      default: "1",
      parse: wholeNumber(1, 10000),
    }),
    size: option({
      short: "s",
      value: "BYTES",
      help: "bytes per message, 1 B to 16 MiB; takes suffixes KiB and MiB",
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
      value: "S",
      help: "seconds to send for",
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
      value: "S",
      help: "seconds an echo may take before it counts as an error",
      default: "5",
      parse: duration(),
    }),
    json: toggle({ help: "print one JSON object instead of the report" }),
  },
  notes: "On a terminal, a progress line is shown once a second on standard error.",
  examples: [
    "tcpecho bench --port 7 --duration 3",
    "tcpecho bench -c 50 -s 16 --json",
    "tcpecho bench -c 4 -s 64KiB -w 4 --count 1000",
    "tcpecho bench --tls --ca ca.pem --port 4433 -c 50",
    "tcpecho bench --unix /tmp/echo.sock -c 10",
    "tcpecho bench --send-proxy v2 --proxy-source 203.0.113.7:4242 -c 10",
  ],
});

const numbers = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const decimals = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

/** Runs `tcpecho bench` with `args`; returns the exit code. */
export async function bench(args: string[]): Promise<number> {
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
  const { endpoint, udp } = await clientTransport("bench", values);
  if (udp) {
    throw new UsageError("bench loads stream servers only, not --udp (see 'tcpecho bench --help')");
  }
  const options = {
    ...endpoint,
    proxyHeader: proxyHeaderFromFlags("bench", values),
    connections: values.connections,
    size: values.size,
    window: values.window,
    duration: values.duration,
    count: values.count,
    timeout: values.timeout,
  };
  const { hostname } = endpoint;
  if (hostname !== undefined && !isLoopback(hostname)) {
    console.error(
      `warning: ${hostname} is not a loopback address: this load goes over a real network`,
    );
  }
  warnIfInsecure(endpoint);
  const progress = !values.json && Deno.stderr.isTerminal();
  // The first Ctrl-C ends the run and still reports it; a second one exits at once.
  const interrupt = new AbortController();
  const onSignal = () =>
    interrupt.signal.aborted ? Deno.exit(ExitCode.interrupted) : interrupt.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  let report: LoadReport;
  try {
    report = await runLoad({
      ...options,
      signal: interrupt.signal,
      onProgress: progress ? showProgress : undefined,
    });
  } catch (err) {
    if (values.json) {
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
  printLine(values.json ? JSON.stringify(toJson(report)) : formatReport(report));
  if (!values.json && Deno.stdout.isTerminal()) printLine(formatChart(report));
  if (!report.ok) {
    throw new RuntimeError(
      `the echo check failed: ${describeErrors(report)}${
        report.interrupted ? " (interrupted)" : ""
      }`,
    );
  }
  return report.interrupted ? ExitCode.interrupted : ExitCode.ok;
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

/** The report as a small markdown table, readable as plain text too. */
export function formatReport(report: LoadReport): string {
  const { latency } = report;
  const load = `${report.connections} connection${report.connections === 1 ? "" : "s"} x ` +
    `${formatSize(report.size)}, ${report.window} in flight each`;
  return [
    `bench ${formatAddress(report.target)}: ${load}, ${formatSeconds(report.seconds)}${
      report.interrupted ? " (interrupted)" : ""
    }`,
    "",
    "| messages | msgs/s | MiB/s | p50 | p90 | p99 | p99.9 | max | errors |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    `| ${
      [
        numbers.format(report.messages),
        numbers.format(report.messagesPerSecond),
        decimals.format(report.mibPerSecond),
        ...[latency.p50, latency.p90, latency.p99, latency.p99_9, latency.max].map(formatMicros),
        report.ok ? "none" : describeErrors(report),
      ].join(" | ")
    } |`,
    ...(report.handshake
      ? [
        "",
        `TLS handshakes: p50 ${formatMicros(report.handshake.p50)}, ` +
        `p99 ${formatMicros(report.handshake.p99)}, max ${formatMicros(report.handshake.max)}`,
      ]
      : []),
  ].join("\n");
}

function formatChart(report: LoadReport): string {
  const rows = report.histogram.distribution(8);
  const most = Math.max(...rows.map((row) => row.count), 1);
  const lines = rows.map((row) =>
    `  <= ${formatMicros(row.upTo).padStart(9)} ${
      "#".repeat(Math.ceil((row.count / most) * 40)).padEnd(41)
    }${numbers.format(row.count)}`
  );
  return ["", "round trips:", ...lines].join("\n");
}

/** Seconds as the header shows them: a short run in milliseconds rather than "0 s". */
function formatSeconds(seconds: number): string {
  return seconds < 1 ? `${decimals.format(seconds * 1000)} ms` : `${decimals.format(seconds)} s`;
}

function formatMicros(micros: number): string {
  return micros >= 10_000 ? `${decimals.format(micros / 1000)} ms` : `${numbers.format(micros)} µs`;
}

function describeErrors(report: LoadReport): string {
  const { mismatches, earlyCloses, resets, timeouts } = report.errors;
  const parts: [number, string, string][] = [
    [mismatches, "mismatch", "mismatches"],
    [earlyCloses, "early close", "early closes"],
    [resets, "reset", "resets"],
    [timeouts, "timeout", "timeouts"],
  ];
  return parts.filter(([n]) => n > 0).map(([n, one, many]) => `${n} ${n === 1 ? one : many}`)
    .join(", ");
}

function toJson(report: LoadReport): Record<string, unknown> {
  const round = (value: number, digits: number) => Number(value.toFixed(digits));
  const { latency, errors } = report;
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
    latency_us: {
      min: latency.min,
      mean: round(latency.mean, 1),
      p50: latency.p50,
      p90: latency.p90,
      p99: latency.p99,
      p99_9: latency.p99_9,
      max: latency.max,
    },
    handshake_us: report.handshake && {
      min: report.handshake.min,
      p50: report.handshake.p50,
      p99: report.handshake.p99,
      max: report.handshake.max,
    },
    errors: {
      mismatches: errors.mismatches,
      early_closes: errors.earlyCloses,
      resets: errors.resets,
      timeouts: errors.timeouts,
    },
    ok: report.ok,
    ...(report.interrupted ? { interrupted: true } : {}),
  };
}
