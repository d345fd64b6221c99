/**
 * The worker's side of `tcpecho serve --workers N`: each worker runs this same program, and this
 * is what it runs. It loads the echo service only once told to start, so that `main.ts` can load
 * this file on every run for almost nothing, and answer the main thread's first message.
 *
 * @module
 */

import type { TlsServerOptions } from "../lib/net/tls_server.ts";
import type { EchoService, ServeSettings } from "./echo_service.ts";
import type { ServerSnapshot } from "../lib/metrics/server_metrics.ts";
import { LineWriter } from "./line_writer.ts";
import type { FaultSettings } from "../lib/faults/settings.ts";
import type { EchoServer, FaultChange, ServerLimits } from "../lib/server/echo_server.ts";

/** Where the workers listen. */
export interface WorkersAddress {
  host: string;
  /** 0 lets the first worker pick a free port, which the others then share. */
  port: number;
  /** Speak TLS with these settings. */
  tls?: TlsServerOptions;
}

/** What the main thread tells a worker. */
export type ToWorker =
  /** Listen and serve, then report `listening` or `failed`. */
  | { type: "start"; worker: number; address: WorkersAddress; settings: ServeSettings }
  /** Report a `snapshot` of the counters. */
  | { type: "snapshot" }
  /** Stop accepting, report `draining`, drain, then report `stopped`. */
  | { type: "shutdown"; drainTimeout: number }
  /** Close everything at once (a second signal). */
  | { type: "abort" }
  /** Make a change of the control API, then report `controlled`. */
  | { type: "control"; call: ControlCall };

/** A call of the control API, as a worker's server makes it. */
export type ControlCall =
  | { method: "setFaults"; settings: FaultSettings; change: FaultChange }
  | { method: "setReady"; ready: boolean }
  | { method: "setLimits"; limits: ServerLimits }
  | { method: "closeConnections"; options: { reset?: boolean; peer?: string } }
  | { method: "connections" };

/** What a worker tells the main thread, in order. */
export type FromWorker =
  | { type: "listening"; addr: Deno.NetAddr }
  | { type: "failed"; message: string }
  /** Whole log lines, each ending in a newline, for standard output or standard error. */
  | { type: "out" | "err"; text: string }
  | { type: "snapshot"; snapshot: ServerSnapshot }
  | { type: "draining"; open: number }
  /** Drained: its counters and echo times, final. */
  | { type: "stopped"; snapshot: ServerSnapshot }
  /** A control call made (with what it returned), or refused (with why). */
  | { type: "controlled"; result?: unknown; error?: string };

/** The part of a worker's global scope used here. */
interface WorkerScope {
  postMessage(message: FromWorker): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
}

/** Whether this code runs inside a Web Worker rather than on the main thread. */
export function isWorker(): boolean {
  return "WorkerGlobalScope" in globalThis;
}

/** Serves as one worker: waits for `start`, then answers the main thread until `shutdown`. */
export function runServeWorker(): void {
  const scope = globalThis as unknown as WorkerScope;
  const decoder = new TextDecoder();
  const sink = (type: "out" | "err") =>
    new LineWriter({
      write(bytes: Uint8Array): Promise<number> {
        scope.postMessage({ type, text: decoder.decode(bytes) });
        return Promise.resolve(bytes.length);
      },
    });
  let service: EchoService | undefined;
  let worker = 0;
  scope.onmessage = async ({ data: message }) => {
    switch (message.type) {
      case "start": {
        const { address, settings } = message;
        worker = message.worker;
        try {
          // Loaded here, not at the top: see the module's comment.
          const { startEchoService } = await import("./echo_service.ts");
          service = await startEchoService(
            { hostname: address.host, port: address.port, tls: address.tls, reusePort: true },
            false,
            settings,
            sink("out"),
            sink("err"),
            worker,
          );
        } catch (err) {
          return scope.postMessage({ type: "failed", message: (err as Error).message });
        }
        // The main thread says "waiting" once, after every worker listens.
        return scope.postMessage({
          type: "listening",
          addr: service.server.addr as Deno.NetAddr,
        });
      }
      case "snapshot":
        return scope.postMessage({ type: "snapshot", snapshot: service!.snapshot(worker) });
      case "shutdown": {
        const { server, log } = service!;
        scope.postMessage({ type: "draining", open: await server.stopAccepting() });
        await server.shutdown(message.drainTimeout);
        await log.flush();
        return scope.postMessage({ type: "stopped", snapshot: service!.snapshot(worker) });
      }
      case "abort":
        return service?.server.abort();
      case "control":
        try {
          const result = control(service!.server as EchoServer, message.call);
          return scope.postMessage({ type: "controlled", result });
        } catch (err) {
          return scope.postMessage({ type: "controlled", error: (err as Error).message });
        }
    }
  };
}

/** Makes `call` on this worker's server; throws what the server throws. */
function control(server: EchoServer, call: ControlCall): unknown {
  switch (call.method) {
    case "setFaults":
      return server.setFaults(call.settings, call.change);
    case "setReady":
      return server.setReady(call.ready);
    case "setLimits":
      return server.setLimits(call.limits);
    case "closeConnections":
      return server.closeConnections(call.options);
    case "connections":
      return server.connections();
  }
}
