/**
 * `tcpecho send`: the echo client on the command line.
 *
 * @module
 */

import { pingMode } from "./client_ping.ts";
import { formatBytesLiteral } from "./lib/bytes_literal.ts";
import {
  checkPositionals,
  parseCount,
  parseFlags,
  parsePort,
  parseSeconds,
  parseSize,
} from "./lib/cli_args.ts";
import { EchoError, sendAndVerify } from "./lib/echo_client.ts";
import { errorReason, RuntimeError, UsageError } from "./lib/errors.ts";
import { LineWriter } from "./lib/line_writer.ts";

/** The tutorial's message: long enough to travel in several 16-byte chunks. */
export const DEFAULT_MESSAGE =
  "This is our message. It is very long but will only be transmitted in chunks of 16 at a time";

/** The help text of `tcpecho send`. */
export const SEND_HELP = `Usage: tcpecho send [options] [MESSAGE | -]

Send a message to a TCP echo server, print the echo as it comes back, and check that every
byte came back unchanged. Exits 0 only when the whole echo matched; otherwise says where it
went wrong and exits 1.

Without MESSAGE it sends the classic "${DEFAULT_MESSAGE.slice(0, 20)}..." sentence;
with - it sends standard input.

Options:
      --host HOST        server to connect to (default: localhost)
  -p, --port PORT        port to connect to (default: 10000)
  -f, --file PATH        send the contents of a file (- for standard input)
  -b, --buffer-size N    bytes read at a time, 1 B to 16 MiB; takes suffixes KiB and
                         MiB (default: 16)
  -t, --timeout S        give up after S seconds without progress (default: 10)
  -c, --count N          ping mode: send the message N times, one at a time on one
                         connection, with a line per reply and its round-trip time,
                         then a summary like ping's (Ctrl-C stops early and prints it)
  -i, --interval S       ping mode: seconds between a reply and the next message
                         (default: 1; with only --interval, pings until Ctrl-C)
  -q, --quiet            print nothing; the exit code tells
      --json             print one JSON summary instead of the transcript
  -h, --help             show this help

Examples:
  tcpecho send
  tcpecho send --port 7 "hello"
  tcpecho send --file big.bin --buffer-size 64KiB --quiet
  tcpecho send --count 5 --interval 0.2`;

const MAX_BUFFER = 16 * 1024 * 1024;

/** Runs `tcpecho send` with `args`; returns the exit code. */
export async function send(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags("send", args, {
    host: { type: "string" },
    port: { type: "string", short: "p" },
    file: { type: "string", short: "f" },
    "buffer-size": { type: "string", short: "b" },
    timeout: { type: "string", short: "t" },
    count: { type: "string", short: "c" },
    interval: { type: "string", short: "i" },
    quiet: { type: "boolean", short: "q" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(SEND_HELP);
    return 0;
  }
  checkPositionals("send", positionals, 1);
  const hostname = (values.host as string | undefined) ?? "localhost";
  const port = values.port === undefined ? 10000 : parsePort(values.port as string);
  const bufferSize = values["buffer-size"] === undefined
    ? 16
    : parseSize(values["buffer-size"] as string, "--buffer-size", 1, MAX_BUFFER);
  const timeout = values.timeout === undefined
    ? 10_000
    : parseSeconds(values.timeout as string, "--timeout");
  const count = values.count === undefined
    ? undefined
    : parseCount(values.count as string, "--count", 1, Number.MAX_SAFE_INTEGER);
  const interval = values.interval === undefined
    ? undefined
    : parseSeconds(values.interval as string, "--interval", true);
  const file = values.file as string | undefined;
  if (file !== undefined && positionals.length > 0) {
    throw new UsageError("give either MESSAGE or --file, not both (see 'tcpecho send --help')");
  }
  const message = file === undefined ? await readArgument(positionals[0]) : await readFile(file);

  const transcript = !values.quiet && !values.json;
  const out = new LineWriter(Deno.stdout);
  if (count !== undefined || interval !== undefined) {
    try {
      return await pingMode({
        hostname,
        port,
        message,
        bufferSize,
        timeout,
        count: count ?? Infinity,
        interval: interval ?? 1000,
        output: transcript ? "transcript" : values.json ? "json" : "quiet",
        out,
      });
    } finally {
      await out.flush();
    }
  }
  if (transcript) out.line(`connecting to ${hostname} port ${port}`);
  let connected = false;
  try {
    const result = await sendAndVerify({
      hostname,
      port,
      message,
      bufferSize,
      timeout,
      onConnected: () => {
        connected = true;
        if (transcript) out.line(`sending ${formatBytesLiteral(message)}`);
      },
      onReceived: transcript
        ? (chunk) => out.line(`received ${formatBytesLiteral(chunk)}`)
        : undefined,
    });
    if (values.json) {
      out.line(JSON.stringify({
        host: hostname,
        port,
        bytes_sent: result.bytesSent,
        bytes_received: result.bytesReceived,
        matched: true,
        round_trip_ms: Number(result.roundTripMs.toFixed(3)),
      }));
    }
  } catch (err) {
    if (values.json && err instanceof EchoError) {
      out.line(JSON.stringify({
        host: hostname,
        port,
        bytes_sent: message.length,
        bytes_received: err.bytesReceived,
        matched: false,
        error: err.message,
      }));
    }
    throw err;
  } finally {
    if (transcript && connected) out.line("closing socket");
    await out.flush();
  }
  return 0;
}

/** The message given as an argument: the classic sentence when absent, stdin for `-`. */
async function readArgument(text: string | undefined): Promise<Uint8Array> {
  if (text === "-") return await readFile("-");
  return new TextEncoder().encode(text ?? DEFAULT_MESSAGE);
}

/** The contents of the file at `path`, or of standard input for `-`. */
async function readFile(path: string): Promise<Uint8Array> {
  try {
    return path === "-"
      ? await new Response(Deno.stdin.readable).bytes()
      : await Deno.readFile(path);
  } catch (err) {
    const reason = err instanceof Deno.errors.NotCapable
      ? `missing permission, run deno with --allow-read=${path}`
      : errorReason(err);
    throw new RuntimeError(
      `cannot read ${path === "-" ? "standard input" : `'${path}'`}: ${reason}`,
    );
  }
}
