/**
 * What `serve` runs, built by one function from one set of settings, on the main thread or in
 * each worker of `serve --workers`: an echo server (stream or UDP) with its log and, for
 * `--metrics`, its per-chunk echo times. {@linkcode Serving} is how `serve` drives it, whether it
 * is one server or a pool of workers. The UDP server, the PROXY codec and the metrics are loaded
 * only when the settings ask for them.
 *
 * @module
 */

import type { EchoServer } from "../lib/server/echo_server.ts";
import type { EchoStats } from "../lib/server/stats.ts";
import { startEchoServer } from "../lib/server/start.ts";
import type { HistogramSnapshot } from "../lib/metrics/prometheus.ts";
import type { FaultSettings } from "../lib/faults/settings.ts";
import type { ProxyMode } from "../lib/proxy/header.ts";
import type { ServerSnapshot } from "../lib/metrics/server_metrics.ts";
import type { ListenOptions } from "../lib/net/transport.ts";
import type { UdpEchoServer, UdpEchoServerOptions } from "../lib/server/udp_echo_server.ts";
import type { LineWriter } from "./line_writer.ts";
import { proxyTlvsDescriber, ServerLog } from "./server_log.ts";

/** How each echo server of `serve` behaves: the same on the main thread and in every worker. */
export interface ServeSettings {
  /** `text`: the classic transcript; `json`: one object per event. */
  format: "text" | "json";
  /** Log only the start-up line, errors and the summary. */
  quiet: boolean;
  /** Bytes read and echoed at a time (per logged line of a datagram, for UDP). */
  bufferSize: number;
  /** Milliseconds of silence after which a connection is closed. */
  idleTimeout?: number;
  /** Connections open at once, beyond which new ones are closed at once. */
  maxConnections?: number;
  /** Read a PROXY header of this version first on every connection. */
  proxyProtocol?: ProxyMode;
  /** Milliseconds for the whole PROXY header. */
  proxyTimeout?: number;
  /** The networks PROXY headers are honoured from (CIDR); default loopback and private. */
  proxyTrust?: string[];
  /** The greeting template, sent first on every connection. */
  greeting?: string;
  /** Time every chunk's echo, for `--metrics`; otherwise no clock is read per chunk. */
  timed: boolean;
  /** Faults to inject, with the seed every worker shares. */
  faults?: FaultSettings;
  /** Listen so that connections can be reset (`--control`); plain TCP only. */
  resettable?: boolean;
}

/** One running echo server with its log. */
export interface EchoService {
  /** The server; it owns its socket. */
  readonly server: EchoServer | UdpEchoServer;
  /** Its log. */
  readonly log: ServerLog;
  /** Its counters and echo times now, labelled with `worker` when several share a port. */
  snapshot(worker?: number): ServerSnapshot;
}

/**
 * Starts an echo server listening at `endpoint` (UDP when `udp`), with a log that writes to `out`
 * and `err`, naming `worker` on every line when several share the port. Throws like
 * `startEchoServer` when it cannot listen.
 */
export async function startEchoService(
  endpoint: ListenOptions,
  udp: boolean,
  settings: ServeSettings,
  out: LineWriter,
  err: LineWriter,
  worker?: number,
): Promise<EchoService> {
  const log = new ServerLog({
    format: settings.format,
    quiet: settings.quiet,
    out,
    err,
    worker,
    chunkSize: settings.bufferSize,
    describeProxyTlvs: await proxyTlvsDescriber(settings.proxyProtocol),
  });
  const echoTimes = settings.timed
    ? (await import("../lib/metrics/server_metrics.ts")).echoTimeHistogram()
    : undefined;
  const options = {
    onEvent: log.onEvent,
    onError: (message: string) => log.error(message),
    faults: settings.faults,
  };
  const server = udp
    ? await udpEchoServer(endpoint, { ...options, echoTimes })
    : await startEchoServer({
      ...endpoint,
      ...options,
      bufferSize: settings.bufferSize,
      idleTimeout: settings.idleTimeout,
      maxConnections: settings.maxConnections,
      proxyProtocol: settings.proxyProtocol,
      proxyTimeout: settings.proxyTimeout,
      proxyTrust: settings.proxyTrust,
      greeting: settings.greeting,
      worker,
      echoTimes,
      resettable: settings.resettable,
    });
  return {
    server,
    log,
    snapshot: (worker) => ({
      worker,
      stats: server.stats,
      echoTimes: echoTimes?.snapshot() ?? NO_ECHO_TIMES,
    }),
  };
}

/**
 * The echo times of a server that does not time its echoes: no one reads them, as only
 * `--metrics` times the echoes and shows them. A histogram with one bucket, so that the metrics
 * need not be loaded to make it.
 */
const NO_ECHO_TIMES: HistogramSnapshot = { bounds: [], counts: [0], sum: 0 };

/** A UDP echo server at `endpoint`; its module is loaded only for `serve --udp`. */
async function udpEchoServer(
  endpoint: ListenOptions,
  options: Omit<UdpEchoServerOptions, "socket">,
): Promise<UdpEchoServer> {
  const [{ listenDatagram }, { UdpEchoServer }] = await Promise.all([
    import("../lib/net/transport.ts"),
    import("../lib/server/udp_echo_server.ts"),
  ]);
  return new UdpEchoServer({ ...options, socket: listenDatagram(endpoint) });
}

/** How `serve` drives what it runs: one echo server, or a pool of workers sharing a port. */
export interface Serving {
  /** Counters and echo times of every server, for `/metrics`. */
  snapshots(): Promise<ServerSnapshot[]>;
  /**
   * Stops accepting and drains (see `EchoServer.shutdown`): `onDraining` learns how many
   * connections were open when the listeners closed. Resolves with the totals once all are closed.
   */
  shutdown(drainTimeout: number, onDraining: (open: number) => void): Promise<EchoStats>;
  /** Closes every listener and connection at once. */
  abort(): void;
  /** Rejects if the servers fail (a worker crashed); never resolves. */
  readonly failed: Promise<never>;
}

/** {@linkcode Serving} for a single echo service on this thread. */
export function serveAlone(service: EchoService): Serving {
  const { server } = service;
  return {
    snapshots: () => Promise.resolve([service.snapshot()]),
    async shutdown(drainTimeout, onDraining) {
      onDraining(await server.stopAccepting());
      await server.shutdown(drainTimeout);
      return server.stats;
    },
    abort: () => server.abort(),
    failed: new Promise<never>(() => {}),
  };
}
