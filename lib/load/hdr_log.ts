/**
 * A load run as an HdrHistogram interval log (`bench --hdr-log`), and several such logs added
 * into one report (`bench merge`). Percentiles cannot be averaged; histograms add exactly, so
 * the logs of N generators sharing one load give the percentiles of the whole load.
 *
 * Each histogram is one tagged interval line: `latency` (corrected with `rate`), `service`,
 * `connect`, `handshake`, `first-byte`, and the generator's own `send-delay` and `loop-lag`. The run's counts ride along in one comment line,
 * `#[tcpecho bench: {...}]`, which other readers skip as they skip every comment.
 *
 * @module
 */

import { RuntimeError } from "../base/errors.ts";
import { type HistogramInterval, LatencyHistogram } from "../metrics/latency_histogram.ts";
import type { IntervalReport, LoadErrors, LoadReport, RateReport } from "./load.ts";
import { totalErrors } from "./load.ts";

/** The comment that carries a run's counts. */
const COUNTS_PREFIX = "[tcpecho bench: ";

/** A run's counts, as the log keeps them: the report's, without its histograms. */
type LoggedCounts =
  & Pick<
    LoadReport,
    | "target"
    | "connections"
    | "size"
    | "window"
    | "seconds"
    | "messages"
    | "bytes"
    | "errors"
    | "interrupted"
    | "unfinished"
    | "datagrams"
  >
  & {
    rate?: Omit<RateReport, "keptUp">;
    connects: number;
    connectsAttempted: number;
    generatorBound: boolean;
  };

/** The histograms of a report, by the tag each has in the log. */
function taggedHistograms(report: LoadReport): [string, LatencyHistogram | undefined][] {
  return [
    ["latency", report.histogram],
    ["service", report.serviceTime],
    ["connect", report.connects.connectTime],
    ["handshake", report.connects.handshakeTime],
    ["first-byte", report.connects.firstByte],
    ["send-delay", report.audit.sendDelay],
    ["loop-lag", report.audit.eventLoopLag],
  ];
}

/**
 * `report` as an HdrHistogram interval log, its start `startTimeMs` (milliseconds since the
 * epoch): latency and service time interval by interval when `intervals` (from `onInterval`) are
 * given, else, like the other histograms, as one interval from the run's start to its end.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { formatHdrLog, mergeHdrLogs, runLoad, startEchoServer } from "../mod.ts";
 *
 * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
 * const options = { hostname: "127.0.0.1", port: server.addr.port, count: 50 };
 * const logs = [
 *   formatHdrLog(await runLoad(options), Date.now()),
 *   formatHdrLog(await runLoad(options), Date.now()),
 * ];
 * const merged = mergeHdrLogs(logs);
 * equal(merged.messages, 100);
 * equal(merged.histogram.count, 100);
 * ```
 */
export function formatHdrLog(
  report: LoadReport,
  startTimeMs: number,
  intervals: IntervalReport[] = [],
): string {
  const counts: LoggedCounts = {
    target: report.target,
    connections: report.connections,
    size: report.size,
    window: report.window,
    seconds: report.seconds,
    messages: report.messages,
    bytes: report.bytes,
    rate: report.rate && {
      target: report.rate.target,
      scheduled: report.rate.scheduled,
      scheduledPerSecond: report.rate.scheduledPerSecond,
    },
    connects: report.connects.made,
    connectsAttempted: report.connects.attempted,
    errors: report.errors,
    interrupted: report.interrupted,
    unfinished: report.unfinished,
    generatorBound: report.audit.generatorBound,
    datagrams: report.datagrams,
  };
  // Latency and service time interval by interval when the run was cut into intervals; the rest,
  // and everything otherwise, as one interval for the whole run.
  const split = intervals.length > 0 ? ["latency", "service"] : [];
  const lines: HistogramInterval[] = intervals.flatMap(({ start, end, histogram, serviceTime }) => [
    { tag: "latency", start, end, histogram },
    ...(serviceTime ? [{ tag: "service", start, end, histogram: serviceTime }] : []),
  ]);
  for (const [tag, histogram] of taggedHistograms(report)) {
    if (histogram && !split.includes(tag)) {
      lines.push({ tag, start: 0, end: report.seconds, histogram });
    }
  }
  return LatencyHistogram.formatIntervalLog(lines, startTimeMs, [
    `${COUNTS_PREFIX}${JSON.stringify(counts)}]`,
  ]);
}

/**
 * Adds the runs of several logs (as {@linkcode formatHdrLog} writes them) into one report, as if
 * one generator had made all their load at once: counts and rates add, the time is the longest
 * run's, and each histogram is the exact sum of the logs' histograms of its tag. `logs` name
 * their source in errors by `names`. Throws a {@linkcode RuntimeError} for a log without the
 * counts line or without a `latency` histogram.
 */
export function mergeHdrLogs(logs: string[], names: string[] = []): LoadReport {
  const histograms = new Map<string, LatencyHistogram>();
  let merged: LoggedCounts | undefined;
  let scheduledPerSecond = 0;
  logs.forEach((text, index) => {
    const name = names[index] ?? `log ${index + 1}`;
    const line = text.split("\n").find((line) => line.startsWith(`#${COUNTS_PREFIX}`));
    if (line === undefined) {
      throw new RuntimeError(`${name} is not a log of tcpecho bench --hdr-log: no counts line`);
    }
    const counts = JSON.parse(line.slice(COUNTS_PREFIX.length + 1, -1)) as LoggedCounts;
    const intervals: HistogramInterval[] = LatencyHistogram.parseIntervalLog(text);
    if (!intervals.some((interval) => interval.tag === "latency")) {
      throw new RuntimeError(`${name} has no latency histogram that HdrHistogram can read`);
    }
    for (const { tag, histogram } of intervals) {
      if (!histograms.has(tag)) histograms.set(tag, new LatencyHistogram());
      histograms.get(tag)!.add(histogram);
    }
    scheduledPerSecond += counts.rate?.scheduledPerSecond ?? 0;
    merged = merged === undefined ? counts : {
      ...merged,
      connections: merged.connections + counts.connections,
      seconds: Math.max(merged.seconds, counts.seconds),
      messages: merged.messages + counts.messages,
      bytes: merged.bytes + counts.bytes,
      rate: merged.rate && counts.rate && {
        target: merged.rate.target + counts.rate.target,
        scheduled: merged.rate.scheduled + counts.rate.scheduled,
        scheduledPerSecond: 0,
      },
      connects: merged.connects + counts.connects,
      connectsAttempted: merged.connectsAttempted + counts.connectsAttempted,
      errors: Object.fromEntries(
        Object.entries(merged.errors).map(([key, n]) => [
          key,
          n + counts.errors[key as keyof LoadErrors],
        ]),
      ) as unknown as LoadErrors,
      interrupted: merged.interrupted || counts.interrupted,
      unfinished: merged.unfinished + counts.unfinished,
      generatorBound: merged.generatorBound || counts.generatorBound,
      datagrams: merged.datagrams && counts.datagrams && {
        sent: merged.datagrams.sent + counts.datagrams.sent,
        lost: merged.datagrams.lost + counts.datagrams.lost,
        duplicates: merged.datagrams.duplicates + counts.datagrams.duplicates,
        reordered: merged.datagrams.reordered + counts.datagrams.reordered,
      },
    };
  });
  if (merged === undefined) throw new RuntimeError("no log to merge");
  const { seconds, messages, bytes } = merged;
  const messagesPerSecond = seconds > 0 ? messages / seconds : 0;
  const histogram = histograms.get("latency")!;
  const eventLoopLag = histograms.get("loop-lag") ?? new LatencyHistogram();
  return {
    target: merged.target,
    connections: merged.connections,
    size: merged.size,
    window: merged.window,
    seconds,
    messages,
    bytes,
    messagesPerSecond,
    mibPerSecond: seconds > 0 ? bytes / seconds / (1024 * 1024) : 0,
    rate: merged.rate && {
      target: merged.rate.target,
      scheduled: merged.rate.scheduled,
      scheduledPerSecond,
      keptUp: messagesPerSecond >= 0.99 * scheduledPerSecond,
    },
    latency: histogram.summary(),
    histogram,
    serviceTime: histograms.get("service"),
    connects: {
      attempted: merged.connectsAttempted,
      made: merged.connects,
      connectTime: histograms.get("connect") ?? new LatencyHistogram(),
      handshakeTime: histograms.get("handshake"),
      firstByte: histograms.get("first-byte") ?? new LatencyHistogram(),
    },
    backends: [],
    errors: merged.errors,
    ok: totalErrors(merged.errors) === 0,
    interrupted: merged.interrupted,
    unfinished: merged.unfinished,
    audit: {
      eventLoopLag,
      sendDelay: histograms.get("send-delay"),
      // Any generator that limited its share limited the whole.
      generatorBound: merged.generatorBound,
    },
    datagrams: merged.datagrams,
  };
}
