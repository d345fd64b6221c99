/**
 * `tcpecho serve --workers N`, the pool on the main thread (`serve_worker.ts` is what runs in
 * each worker). Every worker listens on the shared port (`reusePort`, so the kernel spreads connections
 * over them) and runs the echo service `serve` runs alone; its log lines go to the main thread,
 * which writes every worker's lines to one output. A signal drains all workers as one, and the
 * totals are their counters added up.
 *
 * @module
 */

import { addStats } from "../lib/server/stats.ts";
import { RuntimeError, UsageError } from "../lib/base/errors.ts";
import type { ServerSnapshot } from "../lib/metrics/server_metrics.ts";
import type { ServeSettings, Serving } from "./echo_service.ts";
import type { ServerLog } from "./server_log.ts";
import type { ControlCall, FromWorker, ToWorker, WorkersAddress } from "./serve_worker.ts";
import type { ControlTarget } from "../lib/control/api.ts";
import type { FaultSettings } from "../lib/faults/settings.ts";
import type { OpenConnection } from "../lib/server/echo_server.ts";

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
): Promise<Serving & { addr: Deno.NetAddr; control: ControlTarget }> {
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
  /** Makes `call` on every worker; resolves with their answers once all have it. */
  const control = async (call: ControlCall): Promise<unknown[]> => {
    const replies = await ask({ type: "control", call }, "controlled");
    const refused = replies.find((reply) => reply.error !== undefined);
    if (refused) throw new UsageError(refused.error!);
    return replies.map((reply) => reply.result);
  };
  return {
    addr: addr!,
    failed,
    control: workersTarget(count, settings, control),
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

/**
 * The control API's view of the pool: a change reaches every worker before it resolves. The
 * main thread keeps what they all share (the faults, the limits, readiness), which every change
 * goes through; the connections are each worker's.
 */
function workersTarget(
  count: number,
  settings: ServeSettings,
  control: (call: ControlCall) => Promise<unknown[]>,
): ControlTarget {
  let faults: Readonly<FaultSettings> | undefined = settings.faults;
  let ready = true;
  let passing: ReturnType<typeof setTimeout> | undefined;
  const limits = { maxConnections: settings.maxConnections, idleTimeout: settings.idleTimeout };
  return {
    servers: count,
    udp: false,
    faults: () => Promise.resolve(faults),
    async setFaults(next, change) {
      // Every worker makes the same choices: the same seed for all.
      const seeded = { ...next, seed: next.seed ?? faults?.seed ?? settings.faults?.seed };
      await control({ method: "setFaults", settings: seeded, change });
      const before = faults;
      faults = Object.keys(next).length === 0 ? undefined : seeded;
      clearTimeout(passing);
      // The workers undo a change with `for` themselves; this copy follows them.
      if (change.for !== undefined) passing = setTimeout(() => faults = before, change.for);
    },
    ready: () => ready,
    async setReady(next) {
      await control({ method: "setReady", ready: next });
      ready = next;
    },
    limits: () => Promise.resolve({ ...limits }),
    async setLimits(next) {
      await control({ method: "setLimits", limits: next });
      if (next.maxConnections !== undefined) {
        limits.maxConnections = next.maxConnections ?? undefined;
      }
      if (next.idleTimeout !== undefined) limits.idleTimeout = next.idleTimeout ?? undefined;
    },
    async closeConnections(options) {
      const closed = await control({ method: "closeConnections", options });
      return (closed as number[]).reduce((sum, n) => sum + n, 0);
    },
    async connections() {
      const lists = await control({ method: "connections" });
      return (lists as OpenConnection[][]).flat().sort((a, b) => b.age - a.age);
    },
  };
}
