/**
 * `tcpecho send --count N --interval S`: ping mode, one line per reply and ping's summary.
 *
 * @module
 */

import { pingEcho, type PingResult } from "./lib/echo_pinger.ts";
import { RuntimeError } from "./lib/errors.ts";
import type { LineWriter } from "./lib/line_writer.ts";

/** What ping mode needs from the `send` command line. */
export interface PingModeOptions {
  hostname: string;
  port: number;
  message: Uint8Array;
  count: number;
  interval: number;
  timeout: number;
  bufferSize: number;
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
 * Pings until `count` replies came back or Ctrl-C, then prints the summary. Returns 0 when at
 * least one reply came back and nothing went wrong; throws when the server misbehaved.
 */
export async function pingMode(options: PingModeOptions): Promise<number> {
  const { hostname, port, message, out, output } = options;
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  let from = hostname;
  let result: PingResult;
  try {
    result = await pingEcho({
      hostname,
      port,
      message,
      count: options.count,
      interval: options.interval,
      timeout: options.timeout,
      bufferSize: options.bufferSize,
      signal: interrupt.signal,
      onConnected: (remote) => {
        from = remote.hostname;
        if (output === "transcript") {
          out.line(`ECHO ${hostname} (${from}) port ${port}: ${message.length} bytes per message`);
        }
      },
      onReply: (reply) => {
        if (output === "transcript") {
          out.line(
            `${reply.bytes} bytes from ${from} port ${port}: seq=${reply.seq} time=${
              milliseconds.format(reply.timeMs)
            } ms`,
          );
        }
      },
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
  const loss = result.sent === 0 ? 0 : (result.sent - result.received) / result.sent * 100;
  if (output === "transcript") {
    out.line(`--- ${hostname} port ${port} echo statistics ---`);
    out.line(
      `${result.sent} messages sent, ${result.received} received, ${
        percent.format(loss)
      }% loss, time ${Math.round(result.elapsedMs)}ms`,
    );
    if (result.rtt) {
      const { minMs, avgMs, maxMs, mdevMs } = result.rtt;
      out.line(
        `rtt min/avg/max/mdev = ${
          [minMs, avgMs, maxMs, mdevMs].map(milliseconds.format).join("/")
        } ms`,
      );
    }
  } else if (output === "json") {
    out.line(JSON.stringify({
      host: hostname,
      port,
      sent: result.sent,
      received: result.received,
      loss_percent: Number(loss.toFixed(1)),
      time_ms: Math.round(result.elapsedMs),
      rtt_min_ms: round(result.rtt?.minMs),
      rtt_avg_ms: round(result.rtt?.avgMs),
      rtt_max_ms: round(result.rtt?.maxMs),
      rtt_mdev_ms: round(result.rtt?.mdevMs),
      error: result.error?.message,
    }));
  }
  if (result.error) throw result.error;
  if (result.received === 0) throw new RuntimeError("no reply came back");
  return 0;
}

function round(ms: number | undefined): number | null {
  return ms === undefined ? null : Number(ms.toFixed(3));
}
