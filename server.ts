/**
 * `tcpecho serve`: the echo server on the command line.
 *
 * @module
 */

import {
  checkPositionals,
  parseFlags,
  parsePort,
  parseSeconds,
  parseSize,
} from "./lib/cli_args.ts";
import { EchoServer } from "./lib/echo_server.ts";
import { explainNetworkError, UsageError } from "./lib/errors.ts";
import { ServerLog } from "./lib/event_log.ts";
import { LineWriter } from "./lib/line_writer.ts";

/** The help text of `tcpecho serve`. */
export const SERVE_HELP = `Usage: tcpecho serve [options]

Run a TCP echo server: every byte a client sends is sent back to it, read and written
--buffer-size bytes at a time, with a line of log for each step. Serves many clients at
once; Ctrl-C or SIGTERM stops accepting, finishes the echoes in flight and prints a summary.

Options:
  --host HOST            address to listen on (default: localhost); 0.0.0.0 or :: opens
                         the port to the network
  -p, --port PORT        port to listen on, 0 for any free port (default: 10000)
  -b, --buffer-size N    bytes read and echoed at a time, 1 B to 16 MiB; takes
                         suffixes KiB and MiB (default: 16)
  -q, --quiet            log only the start-up line, errors and the summary
      --log FORMAT       text (the classic transcript) or json (one object per event)
      --drain-timeout S  seconds to finish echoes in flight at shutdown (default: 5)
  -h, --help             show this help

Examples:
  tcpecho serve
  tcpecho serve --port 0 --quiet
  tcpecho serve --host ::1 --port 7 --log json`;

const DEFAULT_PORT = 10000;
const MAX_BUFFER = 16 * 1024 * 1024;

/** Runs `tcpecho serve` with `args` until a signal stops it; returns the exit code. */
export async function serve(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags("serve", args, {
    host: { type: "string" },
    port: { type: "string", short: "p" },
    "buffer-size": { type: "string", short: "b" },
    quiet: { type: "boolean", short: "q" },
    log: { type: "string" },
    "drain-timeout": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(SERVE_HELP);
    return 0;
  }
  checkPositionals("serve", positionals, 0);
  const host = (values.host as string | undefined) ?? "localhost";
  const port = values.port === undefined ? DEFAULT_PORT : parsePort(values.port as string);
  const bufferSize = values["buffer-size"] === undefined
    ? 16
    : parseSize(values["buffer-size"] as string, "--buffer-size", 1, MAX_BUFFER);
  const format = (values.log as string | undefined) ?? "text";
  if (format !== "text" && format !== "json") {
    throw new UsageError(`--log must be text or json, not '${format}'`);
  }
  const drainTimeout = values["drain-timeout"] === undefined
    ? 5000
    : parseSeconds(values["drain-timeout"] as string, "--drain-timeout", true);

  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: host, port });
  } catch (err) {
    throw explainNetworkError(err, "listen", {
      hostname: host,
      port,
      permission: `--allow-net=${host.includes(":") ? `[${host}]` : host}${port ? `:${port}` : ""}`,
    });
  }

  const log = new ServerLog({
    format,
    quiet: values.quiet === true,
    out: new LineWriter(Deno.stdout),
    err: new LineWriter(Deno.stderr),
  });
  log.listening(host, listener.addr);
  if (isWildcard(listener.addr.hostname)) {
    log.warn(
      `listening on every interface: port ${listener.addr.port} is reachable from the network`,
    );
  }
  const server = new EchoServer({
    listener,
    bufferSize,
    onEvent: log.onEvent,
    onError: (message) => log.error(message),
  });
  log.onEvent?.({ type: "idle" });

  await untilSignal(() => {
    // A second signal: the operator wants out now.
    server.abort();
    log.summary(server.stats);
    log.flush().finally(() => Deno.exit(1));
  });
  await server.shutdown(drainTimeout);
  log.summary(server.stats);
  await log.flush();
  return 0;
}

function isWildcard(hostname: string): boolean {
  return hostname === "0.0.0.0" || hostname === "::" || hostname === "[::]";
}

/** Resolves on the first SIGINT or SIGTERM; calls `onRepeat` on any later one. */
function untilSignal(onRepeat: () => void): Promise<void> {
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  return new Promise((resolve) => {
    let received = false;
    const handler = () => {
      if (received) return onRepeat();
      received = true;
      resolve();
    };
    for (const signal of signals) Deno.addSignalListener(signal, handler);
  });
}
