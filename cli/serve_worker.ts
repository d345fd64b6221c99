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
  | { type: "abort" };

/** What a worker tells the main thread, in order. */
export type FromWorker =
  | { type: "listening"; addr: Deno.NetAddr }
  | { type: "failed"; message: string }
  /** Whole log lines, each ending in a newline, for standard output or standard error. */
  | { type: "out" | "err"; text: string }
  | { type: "snapshot"; snapshot: ServerSnapshot }
  | { type: "draining"; open: number }
  /** Drained: its counters and echo times, final. */
  | { type: "stopped"; snapshot: ServerSnapshot };

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
    }
  };
}
