/**
 * `tcpecho send`: the echo client on the command line.
 *
 * @module
 */

import { pingMode } from "./cli/ping_mode.ts";
import { formatBytesLiteral } from "./lib/bytes_literal.ts";
import {
  checkPositionals,
  parseBufferSize,
  parseCount,
  parseFlags,
  parseOptional,
  parseSeconds,
} from "./cli/args.ts";
import { EchoError, sendAndVerify } from "./lib/echo_client.ts";
import { UsageError } from "./lib/errors.ts";
import { LineWriter } from "./cli/line_writer.ts";
import { readInput } from "./cli/read_input.ts";
import { describeEndpoint } from "./lib/transport.ts";
import { CLIENT_TRANSPORT_FLAGS, clientTransport } from "./cli/transport_flags.ts";

/** The tutorial's message: long enough to travel in several 16-byte chunks. */
export const DEFAULT_MESSAGE =
  "This is our message. It is very long but will only be transmitted in chunks of 16 at a time";

/** The help text of `tcpecho send`. */
export const SEND_HELP = `Usage: tcpecho send [options] [MESSAGE | -]

Send a message to an echo server, print the echo as it comes back, and check that every
byte came back unchanged. Exits 0 only when the whole echo matched; otherwise says where it
went wrong and exits 1. Speaks TCP (IPv4 or IPv6), TLS, Unix domain sockets or UDP.

Without MESSAGE it sends the classic "${DEFAULT_MESSAGE.slice(0, 20)}..." sentence;
with - it sends standard input.

Options:
      --host HOST        server to connect to: a name, an IPv4 or an IPv6 address
                         (default: localhost)
  -p, --port PORT        port to connect to (default: 10000)
      --unix PATH        connect to a Unix domain socket instead of TCP
      --tls              speak TLS; the server's certificate must chain to a trusted root
      --ca FILE          with --tls: also trust this CA certificate (PEM)
      --insecure         with --tls: accept any certificate (encrypts, but proves nothing
                         about the server; for tests only)
      --udp              send the message as one UDP datagram (at most 65507 bytes) and
                         check the datagram that comes back; needs deno --unstable-net
  -f, --file PATH        send the contents of a file (- for standard input)
  -b, --buffer-size N    bytes read at a time, 1 B to 16 MiB; takes suffixes KiB and
                         MiB (default: 16); with --udp, bytes per received line
  -t, --timeout S        give up after S seconds without progress (default: 10); with
                         --udp, how long to wait for the echo before calling it lost
  -c, --count N          ping mode: send the message N times, one at a time on one
                         connection, with a line per reply and its round-trip time,
                         then a summary like ping's (Ctrl-C stops early and prints it);
                         over TCP, TLS or a Unix socket (not --udp)
  -i, --interval S       ping mode: seconds between a reply and the next message
                         (default: 1; with only --interval, pings until Ctrl-C)
  -q, --quiet            print nothing; the exit code tells
      --json             print one JSON summary instead of the transcript
  -h, --help             show this help

Examples:
  tcpecho send
  tcpecho send --port 7 "hello"
  tcpecho send --file big.bin --buffer-size 64KiB --quiet
  tcpecho send --count 5 --interval 0.2
  tcpecho send --host ::1 "over IPv6"
  tcpecho send --tls --ca ca.pem --port 4433
  tcpecho send --unix /tmp/echo.sock
  tcpecho send --udp --timeout 2`;

/** Runs `tcpecho send` with `args`; returns the exit code. */
export async function send(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags("send", args, {
    ...CLIENT_TRANSPORT_FLAGS,
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
  const { endpoint, udp } = await clientTransport("send", values);
  if (udp && (values.count !== undefined || values.interval !== undefined)) {
    throw new UsageError(
      `${values.count !== undefined ? "--count" : "--interval"} works over streams only, ` +
        `not with --udp (see 'tcpecho send --help')`,
    );
  }
  const bufferSize = parseBufferSize(values);
  const timeout = parseOptional(values, "timeout", parseSeconds) ?? 10_000;
  const count = parseOptional(
    values,
    "count",
    (text, flag) => parseCount(text, flag, 1, Number.MAX_SAFE_INTEGER),
  );
  const interval = parseOptional(
    values,
    "interval",
    (text, flag) => parseSeconds(text, flag, true),
  );
  const file = values.file as string | undefined;
  if (file !== undefined && positionals.length > 0) {
    throw new UsageError("give either MESSAGE or --file, not both (see 'tcpecho send --help')");
  }
  const message = file === undefined ? await readArgument(positionals[0]) : await readInput(file);

  const transcript = !values.quiet && !values.json;
  const out = new LineWriter(Deno.stdout);
  if (typeof endpoint.tls === "object" && endpoint.tls.insecure && !values.quiet) {
    console.error("warning: --insecure: the server's certificate is not checked");
  }
  if (count !== undefined || interval !== undefined) {
    try {
      return await pingMode({
        endpoint,
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
  const tls = typeof endpoint.tls === "object" ? endpoint.tls : undefined;
  const transport = udp ? "udp" : endpoint.unix !== undefined ? "unix" : tls ? "tls" : "tcp";
  if (transcript) {
    const label = transport === "udp" || transport === "tls" ? ` (${transport.toUpperCase()})` : "";
    const verb = udp ? "sending a datagram to" : "connecting to";
    out.line(`${verb} ${describeEndpoint(endpoint)}${label}`);
  }
  let connected = false;
  const summary = {
    transport: transport === "tcp" ? undefined : transport,
    ...(endpoint.unix === undefined
      ? { host: endpoint.hostname, port: endpoint.port }
      : { path: endpoint.unix }),
  };
  try {
    const result = await sendAndVerify({
      ...endpoint,
      udp,
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
        ...summary,
        bytes_sent: result.bytesSent,
        bytes_received: result.bytesReceived,
        matched: true,
        round_trip_ms: Number(result.roundTripMs.toFixed(3)),
      }));
    }
  } catch (err) {
    if (values.json && err instanceof EchoError) {
      out.line(JSON.stringify({
        ...summary,
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
  if (text === "-") return await readInput("-");
  return new TextEncoder().encode(text ?? DEFAULT_MESSAGE);
}
