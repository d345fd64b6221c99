/**
 * `tcpecho serve --workers N`, inside one worker: a listener on the shared port (`reusePort`, so
 * the kernel spreads connections over the workers), an echo server, and a log whose lines go to
 * the main thread, which writes every worker's lines to one output.
 *
 * @module
 */

import { EchoServer, type EchoStats, noStats, startEchoServer } from "../lib/echo_server.ts";
import { ServerLog } from "./server_log.ts";
import { LineWriter } from "./line_writer.ts";
import type { TlsServerOptions } from "../lib/tls_server.ts";
import type { ProxyMode } from "../lib/proxy_header.ts";
import type { FaultSettings } from "../lib/faults.ts";

/** How the main thread sets a worker going. */
export interface WorkerStart {
  type: "start";
  /** 1 for the first worker, 2 for the next, and so on. */
  worker: number;
  host: string;
  port: number;
  bufferSize: number;
  format: "text" | "json";
  quiet: boolean;
  idleTimeout?: number;
  maxConnections?: number;
  /** Read a PROXY header of this version first on every connection. */
  proxyProtocol?: ProxyMode;
  /** Milliseconds for the whole PROXY header. */
  proxyTimeout?: number;
  /** Speak TLS with these settings. */
  tls?: TlsServerOptions;
  /** Faults to inject, with the seed every worker shares. */
  faults?: FaultSettings;
}

/** What the main thread tells a worker. */
export type ToWorker =
  | WorkerStart
  /** Stop accepting, drain, then report `stopped`. */
  | { type: "shutdown"; drainTimeout: number }
  /** Close everything at once (a second signal). */
  | { type: "abort" };

/** What a worker tells the main thread, in order. */
export type FromWorker =
  | { type: "listening"; addr: Deno.NetAddr }
  | { type: "failed"; message: string }
  /** Whole log lines, each ending in a newline, for standard output or standard error. */
  | { type: "out" | "err"; text: string }
  | { type: "stopped"; stats: EchoStats };

/** The part of a worker's global scope used here. */
interface WorkerScope {
  postMessage(message: FromWorker): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
}

/** Whether this code runs inside a Web Worker rather than on the main thread. */
export function isWorker(): boolean {
  return "WorkerGlobalScope" in globalThis;
}

/** Serves as one worker: waits for `start`, then for `shutdown` or `abort`. */
export function runServeWorker(): void {
  const scope = globalThis as unknown as WorkerScope;
  const decoder = new TextDecoder();
  const sink = (type: "out" | "err") => ({
    write(bytes: Uint8Array): Promise<number> {
      scope.postMessage({ type, text: decoder.decode(bytes) });
      return Promise.resolve(bytes.length);
    },
  });
  let server: EchoServer | undefined;
  let log: ServerLog | undefined;
  scope.onmessage = async ({ data: message }) => {
    switch (message.type) {
      case "start": {
        log = new ServerLog({
          format: message.format,
          quiet: message.quiet,
          out: new LineWriter(sink("out")),
          err: new LineWriter(sink("err")),
          worker: message.worker,
          proxyProtocol: message.proxyProtocol !== undefined,
        });
        try {
          server = await startEchoServer({
            hostname: message.host,
            port: message.port,
            tls: message.tls,
            reusePort: true,
            bufferSize: message.bufferSize,
            idleTimeout: message.idleTimeout,
            maxConnections: message.maxConnections,
            proxyProtocol: message.proxyProtocol,
            proxyTimeout: message.proxyTimeout,
            faults: message.faults,
            onEvent: log.onEvent,
            onError: log.error.bind(log),
          });
        } catch (err) {
          return scope.postMessage({ type: "failed", message: (err as Error).message });
        }
        scope.postMessage({ type: "listening", addr: server.addr as Deno.NetAddr });
        // The main thread says "waiting" once, after every worker listens.
        return;
      }
      case "shutdown":
        await server?.shutdown(message.drainTimeout);
        await log?.flush();
        return scope.postMessage({
          type: "stopped",
          stats: server?.stats ?? noStats(),
        });
      case "abort":
        return server?.abort();
    }
  };
}
