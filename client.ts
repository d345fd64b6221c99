/**
 * `tcpecho send`: the echo client on the command line. Ping mode is loaded only when asked for.
 *
 * @module
 */

import { formatBytesLiteral } from "./lib/base/bytes_literal.ts";
import { anyText, duration, wholeNumber } from "./cli/args.ts";
import { BUFFER_SIZE, command, option, parseCommand, toggle } from "./cli/flags.ts";
import { renderHelp } from "./cli/help.ts";
import { printLine } from "./cli/output.ts";
import { ExitCode } from "./cli/exit_codes.ts";
import { EchoError } from "./lib/base/errors.ts";
import { sendAndVerify } from "./lib/client/echo_client.ts";
import {
  transportField,
  transportLabel,
  transportName,
  warnIfInsecure,
} from "./cli/transport_label.ts";
import { UsageError } from "./lib/base/errors.ts";
import { LineWriter } from "./cli/line_writer.ts";
import { openInput, readInputUpTo } from "./cli/read_input.ts";
import { describeEndpoint, MAX_UDP_PAYLOAD } from "./lib/net/transport.ts";
import type { ConnectOptions } from "./lib/client/connect.ts";
import { CLIENT_TRANSPORT_FLAGS, clientTransport } from "./cli/transport_flags.ts";
import { proxyHeaderFromFlags, SEND_PROXY_FLAGS } from "./cli/proxy_flags.ts";

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
    ...SEND_PROXY_FLAGS,
    file: option({
      short: "f",
      value: "PATH",
      help: "send a file as it is read, in bounded memory (- for standard input)",
      parse: anyText,
    }),
    "buffer-size": {
      ...BUFFER_SIZE,
      help: `${BUFFER_SIZE.help}; with --udp, bytes per received line`,
    },
    timeout: option({
      short: "t",
      value: "TIME",
      help: "give up after TIME without progress; with --udp, how long to wait for the " +
        "echo before calling it lost",
      default: "10",
      parse: duration(),
    }),
    count: option({
      short: "c",
      value: "N",
      help: "ping mode: send the message N times, one at a time on one connection, with a line " +
        "per reply and its round-trip time, then a summary like ping's (Ctrl-C stops early and " +
        "prints it); with --udp, one numbered datagram per round trip, late, duplicate and " +
        "reordered echoes counted",
      parse: wholeNumber(1, Number.MAX_SAFE_INTEGER),
    }),
    interval: option({
      short: "i",
      value: "TIME",
      help: "ping mode: time between a reply and the next message; with only --interval, " +
        "pings until Ctrl-C",
      absent: "1",
      parse: duration({ allowZero: true }),
    }),
    "fail-fast": toggle({
      help: "ping mode: stop at the first lost or failed round trip, with its error, instead " +
        "of counting it and carrying on (over a new connection)",
    }),
    "expect-greeting": toggle({
      help: "read the server's greeting line (serve --greeting) first and print it; it is not " +
        "part of the echo check",
    }),
    quiet: toggle({ short: "q", help: "print nothing; the exit code tells" }),
    json: toggle({ help: "print one JSON summary instead of the transcript" }),
  },
  examples: [
    "tcpecho send",
    'tcpecho send --port 7 "hello"',
    "tcpecho send --file big.bin --buffer-size 64KiB --quiet",
    "tcpecho send --count 5 --interval 0.2",
    "tcpecho send --udp --count 5 --interval 0.2",
    'tcpecho send --host ::1 "over IPv6"',
    "tcpecho send --tls --ca ca.pem --port 4433",
    "tcpecho send --unix /tmp/echo.sock",
    "tcpecho send --udp --timeout 2",
    "tcpecho send --send-proxy v2 --proxy-source 203.0.113.7:4242 --port 8443",
    "tcpecho send --port 8000 --expect-greeting",
  ],
});

/** Runs `tcpecho send` with `args`; returns the exit code. */
export async function send(args: string[]): Promise<number> {
  const { flags: values, positionals } = parseCommand(SEND, args);
  if (values.help) {
    printLine(renderHelp(SEND));
    return 0;
  }
  const { endpoint, udp } = await clientTransport("send", values);
  endpoint.proxyHeader = proxyHeaderFromFlags("send", values);
  if (udp && endpoint.proxyHeader) {
    throw new UsageError(
      "--send-proxy works over streams only, not with --udp (see 'tcpecho send --help')",
    );
  }
  const pinging = values.count !== undefined || values.interval !== undefined;
  if (values["fail-fast"] && !pinging) {
    throw new UsageError(
      "--fail-fast works in ping mode only, with --count or --interval (see 'tcpecho send --help')",
    );
  }
  if (udp && values["fail-fast"]) {
    throw new UsageError(
      "--fail-fast works over streams only, not with --udp (see 'tcpecho send --help')",
    );
  }
  const expectGreeting = values["expect-greeting"];
  if (udp && expectGreeting) {
    throw new UsageError(
      "--expect-greeting works over streams only, not with --udp (see 'tcpecho send --help')",
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
  const input = file ?? (positionals[0] === "-" ? "-" : undefined);
  const output = values.quiet ? "quiet" : values.json ? "json" : "transcript";
  if (!values.quiet) warnIfInsecure(endpoint);
  const out = new LineWriter(Deno.stdout);
  let code: number;
  try {
    if (pinging) {
      const { pingMode } = await import("./cli/ping_mode.ts");
      code = await pingMode({
        endpoint,
        udp,
        message: input === undefined
          ? messageArgument(positionals[0])
          : await readInputUpTo(input, MAX_PING_MESSAGE, "a ping message"),
        bufferSize,
        timeout,
        expectGreeting,
        failFast: values["fail-fast"],
        count: count ?? Infinity,
        interval: interval ?? 1000,
        output,
        out,
      });
    } else {
      // A stream goes as it is read; a datagram must be whole before it leaves.
      const message = input === undefined
        ? messageArgument(positionals[0])
        : udp
        ? await readInputUpTo(input, MAX_UDP_PAYLOAD, "a UDP datagram")
        : await openInput(input);
      code = await sendMessage({
        endpoint,
        udp,
        message,
        bufferSize,
        timeout,
        output,
        out,
        expectGreeting,
      });
    }
  } finally {
    await out.flush();
  }
  // The last lines may be the ones that found the output closed or full.
  if (out.error) throw out.error;
  return code;
}

/** What one `send` (not ping mode) needs from the command line. */
interface SendMessageOptions {
  endpoint: ConnectOptions;
  udp: boolean;
  message: Uint8Array | AsyncIterable<Uint8Array>;
  bufferSize: number;
  timeout: number;
  output: "transcript" | "json" | "quiet";
  out: LineWriter;
  /** Read the server's greeting line first, print it, and keep it out of the check. */
  expectGreeting: boolean;
}

/** The largest message ping mode repeats, read whole from a file or standard input: 16 MiB. */
const MAX_PING_MESSAGE = 16 * 1024 * 1024;

/** Output held back this long before the echo waits for it, so that memory stays bounded. */
const MAX_QUEUED_OUTPUT = 1024 * 1024;

/**
 * Sends the message, prints the transcript as it goes and a summary in JSON, whatever the
 * outcome. Ctrl-C while a stream is sent ends its input: what was sent is still checked, and
 * the verdict so far is printed (exit code 130); a second Ctrl-C exits at once.
 */
async function sendMessage(options: SendMessageOptions): Promise<number> {
  const { endpoint, udp, message, output, out } = options;
  const transcript = output === "transcript";
  const transport = transportName(endpoint, udp);
  if (transcript) {
    const verb = udp ? "sending a datagram to" : "connecting to";
    out.line(`${verb} ${describeEndpoint(endpoint)}${transportLabel(transport)}`);
  }
  let greeting: string | undefined;
  const summary = {
    ...transportField(transport),
    ...(endpoint.unix === undefined
      ? { host: endpoint.hostname, port: endpoint.port }
      : { path: endpoint.unix }),
  };
  const interrupt = new AbortController();
  const onSignal = () =>
    interrupt.signal.aborted ? Deno.exit(ExitCode.interrupted) : interrupt.abort();
  const stoppable = !(message instanceof Uint8Array);
  if (stoppable) Deno.addSignalListener("SIGINT", onSignal);
  // A terminal or pipe slower than the echo holds it back, rather than queue without end.
  const print = (line: string) => {
    out.line(line);
    return out.queued > MAX_QUEUED_OUTPUT ? out.flush() : undefined;
  };
  // Output that failed ends the run at once: nothing would see the transcript or the verdict.
  const outputFailed = new AbortController();
  out.failed.then(() => outputFailed.abort());
  let connected = false;
  try {
    const result = await sendAndVerify({
      ...endpoint,
      udp,
      message,
      bufferSize: options.bufferSize,
      timeout: options.timeout,
      endInput: interrupt.signal,
      signal: outputFailed.signal,
      onConnected: () => connected = true,
      onSent: transcript ? (chunk) => print(`sending ${formatBytesLiteral(chunk)}`) : undefined,
      expectGreeting: options.expectGreeting,
      onGreeting: (line) => {
        greeting = line;
        if (transcript) print(`greeting: ${line}`);
      },
      onReceived: transcript
        ? (chunk) => print(`received ${formatBytesLiteral(chunk)}`)
        : undefined,
    });
    if (out.error) throw out.error;
    if (output === "json") {
      out.line(JSON.stringify({
        ...summary,
        ...(greeting !== undefined && { greeting }),
        bytes_sent: result.bytesSent,
        bytes_received: result.bytesReceived,
        matched: true,
        round_trip_ms: Number(result.roundTripMs.toFixed(3)),
        ...(result.tls
          ? { tls_handshake_ms: Number(result.tls.handshakeMs.toFixed(3)), alpn: result.tls.alpn }
          : {}),
        ...(result.interrupted ? { interrupted: true } : {}),
      }));
    }
    if (result.interrupted) {
      if (output !== "quiet") {
        console.error(
          `interrupted: ${plural(result.bytesSent, "byte")} sent, all came back unchanged`,
        );
      }
      return ExitCode.interrupted;
    }
    return 0;
  } catch (err) {
    if (out.error) throw out.error;
    if (output === "json") {
      const echo = err instanceof EchoError ? err : undefined;
      out.line(JSON.stringify({
        ...summary,
        ...(greeting !== undefined && { greeting }),
        // A datagram's failures happen after it left whole; a connection's say how far it got.
        bytes_sent: echo?.bytesSent ?? (echo && message instanceof Uint8Array ? message.length : 0),
        bytes_received: echo?.bytesReceived ?? 0,
        matched: false,
        error: err instanceof Error ? err.message : String(err),
      }));
    }
    throw err;
  } finally {
    if (stoppable) Deno.removeSignalListener("SIGINT", onSignal);
    if (transcript && connected) out.line("closing socket");
  }
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** The message given as an argument, or the classic sentence. */
function messageArgument(argument: string | undefined): Uint8Array {
  return new TextEncoder().encode(argument ?? DEFAULT_MESSAGE);
}
