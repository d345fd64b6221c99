/**
 * `tcpecho serve`: the echo server on the command line.
 *
 * @module
 */

import { duration, oneOf, wholeNumber } from "./cli/args.ts";
import { BUFFER_SIZE, type Command, command, option, parseCommand, toggle } from "./cli/flags.ts";
import { ExitCode } from "./cli/exit_codes.ts";
import { renderHelp } from "./cli/help.ts";
import { type EchoStats, startEchoServer } from "./lib/echo_server.ts";
import { printLine } from "./cli/output.ts";
import { FAULT_FLAGS, faultSettings } from "./cli/fault_flags.ts";
import type { FaultCounts, FaultSettings } from "./lib/faults.ts";
import { RuntimeError, UsageError } from "./lib/errors.ts";
import { droppedLinesNote, ServerLog } from "./cli/server_log.ts";
import { LineWriter } from "./cli/line_writer.ts";
import { listenDatagram } from "./lib/transport.ts";
import {
  SERVER_TRANSPORT_FLAGS,
  type ServerTransport,
  serverTransport,
} from "./cli/transport_flags.ts";
import { UdpEchoServer } from "./lib/udp_echo_server.ts";
import type { FromWorker, ToWorker, WorkerStart } from "./cli/serve_workers.ts";

/** `tcpecho serve`: what it does and the flags it takes. */
export const SERVE = command({
  name: "serve",
  summary: "run the echo server (localhost port 10000, 16 bytes at a time)",
  description: `Run an echo server: every byte a client sends is sent back to it, read and
written --buffer-size bytes at a time, with a line of log for each step. Serves many clients at
once; Ctrl-C or SIGTERM stops accepting, finishes the echoes in flight and prints a summary.
Speaks TCP (IPv4 or IPv6), TLS, Unix domain sockets or UDP.`,
  flags: {
    ...SERVER_TRANSPORT_FLAGS,
    "buffer-size": {
      ...BUFFER_SIZE,
      help: "bytes read and echoed at a time, 1 B to 16 MiB; takes suffixes KiB and MiB; " +
        "with --udp, bytes per received line of the log",
    },
    quiet: toggle({ short: "q", help: "log only the start-up line, errors and the summary" }),
    log: option({
      value: "FORMAT",
      help: "text (the classic transcript) or json (one object per event)",
      default: "text",
      parse: oneOf("text", "json"),
    }),
    "idle-timeout": option({
      value: "S",
      help: "close a connection after S seconds with no byte in or out",
      absent: "never",
      parse: duration(),
    }),
    "max-connections": option({
      value: "N",
      help: "close new connections at once while N are open (per worker with --workers), " +
        "with a log line",
      absent: "no limit",
      parse: wholeNumber(1, 1_000_000),
    }),
    "drain-timeout": option({
      value: "S",
      help: "seconds to finish echoes in flight at shutdown; a second signal stops at once",
      default: "5",
      parse: duration({ allowZero: true }),
    }),
    "proxy-protocol": option({
      value: "VERSION",
      help: "read a PROXY protocol header (v1, v2, or any: either) at the start of every " +
        "connection and serve the client it names; only for a port that clients reach " +
        "through the proxy alone",
      absent: "off",
      parse: oneOf("v1", "v2", "any"),
    }),
    "proxy-timeout": option({
      value: "S",
      help: "seconds a connection has to send its whole PROXY header",
      default: "3",
      parse: duration(),
    }),
    workers: option({
      short: "w",
      value: "N",
      help: "serve on N threads sharing the port, the kernel spreading connections over them, " +
        "with one log and one shutdown; TCP or TLS (Linux; needs deno run --unstable-net)",
      default: "1",
      parse: wholeNumber(1, 256),
    }),
    ...FAULT_FLAGS,
  },
  examples: [
    "tcpecho serve",
    "tcpecho serve --port 0 --quiet",
    "tcpecho serve --host ::1 --port 7 --log json",
    "tcpecho serve --workers 2 --quiet",
    "tcpecho serve --tls-cert cert.pem --tls-key key.pem --port 4433",
    "tcpecho serve --unix /tmp/echo.sock",
    "tcpecho serve --udp",
    "tcpecho serve --proxy-protocol v2 --log json",
    "tcpecho serve --delay 50 --jitter 10 --quiet",
    "tcpecho serve --reset-after 1KiB --fault-rate 0.5 --seed 7",
    "tcpecho serve --udp --drop-rate 0.1 --seed 1",
  ],
});

type ServeFlags = typeof SERVE extends Command<infer F> ? F : never;

/** Characters of log allowed to wait for a slow standard output before lines are dropped. */
const LOG_QUEUE_LIMIT = 4 * 1024 * 1024;

/** Runs `tcpecho serve` with `args` until a signal stops it; returns the exit code. */
export async function serve(args: string[]): Promise<number> {
  const { flags } = parseCommand(SERVE, args);
  if (flags.help) {
    printLine(renderHelp(SERVE));
    return 0;
  }
  const transport = await serverTransport("serve", flags);
  try {
    return await serveOn(transport, flags);
  } finally {
    if (transport.caFileTemporary) await Deno.remove(transport.caFile!).catch(() => {});
  }
}

/** Serves on the transport chosen until a signal stops it; returns the exit code. */
async function serveOn(
  transport: ServerTransport,
  flags: ReturnType<typeof parseCommand<ServeFlags>>["flags"],
): Promise<number> {
  const bufferSize = flags["buffer-size"];
  const format = flags.log;
  const drainTimeout = flags["drain-timeout"];
  const idleTimeout = flags["idle-timeout"];
  const maxConnections = flags["max-connections"];
  const workers = flags.workers;
  const proxyProtocol = flags["proxy-protocol"];
  const proxyTimeout = flags["proxy-timeout"];
  const { endpoint, udp } = transport;
  if (workers > 1 && (udp || endpoint.unix !== undefined)) {
    throw new UsageError(
      `--workers serves TCP and TLS only, not ${udp ? "--udp" : "--unix"} ` +
        "(see 'tcpecho serve --help')",
    );
  }
  if (proxyProtocol && udp) {
    throw new UsageError(
      "--proxy-protocol works over TCP and Unix sockets, not with --udp (see 'tcpecho serve --help')",
    );
  }
  const faults = faultSettings(flags, {
    udp,
    tls: endpoint.tls !== undefined,
    unix: endpoint.unix !== undefined,
    workers,
  });

  // A stalled terminal or pipe must not let a flood of data grow the log's queue without bound.
  const logLimits = { maxQueued: LOG_QUEUE_LIMIT, droppedNote: droppedLinesNote(format) };
  const log = new ServerLog({
    format,
    quiet: flags.quiet,
    out: new LineWriter(Deno.stdout, logLimits),
    err: new LineWriter(Deno.stderr, logLimits),
    chunkSize: bufferSize,
    proxyProtocol: proxyProtocol !== undefined,
  });
  const host = endpoint.hostname ?? "";
  if (workers > 1) {
    const settings = {
      host,
      port: endpoint.port!,
      bufferSize,
      format,
      quiet: flags.quiet,
      idleTimeout,
      maxConnections,
      proxyProtocol,
      proxyTimeout,
      tls: endpoint.tls,
      faults,
    } as const;
    return await serveOnWorkers(log, settings, workers, drainTimeout, transport);
  }

  const options = {
    onEvent: log.onEvent,
    onError: (message: string) => log.error(message),
    faults,
  };
  const server = udp
    ? new UdpEchoServer({ ...options, socket: listenDatagram(endpoint) })
    : await startEchoServer({
      ...endpoint,
      ...options,
      bufferSize,
      idleTimeout,
      maxConnections,
      proxyProtocol,
      proxyTimeout,
    });
  announce(log, host, server.addr, 1, transport, faults);
  log.onEvent?.({ type: "idle" });

  let forced = false;
  await untilSignal(() => {
    // A second signal: the operator wants out now, so close everything without draining.
    forced = true;
    server.abort();
  });
  log.draining(server.stats.open);
  await server.shutdown(drainTimeout);
  log.summary(server.stats);
  await log.flush();
  return forced ? ExitCode.interrupted : ExitCode.ok;
}

/**
 * The start-up line, the warnings about the certificate, and one when the port is open to the
 * network.
 */
function announce(
  log: ServerLog,
  host: string,
  addr: Deno.Addr,
  workers: number,
  transport: ServerTransport,
  faults?: FaultSettings,
): void {
  const tls = transport.endpoint.tls === undefined ? undefined : { caFile: transport.caFile };
  log.listening(host, addr, workers, tls, faults);
  for (const warning of transport.warnings) log.warn(warning);
  if ("hostname" in addr && isWildcard(addr.hostname)) {
    log.warn(`listening on every interface: port ${addr.port} is reachable from the network`);
  }
}

/**
 * Serves on `count` Web Workers, each with its own listener on the same port (`reusePort`), so
 * that the kernel spreads connections over them. Their log lines reach this thread whole and are
 * written to one output in the order each worker wrote them; a signal drains every worker, and
 * one summary adds up their counts.
 */
async function serveOnWorkers(
  log: ServerLog,
  settings: Omit<WorkerStart, "type" | "worker">,
  count: number,
  drainTimeout: number,
  transport: ServerTransport,
): Promise<number> {
  if (Deno.build.os !== "linux") {
    throw new UsageError("--workers needs Linux, where listeners can share a port");
  }
  // reusePort without --unstable-net ends the process at once, so ask before listening.
  if (!("listenDatagram" in Deno)) {
    throw new UsageError("--workers needs the --unstable-net flag: deno run --unstable-net ...");
  }
  // Each worker loads this program again, which takes read access to its files.
  const programDir = new URL(".", Deno.mainModule);
  if (
    programDir.protocol === "file:" &&
    Deno.permissions.querySync({ name: "read", path: programDir }).state !== "granted"
  ) {
    const path = decodeURIComponent(programDir.pathname);
    throw new RuntimeError(
      `--workers needs to read the program: run deno with --allow-read=${path}`,
    );
  }
  let crash: (err: Error) => void = () => {};
  const crashed = new Promise<never>((_, reject) => crash = reject);
  const workers = Array.from({ length: count }, (_, index) => {
    const worker = new Worker(Deno.mainModule, { type: "module", name: `worker ${index + 1}` });
    const listening = Promise.withResolvers<Deno.NetAddr>();
    const stopped = Promise.withResolvers<EchoStats>();
    worker.onmessage = ({ data }: MessageEvent<FromWorker>) => {
      switch (data.type) {
        case "listening":
          return listening.resolve(data.addr);
        case "failed":
          return listening.reject(new RuntimeError(data.message));
        case "out":
        case "err":
          return log.relay(data.text, data.type === "err");
        case "stopped":
          return stopped.resolve(data.stats);
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      crash(new RuntimeError(`worker ${index + 1} failed: ${event.message}`));
    };
    const post = (message: ToWorker) => worker.postMessage(message);
    return { worker, post, listening: listening.promise, stopped: stopped.promise };
  });
  let aborted = false;
  try {
    // The first worker picks the port (port 0 means any); the others join it.
    // Announce only once every worker listens, so that no client arrives before all can take it.
    let first: Deno.NetAddr | undefined;
    for (const [index, { post, listening }] of workers.entries()) {
      post({ type: "start", worker: index + 1, ...settings, port: first?.port ?? settings.port });
      const addr = await Promise.race([listening, crashed]);
      first ??= addr;
    }
    announce(log, settings.host, first!, count, transport, settings.faults);
    log.onEvent?.({ type: "idle" });
    await Promise.race([
      untilSignal(() => {
        // A second signal: the operator wants out now.
        aborted = true;
        for (const { post } of workers) post({ type: "abort" });
      }),
      crashed,
    ]);
    for (const { post } of workers) post({ type: "shutdown", drainTimeout });
    const totals = (await Promise.race([Promise.all(workers.map((w) => w.stopped)), crashed]))
      .reduce((sum, stats) => ({
        connections: sum.connections + stats.connections,
        open: sum.open + stats.open,
        datagrams: 0,
        bytesEchoed: sum.bytesEchoed + stats.bytesEchoed,
        bytesReceived: sum.bytesReceived + stats.bytesReceived,
        bytesDiscarded: sum.bytesDiscarded + stats.bytesDiscarded,
        rejected: sum.rejected + stats.rejected,
        proxyRefused: sum.proxyRefused + stats.proxyRefused,
        faults: addCounts(sum.faults, stats.faults),
      }));
    log.summary(totals);
  } finally {
    for (const { worker } of workers) worker.terminate();
    await log.flush();
  }
  return aborted ? ExitCode.interrupted : ExitCode.ok;
}

function addCounts(a: FaultCounts, b: FaultCounts): FaultCounts {
  const sum = { ...a };
  for (const [kind, count] of Object.entries(b) as [keyof FaultCounts, number][]) {
    sum[kind] = (sum[kind] ?? 0) + count;
  }
  return sum;
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
