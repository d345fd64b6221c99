/**
 * `tcpecho serve --workers N`, both sides: the pool on the main thread, and what runs in each
 * worker. Every worker listens on the shared port (`reusePort`, so the kernel spreads connections
 * over them) and runs the echo service `serve` runs alone; its log lines go to the main thread,
 * which writes every worker's lines to one output. A signal drains all workers as one, and the
 * totals are their counters added up.
 *
 * @module
 */

import { addStats } from "../lib/server/stats.ts";
import { RuntimeError, UsageError } from "../lib/base/errors.ts";
import type { ServerSnapshot } from "../lib/metrics/server_metrics.ts";
import type { TlsServerOptions } from "../lib/net/tls_server.ts";
import {
  type EchoService,
  type ServeSettings,
  type Serving,
  startEchoService,
} from "./echo_service.ts";
import { LineWriter } from "./line_writer.ts";
import type { ServerLog } from "./server_log.ts";

/** Where the workers listen. */
export interface WorkersAddress {
  host: string;
  /** 0 lets the first worker pick a free port, which the others then share. */
  port: number;
  /** Speak TLS with these settings. */
  tls?: TlsServerOptions;
}

/** What the main thread tells a worker. */
type ToWorker =
  /** Listen and serve, then report `listening` or `failed`. */
  | { type: "start"; worker: number; address: WorkersAddress; settings: ServeSettings }
  /** Report a `snapshot` of the counters. */
  | { type: "snapshot" }
  /** Stop accepting, report `draining`, drain, then report `stopped`. */
  | { type: "shutdown"; drainTimeout: number }
  /** Close everything at once (a second signal). */
  | { type: "abort" };

/** What a worker tells the main thread, in order. */
type FromWorker =
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

/** One worker as the main thread sees it. */
interface PooledWorker {
  readonly worker: Worker;
  post(message: ToWorker): void;
  /** The next reply of this type (replies of one type come in the order they were asked for). */
  next<T extends FromWorker["type"]>(type: T): Promise<Extract<FromWorker, { type: T }>>;
}

/**
 * Starts `count` workers serving `address` with `settings`, their log lines written through
 * `log`; resolves once every one listens, with the address they share.
 */
export async function startWorkers(
  count: number,
  address: WorkersAddress,
  settings: ServeSettings,
  log: ServerLog,
): Promise<Serving & { addr: Deno.NetAddr }> {
  checkWorkersCanRun();
  let crash: (err: Error) => void = () => {};
  const failed = new Promise<never>((_, reject) => crash = reject);
  failed.catch(() => {});
  const pool = Array.from({ length: count }, (_, index) => spawn(index + 1, log, crash));
  const terminate = () => pool.forEach(({ worker }) => worker.terminate());
  // The first worker picks the port (port 0 means any); the others join it. Resolve only once
  // every worker listens, so that no client arrives before all can take it.
  let addr: Deno.NetAddr | undefined;
  try {
    for (const [index, member] of pool.entries()) {
      const listening = member.next("listening");
      const refused = member.next("failed").then(({ message }) => {
        throw new RuntimeError(message);
      });
      member.post({
        type: "start",
        worker: index + 1,
        address: { ...address, port: addr?.port ?? address.port },
        settings,
      });
      const listeningAt = (await Promise.race([listening, refused, failed])).addr;
      addr ??= listeningAt;
    }
  } catch (err) {
    terminate();
    throw err;
  }
  const ask = <T extends FromWorker["type"]>(message: ToWorker, reply: T) =>
    Promise.race([
      Promise.all(pool.map((member) => {
        const answer = member.next(reply);
        member.post(message);
        return answer;
      })),
      failed,
    ]);
  // Once the workers have stopped, a scrape still waiting for one of them gets their final counts.
  const final = Promise.withResolvers<ServerSnapshot[]>();
  return {
    addr: addr!,
    failed,
    snapshots: () =>
      Promise.race([
        ask({ type: "snapshot" }, "snapshot").then((replies) => replies.map((r) => r.snapshot)),
        final.promise,
      ]),
    async shutdown(drainTimeout, onDraining) {
      try {
        const stopped = Promise.race([Promise.all(pool.map((m) => m.next("stopped"))), failed]);
        const draining = await ask({ type: "shutdown", drainTimeout }, "draining");
        onDraining(draining.reduce((open, reply) => open + reply.open, 0));
        const snapshots = (await stopped).map(({ snapshot }) => snapshot);
        final.resolve(snapshots);
        return snapshots.map(({ stats }) => stats).reduce(addStats);
      } finally {
        terminate();
      }
    },
    abort: () => pool.forEach((member) => member.post({ type: "abort" })),
  };
}

function spawn(index: number, log: ServerLog, crash: (err: Error) => void): PooledWorker {
  const worker = new Worker(Deno.mainModule, { type: "module", name: `worker ${index}` });
  const waiting = new Map<FromWorker["type"], ((message: FromWorker) => void)[]>();
  worker.onmessage = ({ data }: MessageEvent<FromWorker>) => {
    if (data.type === "out" || data.type === "err") {
      return log.relay(data.text, data.type === "err");
    }
    waiting.get(data.type)?.shift()?.(data);
  };
  worker.onerror = (event) => {
    event.preventDefault();
    crash(new RuntimeError(`worker ${index} failed: ${event.message}`));
  };
  return {
    worker,
    post: (message) => worker.postMessage(message),
    next: <T extends FromWorker["type"]>(type: T) =>
      new Promise<Extract<FromWorker, { type: T }>>((resolve) => {
        const queue = waiting.get(type) ?? [];
        queue.push(resolve as (message: FromWorker) => void);
        waiting.set(type, queue);
      }),
  };
}

/** Throws a one-line error when this process cannot run workers sharing a port. */
function checkWorkersCanRun(): void {
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
}
