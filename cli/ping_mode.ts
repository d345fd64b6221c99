/**
 * `tcpecho send --count N --interval S`: ping mode, one line per reply and ping's summary.
 *
 * @module
 */

import { ping, type PingOptions, type PingResult } from "../lib/client/ping.ts";
import type { UdpPingResult } from "../lib/load/udp_ping.ts";
import { RuntimeError } from "../lib/base/errors.ts";
import type { LineWriter } from "./line_writer.ts";
import type { ConnectOptions } from "../lib/client/connect.ts";
import { transportField, transportLabel, transportName } from "./transport_label.ts";

/** What ping mode needs from the `send` command line. */
export interface PingModeOptions {
  /** The server: TCP, TLS or a Unix domain socket. */
  endpoint: ConnectOptions;
  /** Ping over UDP: one numbered datagram per round trip. */
  udp?: boolean;
  message: Uint8Array;
  count: number;
  interval: number;
  timeout: number;
  bufferSize: number;
  /** Stop at the first lost or failed round trip, or connection ended, with its error. */
  failFast?: boolean;
  /** Read the server's greeting line first, and print it in the transcript. */
  expectGreeting?: boolean;
  /** `transcript`: a line per reply and the summary; `json`: one summary object; `quiet`: none. */
  output: "transcript" | "json" | "quiet";
  out: LineWriter;
}

const milliseconds = new Intl.NumberFormat("en-US", {
  minimumFractionDigits: 3,
  maximumFractionDigits: 3,
  useGrouping: false,
});
const percent = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

/**
 * Pings until `count` messages were sent or Ctrl-C, printing a line per reply and per lost or
 * failed round trip, then prints the summary. Exits as iputils `ping` does: 0 when at least one
 * reply came back, even with losses; 1 (throws) when none did. Also throws when the server could
 * not be reached at first (with `json`, after a summary that says so), when `failFast` stopped
 * the run or the server sent bytes after the last reply, and when the output failed: a reader
 * that went away ends the run at once.
 */
export async function pingMode(options: PingModeOptions): Promise<number> {
  const { endpoint, message, out, output } = options;
  const { hostname, port, unix } = endpoint;
  // ping's wording over TCP ("from 127.0.0.1 port 7"); a Unix socket is named by its path.
  const server = unix ?? `${hostname} port ${port}`;
  const transport = transportName(endpoint, options.udp);
  const where = unix === undefined ? { host: hostname, port } : { path: unix };
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  out.failed.then(() => interrupt.abort());
  let from = server;
  let result: PingResult | UdpPingResult;
  /** The first line, with the address connected to, if any (UDP connects to none). */
  const announce = (address?: string) => {
    if (address !== undefined) from = `${address} port ${port}`;
    if (output === "transcript") {
      const target = address === undefined ? server : `${hostname} (${address}) port ${port}`;
      out.line(
        `ECHO ${target}${transportLabel(transport)}: ${message.length} bytes per message`,
      );
    }
  };
  const callbacks: Pick<PingOptions, "onFailure" | "onDisconnected" | "onReply"> = {
    onFailure: ({ seq, kind, error }) => {
      if (output === "transcript") out.line(`seq=${seq} ${kind}: ${error.message}`);
    },
    onDisconnected: (afterSeq, reason) => {
      if (output === "transcript") {
        out.line(`connection ended after seq=${afterSeq}: ${reason}; reconnecting`);
      }
    },
    onReply: (reply) => {
      if (output === "transcript") {
        out.line(
          `${reply.bytes} bytes from ${from}: seq=${reply.seq} time=${
            milliseconds.format(reply.timeMs)
          } ms`,
        );
      }
    },
  };
  try {
    if (options.udp) {
      const { pingUdp } = await import("../lib/load/udp_ping.ts");
      // No connection to wait for: the server's address is the one named.
      announce();
      result = await pingUdp({
        hostname,
        port,
        message,
        count: options.count,
        interval: options.interval,
        timeout: options.timeout,
        signal: interrupt.signal,
        ...callbacks,
      });
    } else {
      result = await ping({
        ...endpoint,
        message,
        count: options.count,
        interval: options.interval,
        timeout: options.timeout,
        bufferSize: options.bufferSize,
        failFast: options.failFast,
        signal: interrupt.signal,
        expectGreeting: options.expectGreeting,
        onGreeting: (line) => {
          if (output === "transcript") out.line(`greeting: ${line}`);
        },
        onConnected: (remote) => announce("hostname" in remote ? remote.hostname : undefined),
        ...callbacks,
      });
    }
  } catch (err) {
    if (output === "json") {
      out.line(JSON.stringify({
        ...where,
        ...transportField(transport),
        sent: 0,
        received: 0,
        lost: 0,
        failed: 0,
        error: err instanceof Error ? err.message : String(err),
      }));
    }
    throw err;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
  if (out.error) throw out.error;
  const loss = result.sent === 0 ? 0 : (result.sent - result.received) / result.sent * 100;
  if (output === "transcript") {
    out.line(`--- ${server} echo statistics ---`);
    // As ping prints "+N errors" only when there were some.
    const lostAndFailed = (result.lost ? `, ${result.lost} lost` : "") +
      (result.failed ? `, ${result.failed} failed` : "");
    out.line(
      `${result.sent} message${result.sent === 1 ? "" : "s"} sent, ${result.received} received` +
        `${lostAndFailed}, ${percent.format(loss)}% loss, time ${Math.round(result.elapsedMs)}ms`,
    );
    if (result.rtt) {
      const { minMs, avgMs, maxMs, mdevMs } = result.rtt;
      out.line(
        `rtt min/avg/max/mdev = ${
          [minMs, avgMs, maxMs, mdevMs].map(milliseconds.format).join("/")
        } ms`,
      );
    }
    if ("datagrams" in result) {
      const { late, duplicates, reordered, mismatches } = result.datagrams;
      out.line(
        `datagrams: ${late} late, ${duplicates} duplicate${duplicates === 1 ? "" : "s"}, ` +
          `${reordered} reordered, ${mismatches} mismatched`,
      );
      if (result.latency) {
        const { p50, p90, p99 } = result.latency;
        out.line(
          `rtt p50/p90/p99 = ${
            [p50, p90, p99].map((us) => milliseconds.format(us / 1000)).join("/")
          } ms`,
        );
      }
    }
  } else if (output === "json") {
    out.line(JSON.stringify({
      ...where,
      ...transportField(transport),
      sent: result.sent,
      received: result.received,
      lost: result.lost,
      failed: result.failed,
      loss_percent: Number(loss.toFixed(1)),
      time_ms: Math.round(result.elapsedMs),
      rtt_min_ms: round(result.rtt?.minMs),
      rtt_avg_ms: round(result.rtt?.avgMs),
      rtt_max_ms: round(result.rtt?.maxMs),
      rtt_mdev_ms: round(result.rtt?.mdevMs),
      ...("datagrams" in result
        ? {
          rtt_p50_ms: round(microsToMs(result.latency?.p50)),
          rtt_p90_ms: round(microsToMs(result.latency?.p90)),
          rtt_p99_ms: round(microsToMs(result.latency?.p99)),
          datagrams: result.datagrams,
        }
        : {}),
      error: result.error?.message,
    }));
  }
  if (result.error) throw result.error;
  if (result.received === 0) throw new RuntimeError("no reply came back");
  return 0;
}

function microsToMs(us: number | undefined): number | undefined {
  return us === undefined ? undefined : us / 1000;
}

function round(ms: number | undefined): number | null {
  return ms === undefined ? null : Number(ms.toFixed(3));
}
