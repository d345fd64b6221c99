/**
 * `tcpecho send`: the echo client on the command line.
 *
 * @module
 */

import { pingMode } from "./cli/ping_mode.ts";
import { formatBytesLiteral } from "./lib/bytes_literal.ts";
import { anyText, duration, wholeNumber } from "./cli/args.ts";
import { BUFFER_SIZE, command, option, parseCommand, toggle } from "./cli/flags.ts";
import { renderHelp } from "./cli/help.ts";
import { EchoError, sendAndVerify } from "./lib/echo_client.ts";
import { UsageError } from "./lib/errors.ts";
import { LineWriter } from "./cli/line_writer.ts";
import { readInput } from "./cli/read_input.ts";
import { describeEndpoint } from "./lib/transport.ts";
import { CLIENT_TRANSPORT_FLAGS, clientTransport } from "./cli/transport_flags.ts";

/** The tutorial's message: long enough to travel in several 16-byte chunks. */
export const DEFAULT_MESSAGE =
  "This is our message. It is very long but will only be transmitted in chunks of 16 at a time";

/** `tcpecho send`: what it does and the flags it takes. */
export const SEND = command({
  name: "send",
  summary: "send a message to an echo server and check the echo",
  description: `Send a message to an echo server, print the echo as it comes back, and check
that every byte came back unchanged. Exits 0 only when the whole echo matched; otherwise says
where it went wrong and exits 1. Speaks TCP (IPv4 or IPv6), TLS, Unix domain sockets or UDP.`,
  arguments: [{
    name: "MESSAGE",
    usage: "[MESSAGE | -]",
    help: "the text to send; - sends standard input",
    absent: `the classic "${DEFAULT_MESSAGE.slice(0, 19)}..." sentence`,
  }],
  flags: {
    ...CLIENT_TRANSPORT_FLAGS,
    file: option({
      short: "f",
      value: "PATH",
      help: "send the contents of a file (- for standard input)",
      parse: anyText,
    }),
    "buffer-size": {
      ...BUFFER_SIZE,
      help: `${BUFFER_SIZE.help}; with --udp, bytes per received line`,
    },
    timeout: option({
      short: "t",
      value: "S",
      help: "give up after S seconds without progress; with --udp, how long to wait for the " +
        "echo before calling it lost",
      default: "10",
      parse: duration(),
    }),
    count: option({
      short: "c",
      value: "N",
      help: "ping mode: send the message N times, one at a time on one connection, with a line " +
        "per reply and its round-trip time, then a summary like ping's (Ctrl-C stops early and " +
        "prints it); over TCP, TLS or a Unix socket (not --udp)",
      parse: wholeNumber(1, Number.MAX_SAFE_INTEGER),
    }),
    interval: option({
      short: "i",
      value: "S",
      help: "ping mode: seconds between a reply and the next message; with only --interval, " +
        "pings until Ctrl-C",
      absent: "1",
      parse: duration({ allowZero: true }),
    }),
    quiet: toggle({ short: "q", help: "print nothing; the exit code tells" }),
    json: toggle({ help: "print one JSON summary instead of the transcript" }),
  },
  examples: [
    "tcpecho send",
    'tcpecho send --port 7 "hello"',
    "tcpecho send --file big.bin --buffer-size 64KiB --quiet",
    "tcpecho send --count 5 --interval 0.2",
    'tcpecho send --host ::1 "over IPv6"',
    "tcpecho send --tls --ca ca.pem --port 4433",
    "tcpecho send --unix /tmp/echo.sock",
    "tcpecho send --udp --timeout 2",
  ],
});

/** Runs `tcpecho send` with `args`; returns the exit code. */
export async function send(args: string[]): Promise<number> {
  const { flags: values, positionals } = parseCommand(SEND, args);
  if (values.help) {
    console.log(renderHelp(SEND));
    return 0;
  }
  const { endpoint, udp } = await clientTransport("send", values);
  if (udp && (values.count !== undefined || values.interval !== undefined)) {
    throw new UsageError(
      `${values.count !== undefined ? "--count" : "--interval"} works over streams only, ` +
        `not with --udp (see 'tcpecho send --help')`,
    );
  }
  const bufferSize = values["buffer-size"];
  const timeout = values.timeout;
  const count = values.count;
  const interval = values.interval;
  const file = values.file;
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
        ...(result.tls
          ? { tls_handshake_ms: Number(result.tls.handshakeMs.toFixed(3)), alpn: result.tls.alpn }
          : {}),
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
