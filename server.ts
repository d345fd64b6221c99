/**
 * `tcpecho serve`: the echo server on the command line. What only some flags use (the worker pool,
 * the metrics endpoint, TLS, PROXY, faults) is loaded only when they are given.
 *
 * @module
 */

import { duration, listenAddress, oneOf, wholeNumber } from "./cli/args.ts";
import {
  serveAlone,
  type ServeSettings,
  type Serving,
  startEchoService,
} from "./cli/echo_service.ts";
import { ExitCode } from "./cli/exit_codes.ts";
import { FAULT_FLAGS, faultSettings } from "./cli/fault_flags.ts";
import { needsReset } from "./lib/faults/settings.ts";
import { type Control, CONTROL_FLAGS, controlSetup, startControl } from "./cli/control_flags.ts";
import { BUFFER_SIZE, type Command, command, option, parseCommand, toggle } from "./cli/flags.ts";
import { renderHelp } from "./cli/help.ts";
import { printLine } from "./cli/output.ts";
import { greetingTemplate } from "./lib/server/greeting.ts";
import { LineWriter } from "./cli/line_writer.ts";
import { networkList } from "./cli/network_list.ts";
import { isLoopback } from "./lib/net/peer.ts";
import {
  droppedLinesNote,
  type InjectedFaults,
  proxyTlvsDescriber,
  ServerLog,
} from "./cli/server_log.ts";
import {
  SERVER_TRANSPORT_FLAGS,
  type ServerTransport,
  serverTransport,
} from "./cli/transport_flags.ts";
import { UsageError } from "./lib/base/errors.ts";
import type { serveMetrics } from "./lib/metrics/endpoint.ts";
import type { serverMetricsText, ServerPhase } from "./lib/metrics/server_metrics.ts";

/** `tcpecho serve`: what it does and the flags it takes. */
export const SERVE = command({
  name: "serve",
  summary: "run the echo server (localhost port 10000, 16 bytes at a time)",
  description: `Run an echo server: every byte a client sends is sent back to it, read and
written --buffer-size bytes at a time, with a line of log for each step. Serves many clients at
once; Ctrl-C or SIGTERM stops accepting, lets open connections end by themselves (up to
--drain-timeout, then cuts them cleanly) and prints a summary.
Speaks TCP (IPv4 or IPv6), TLS, Unix domain sockets or UDP.`,
  flags: {
    ...SERVER_TRANSPORT_FLAGS,
    "buffer-size": {
      ...BUFFER_SIZE,
      help: "bytes read and echoed at a time, 1 B to 16 MiB; " +
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
      value: "TIME",
      help: "close a connection after TIME with no byte in or out",
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
      value: "TIME",
      help: "at shutdown, how long open connections get to end by themselves before they are " +
        "cut cleanly (what was read is echoed, then FIN); a second signal stops at once",
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
    "proxy-trust": option({
      value: "CIDRS",
      help: "with --proxy-protocol: honour PROXY headers only from these networks, separated " +
        "by commas (10.0.0.0/8,2001:db8::/32); a header from elsewhere is refused and logged",
      absent: "loopback and private networks (127.0.0.0/8, ::1, 10.0.0.0/8, 172.16.0.0/12, " +
        "192.168.0.0/16, fc00::/7); Unix sockets always",
      parse: networkList,
    }),
    "proxy-timeout": option({
      value: "TIME",
      help: "how long a connection has to send its whole PROXY header",
      default: "3",
      parse: duration(),
    }),
    "shutdown-delay": option({
      value: "TIME",
      help: "how long to go on accepting after the first signal while /readyz reports not " +
        "ready, before the drain",
      default: "0",
      parse: duration({ allowZero: true }),
    }),
    metrics: option({
      value: "HOST:PORT",
      help: "serve /metrics (Prometheus), /healthz and /readyz over HTTP at HOST:PORT, or at " +
        "127.0.0.1:PORT given a port alone",
      absent: "off",
      parse: listenAddress,
    }),
    greeting: option({
      value: "TEXT",
      help: "send TEXT and a newline first on every connection, with {host}, {port}, {worker} " +
        "and {conn} filled in, to tell backends apart behind a load balancer",
      absent: "none",
      parse: greetingText,
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
    ...CONTROL_FLAGS,
  },
  examples: [
    "tcpecho serve",
    "tcpecho serve --port 0 --quiet",
    "tcpecho serve --host ::1 --port 7 --log json",
    "tcpecho serve --workers 2 --quiet",
    "tcpecho serve --metrics 9464 --shutdown-delay 5 --drain-timeout 20",
    "tcpecho serve --tls-cert cert.pem --tls-key key.pem --port 4433",
    "tcpecho serve --unix /tmp/echo.sock",
    "tcpecho serve --udp",
    "tcpecho serve --proxy-protocol v2 --log json",
    "tcpecho serve --delay 50 --jitter 10 --quiet",
    "tcpecho serve --reset-after 1KiB --fault-rate 0.5 --seed 7",
    "tcpecho serve --udp --drop-rate 0.1 --seed 1",
    'tcpecho serve --port 7001 --greeting "backend {host}:{port}"',
    "tcpecho serve --control 9000 --seed 7",
  ],
});

type ServeFlags = typeof SERVE extends Command<infer F> ? F : never;

/** A greeting template, checked: a mistake in it is a usage error naming the flag. */
function greetingText(text: string, flag: string): string {
  try {
    greetingTemplate(text);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
  return text;
}

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
  const proxyTrust = flags["proxy-trust"];
  const shutdownDelay = flags["shutdown-delay"];
  const metrics = flags.metrics;
  const greeting = flags.greeting;
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
  const control = await controlSetup(flags);
  const faults = faultSettings(flags, {
    udp,
    tls: endpoint.tls !== undefined,
    unix: endpoint.unix !== undefined,
    workers,
    control: control !== undefined,
  });

  if (greeting !== undefined && udp) {
    throw new UsageError(
      "--greeting needs a stream transport: TCP, TLS or --unix, not --udp " +
        "(see 'tcpecho serve --help')",
    );
  }

  // A stalled terminal or pipe must not let a flood of data grow the log's queue without bound.
  const logLimits = { maxQueued: LOG_QUEUE_LIMIT, droppedNote: droppedLinesNote(format) };
  const out = new LineWriter(Deno.stdout, logLimits);
  const err = new LineWriter(Deno.stderr, logLimits);
  const settings: ServeSettings = {
    format,
    quiet: flags.quiet,
    bufferSize,
    idleTimeout,
    maxConnections,
    proxyProtocol,
    proxyTimeout,
    proxyTrust,
    greeting,
    timed: metrics !== undefined,
    // Changes of the control API without a seed run on the run's: the same on every worker.
    faults: faults?.settings ??
      (control && { seed: flags.seed ?? crypto.getRandomValues(new Uint32Array(1))[0] }),
    resettable: control?.resets,
  };
  const host = endpoint.hostname ?? "";
  // Loaded before the start-up line: from then on a signal may come, and must find its handler.
  const lifecycle: Lifecycle = {
    drainTimeout,
    shutdownDelay,
    metrics: metrics && { at: metrics, ...await loadMetrics() },
  };
  let serving: Serving;
  let log: ServerLog;
  let controlled: Parameters<typeof startControl>[2];
  if (workers > 1) {
    // The main thread's log only relays the workers' lines and speaks for the whole pool.
    log = new ServerLog({
      format,
      quiet: settings.quiet,
      out,
      err,
      describeProxyTlvs: await proxyTlvsDescriber(proxyProtocol),
    });
    const { startWorkers } = await import("./cli/serve_workers.ts");
    const pool = await startWorkers(
      workers,
      { host, port: endpoint.port!, tls: endpoint.tls },
      settings,
      log,
    );
    announce(log, host, pool.addr, workers, transport, faults);
    serving = pool;
    controlled = pool.control;
  } else {
    const service = await startEchoService(endpoint, udp, settings, out, err);
    log = service.log;
    announce(log, host, service.server.addr, 1, transport, faults);
    serving = serveAlone(service);
    controlled = service.server;
  }
  if (control) {
    // A server that started with a reset fault listens so that it can reset, flag or not.
    const resettable = needsReset(settings.faults);
    const seed = settings.faults!.seed!;
    lifecycle.control = await startControl(control, log, controlled, seed, resettable);
  }
  try {
    return await runUntilStopped(serving, log, lifecycle);
  } finally {
    await log.flush();
  }
}

/** What happens at shutdown, and where the metrics go. */
interface Lifecycle {
  drainTimeout: number;
  shutdownDelay: number;
  metrics?: { at: { hostname: string; port: number } } & Metrics;
  control?: Control;
}

/** What `--metrics` runs. */
interface Metrics {
  serveMetrics: typeof serveMetrics;
  serverMetricsText: typeof serverMetricsText;
}

/** The metrics endpoint and text, loaded only for `--metrics`. */
async function loadMetrics(): Promise<Metrics> {
  const [{ serveMetrics }, { serverMetricsText }] = await Promise.all([
    import("./lib/metrics/endpoint.ts"),
    import("./lib/metrics/server_metrics.ts"),
  ]);
  return { serveMetrics, serverMetricsText };
}

/**
 * Serves until a signal, then stops: reports not ready for the shutdown delay while still
 * accepting, drains, and prints the summary. A second signal at any point stops at once.
 * Returns the exit code: 0, or 130 (interrupted) after a second signal.
 */
async function runUntilStopped(serving: Serving, log: ServerLog, lifecycle: Lifecycle) {
  let phase: ServerPhase = "serving";
  const { metrics: metricsSetup } = lifecycle;
  const metrics = metricsSetup?.serveMetrics({
    ...metricsSetup.at,
    metrics: async () =>
      metricsSetup.serverMetricsText(await serving.snapshots(), phase) +
      (lifecycle.control?.metricsText() ?? ""),
    ready: () => phase === "serving" && (lifecycle.control?.ready() ?? true),
    onError: (message) => log.error(message),
  });
  if (metrics) log.metricsAt(metrics.addr);
  if (metrics && !isLoopback(metrics.addr.hostname)) {
    log.warn(
      `the metrics endpoint listens on ${metrics.addr.hostname}: port ${metrics.addr.port} is ` +
        "reachable from the network",
    );
  }
  try {
    log.onEvent?.({ type: "idle" });
    const signals = watchSignals();
    await Promise.race([signals.first, serving.failed]);
    let aborted = false;
    const abort = () => {
      aborted = true;
      serving.abort();
    };
    if (lifecycle.shutdownDelay > 0) {
      phase = "stopping";
      log.stopping(lifecycle.shutdownDelay);
      const delay = wait(lifecycle.shutdownDelay);
      await Promise.race([delay.done, signals.again, serving.failed]);
      delay.cancel();
    }
    phase = "draining";
    // A second signal, during the delay or now: the operator wants out now.
    signals.again.then(abort);
    if (signals.repeated) abort();
    const totals = await Promise.race([
      serving.shutdown(lifecycle.drainTimeout, (open) => {
        if (!aborted) log.draining(open, lifecycle.drainTimeout);
      }),
      serving.failed,
    ]);
    log.summary(totals, aborted);
    return aborted ? ExitCode.interrupted : ExitCode.ok;
  } finally {
    await metrics?.shutdown();
    await lifecycle.control?.endpoint.shutdown();
  }
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
  faults?: InjectedFaults,
): void {
  const tls = transport.endpoint.tls === undefined ? undefined : { caFile: transport.caFile };
  log.listening(host, addr, workers, tls, faults);
  for (const warning of transport.warnings) log.warn(warning);
  if ("hostname" in addr && isWildcard(addr.hostname)) {
    log.warn(`listening on every interface: port ${addr.port} is reachable from the network`);
  }
}

function isWildcard(hostname: string): boolean {
  return hostname === "0.0.0.0" || hostname === "::" || hostname === "[::]";
}

/** The first SIGINT or SIGTERM, and the next one. */
interface Signals {
  readonly first: Promise<void>;
  readonly again: Promise<void>;
  /** True once a second signal came. */
  readonly repeated: boolean;
}

function watchSignals(): Signals {
  const names: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  const first = Promise.withResolvers<void>();
  const again = Promise.withResolvers<void>();
  let count = 0;
  const handler = () => {
    count++;
    (count === 1 ? first : again).resolve();
  };
  for (const name of names) Deno.addSignalListener(name, handler);
  return {
    first: first.promise,
    again: again.promise,
    get repeated() {
      return count > 1;
    },
  };
}

/** A timer that can be cancelled; `done` resolves when it fires. */
function wait(ms: number): { done: Promise<void>; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const done = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  return { done, cancel: () => clearTimeout(timer) };
}
