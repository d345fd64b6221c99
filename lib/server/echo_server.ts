/**
 * The echo server: an accept loop that never dies on one bad accept, the limits (how many
 * connections, how long one may stay silent), and the drain, cut and abort of shutdown. Each
 * connection it admits runs its own session (see `session.ts`): stages, echo, release.
 *
 * @module
 */

import { errorReason, UsageError } from "../base/errors.ts";
import { MAX_TIMER_MS, settlesWithin, sleep } from "../base/timers.ts";
import { echoing, moveTo } from "./connection_state.ts";
import type { EchoEvent } from "./events.ts";
import { greetingTemplate } from "./greeting.ts";
import {
  checkChange,
  type FaultChange,
  mergedFaults,
  type ServerFaults,
  serverFaults,
} from "./_server_faults.ts";
import {
  type Connection,
  type FaultedEcho,
  hangUp,
  isPeerGone,
  loadFaults,
  loadProxyStage,
  runSession,
  sendFin,
  type SessionContext,
} from "./session.ts";
import { type EchoStats, type EchoTimeRecorder, noStats } from "./stats.ts";
import { type FaultSettings, needsReset } from "../faults/settings.ts";
import type { TlsServer } from "../net/tls_server.ts";
import type { StreamConn } from "../net/stream_conn.ts";
import type { ProxyMode } from "../proxy/header.ts";

export type { FaultChange };

/** How an echo server behaves. */
export interface EchoServerOptions<A extends Deno.Addr = Deno.Addr> {
  /**
   * The socket to serve; the server owns it from now on and closes it on shutdown. TLS and the
   * reset faults need a listener that owns its sockets (`listenTcp`'s), whose connections can be
   * handed to the TLS stage and can send a TCP reset.
   */
  listener: StreamListener<A>;
  /**
   * Run this TLS handshake on each connection before echoing; `listener` must then own its
   * sockets (from `listenTcp`).
   */
  tls?: TlsServer;
  /** Bytes read (and echoed) at a time per connection. Default 16. */
  bufferSize?: number;
  /** Called for every event; omit it to run without any per-chunk work. */
  onEvent?: (event: EchoEvent) => void;
  /** Called when something fails that ends no connection, such as an accept. */
  onError?: (message: string) => void;
  /**
   * Close a connection after this many milliseconds in which nothing was received from it and
   * nothing could be sent to it. Default: never.
   */
  idleTimeout?: number;
  /** Close new connections at once while this many are open. Default: no limit. */
  maxConnections?: number;
  /**
   * Read a PROXY protocol header of this version (`any`: either) at the start of every
   * connection, before anything else, and serve the client it names. Default: none; never turn
   * it on for a port that clients reach without the proxy, since they could claim any address.
   */
  proxyProtocol?: ProxyMode;
  /** Milliseconds a connection has to send its whole PROXY header. Default 3000. */
  proxyTimeout?: number;
  /**
   * With `proxyProtocol`: the networks (CIDR, such as `10.0.0.0/8`) PROXY headers are honoured
   * from; a connection from elsewhere is refused (`proxy-refused`). Default: loopback and the
   * private ranges (`DEFAULT_PROXY_TRUST`); Unix sockets are always trusted.
   */
  proxyTrust?: readonly string[];
  /**
   * Counts the seconds from each chunk read to the end of its echo's write; omit it to read no
   * clock per chunk.
   */
  echoTimes?: EchoTimeRecorder;
  /**
   * Misbehave on purpose: delay, throttle, slice, reset, close early, blackhole or corrupt the
   * echo of every connection, or of a share of them (`faultRate`), reproducibly from `seed`.
   * Default: none, and connections without faults pay nothing for them.
   */
  faults?: FaultSettings;
  /**
   * A line sent first on every connection (after the TLS handshake), a newline added, so that a
   * client behind a load balancer can tell which backend it reached. Placeholders: `{host}` and
   * `{port}` (the address the connection was accepted on), `{worker}` and `{conn}` (its id).
   * Default: none.
   */
  greeting?: string;
  /** The worker number `{worker}` stands for in the greeting. Default 1. */
  worker?: number;
}

/** The limits {@linkcode EchoServer.setLimits} changes; `null` removes one. */
export interface ServerLimits {
  /** Close new connections at once while this many are open. */
  maxConnections?: number | null;
  /** Close a connection silent this many milliseconds; reaches connections accepted from now on. */
  idleTimeout?: number | null;
}

/** One open connection, as {@linkcode EchoServer.connections} lists it. */
export interface OpenConnection {
  /** 1 for the first connection accepted, and so on. */
  readonly id: number;
  /** The client. */
  readonly peer: Deno.Addr;
  /** Where the connection is in its life. */
  readonly state: string;
  /** Bytes received from the client. */
  readonly received: number;
  /** Bytes echoed back to it. */
  readonly echoed: number;
  /** The faults its echo runs with, one phrase each. */
  readonly faults: readonly string[];
  /** Milliseconds since it was accepted. */
  readonly age: number;
}

interface PassingChange {
  readonly before?: { readonly server: ServerFaults; readonly echo: Promise<FaultedEcho> };
  readonly scope: "new" | "all";
  /** Connections still to get the change, when it has a count. */
  left?: number;
  timer?: ReturnType<typeof setTimeout>;
  /** Settled when the change ends: with how it ran its course, or undefined when replaced. */
  readonly ended: PromiseWithResolvers<"count" | "for" | undefined>;
}

/** True when `peer` is `wanted` (a host name, or `host:port`), or when nothing is wanted. */
function matchesPeer(peer: Deno.Addr, wanted?: string): boolean {
  if (wanted === undefined) return true;
  if (!("hostname" in peer)) return false;
  const host = peer.hostname.includes(":") ? `[${peer.hostname}]` : peer.hostname;
  return wanted === peer.hostname || wanted === host || wanted === `${host}:${peer.port}`;
}

/** How long a connection cut at the drain deadline has to take the rest of its echo and close. */
export const CUT_GRACE_MS = 1000;

/** What the server needs of a listening socket; a `Deno.Listener` is one. */
export interface StreamListener<A extends Deno.Addr = Deno.Addr> {
  /** The address listened on. */
  readonly addr: A;
  /** The next connection. */
  accept(): Promise<StreamConn>;
  /** Stops listening. */
  close(): void;
  /**
   * True when its connections are node:net sockets the server owns (`listenTcp`'s): they can go
   * through the TLS stage and end with a TCP reset.
   */
  readonly ownsSockets?: boolean;
}

/** Throws a `UsageError` when `settings` can reset connections that `listener`'s cannot. */
function checkResettable(listener: StreamListener, settings: FaultSettings | undefined): void {
  if (needsReset(settings) && !listener.ownsSockets) {
    throw new UsageError(
      "the reset faults need a listener whose connections can be reset (startEchoServer makes one over plain TCP)",
    );
  }
}

/**
 * A running echo server. Dispose of it (`await using`) or call {@linkcode EchoServer.shutdown} to
 * stop it gracefully.
 */
export class EchoServer<A extends Deno.Addr = Deno.Addr> implements AsyncDisposable {
  readonly #listener: StreamListener<A>;
  readonly #onEvent?: (event: EchoEvent) => void;
  readonly #onError?: (message: string) => void;
  #maxConnections: number;
  /** The faults new connections get, and what the server's echo loops run them with. */
  #faults?: { readonly server: ServerFaults; readonly echo: Promise<FaultedEcho> };
  /** The seed of every fault set from now on that names none: the run's own. */
  #seed?: number;
  /** The change with `count` or `for` in force, and what the faults go back to after it. */
  #passing?: PassingChange;
  #ready = true;
  readonly #session: SessionContext;
  readonly #connections = new Set<Connection>();
  readonly #stats: EchoStats = noStats();
  readonly #acceptLoop: Promise<void>;
  #closing = false;
  #stoppedAccepting?: Promise<number>;
  #shutdown?: Promise<void>;

  /**
   * Starts serving `options.listener` at once. Throws a `UsageError` for faults or a greeting
   * that make no sense, and for TLS or reset faults on a listener that does not own its sockets.
   */
  constructor(options: EchoServerOptions<A>) {
    if (options.tls && !options.listener.ownsSockets) {
      throw new UsageError("a TLS echo server needs a listener from listenTcp");
    }
    checkResettable(options.listener, options.faults);
    this.#listener = options.listener;
    this.#onEvent = options.onEvent;
    this.#onError = options.onError;
    this.#maxConnections = options.maxConnections ?? Infinity;
    const faults = serverFaults(options.faults);
    this.#seed = faults?.settings.seed ?? options.faults?.seed;
    this.#faults = faults && { server: faults, echo: loadFaults(faults) };
    this.#session = {
      proxy: options.proxyProtocol === undefined ? undefined : loadProxyStage({
        mode: options.proxyProtocol,
        timeout: options.proxyTimeout,
        trust: options.proxyTrust,
      }),
      tls: options.tls,
      greeting: options.greeting === undefined ? undefined : greetingTemplate(options.greeting),
      worker: options.worker ?? 1,
      bufferSize: options.bufferSize ?? 16,
      stats: this.#stats,
      onEvent: options.onEvent,
      echoTimes: options.echoTimes,
      idleTimeout: options.idleTimeout,
      draining: () => this.#closing,
      forget: (connection) => this.#connections.delete(connection),
    };
    this.#acceptLoop = this.#accept();
  }

  /** The address the server listens on, with the real port when port 0 was asked for. */
  get addr(): A {
    return this.#listener.addr as A;
  }

  /**
   * The faults new connections get, with the seed they run on (a random one unless set); or
   * undefined.
   */
  get faults(): Readonly<FaultSettings> | undefined {
    return this.#faults?.server.settings;
  }

  /** True unless {@linkcode EchoServer.setReady} said otherwise: what a readiness check reports. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Sets what {@linkcode EchoServer.ready} reports; the server serves as before either way. */
  setReady(ready: boolean): void {
    this.#ready = ready;
  }

  /**
   * Replaces the faults (none when `settings` turns on none), with the same checks as the
   * constructor: a `UsageError` changes nothing. `change` says which connections get them (the
   * new ones only, or every open one too from the chunk its read brings next) and for how long (the next `count`
   * connections, or `for` milliseconds), after which the faults before the change come back.
   * A setting without `seed` runs on the server's seed, so that the same changes at the same
   * connection numbers make the same choices.
   *
   * @example Add a delay to every open connection, then remove it
   * ```ts
   * import { equal } from "node:assert/strict";
   * import { startEchoServer } from "../mod.ts";
   *
   * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
   * using client = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
   * server.setFaults({ delay: 100 }, { scope: "all" });
   * equal(server.faults?.delay, 100);
   * const started = performance.now();
   * // The server was waiting for this chunk when the change came: it is delayed too.
   * await client.write(new Uint8Array([1]));
   * await client.read(new Uint8Array(1));
   * equal(performance.now() - started >= 100, true);
   * server.clearFaults({ scope: "all" });
   * equal(server.faults, undefined);
   * ```
   */
  setFaults(settings: FaultSettings, change: FaultChange = {}): void {
    const next = serverFaults({ ...settings, seed: settings.seed ?? this.#seed });
    checkResettable(this.#listener, next?.settings);
    if (needsReset(next?.settings) && this.#session.tls) {
      throw new UsageError("the reset faults work over plain TCP, not over TLS");
    }
    checkChange(change);
    this.#seed = next?.settings.seed ?? this.#seed;
    const before = this.#passing?.before ?? this.#faults;
    this.#endPassing();
    this.#apply(next && { server: next, echo: loadFaults(next) }, change.scope ?? "new");
    if (change.count === undefined && change.for === undefined) return;
    const passing: PassingChange = {
      before,
      scope: change.scope ?? "new",
      left: change.count,
      ended: Promise.withResolvers(),
    };
    if (change.for !== undefined) {
      passing.timer = setTimeout(() => this.#restore(passing, "for"), change.for);
    }
    this.#passing = passing;
  }

  /**
   * Merges `settings` into the faults in force (a setting given as `undefined` or `false` is
   * removed), then as {@linkcode EchoServer.setFaults}.
   */
  updateFaults(settings: FaultSettings, change: FaultChange = {}): void {
    this.setFaults(mergedFaults(this.faults, settings), change);
  }

  /** Removes every fault: from new connections, or (`scope: "all"`) from the open ones too. */
  clearFaults(change: Pick<FaultChange, "scope"> = {}): void {
    this.setFaults({}, { scope: change.scope });
  }

  /**
   * Sets the limits given; a limit left out keeps its value. See {@linkcode ServerLimits}. A new
   * idle timeout reaches the open connections too: each gets the whole new timeout from now.
   */
  setLimits(limits: ServerLimits): void {
    const { maxConnections, idleTimeout } = limits;
    if (maxConnections !== undefined && maxConnections !== null) {
      if (!(Number.isSafeInteger(maxConnections) && maxConnections >= 1)) {
        throw new UsageError(
          `maxConnections must be a whole number, at least 1, not ${maxConnections}`,
        );
      }
    }
    if (idleTimeout !== undefined && idleTimeout !== null) {
      if (!(idleTimeout > 0 && idleTimeout <= MAX_TIMER_MS)) {
        throw new UsageError(
          `idleTimeout must be from 0 to ${MAX_TIMER_MS} ms, not ${idleTimeout}`,
        );
      }
    }
    if (maxConnections !== undefined) this.#maxConnections = maxConnections ?? Infinity;
    if (idleTimeout !== undefined) this.#changeIdleTimeout(idleTimeout ?? undefined);
  }

  #changeIdleTimeout(timeout: number | undefined): void {
    const watched = this.#session.idleTimeout !== undefined;
    this.#session.idleTimeout = timeout;
    for (const connection of this.#connections) {
      clearTimeout(connection.idleTimer);
      if (timeout === undefined) continue;
      if (!watched) {
        connection.lastActive = performance.now();
        // A plain loop keeps `lastActive` only when watched from its start: it hands over.
        if (connection.applied.length === 0) connection.faultsChanged = true;
      }
      this.#watchIdle(connection);
    }
  }

  /** The limits in force: `undefined` for none. */
  get limits(): { maxConnections?: number; idleTimeout?: number } {
    return {
      maxConnections: Number.isFinite(this.#maxConnections) ? this.#maxConnections : undefined,
      idleTimeout: this.#session.idleTimeout,
    };
  }

  /**
   * The connections open now, oldest first: who, where each is in its life, bytes each way, the
   * faults its echo runs with, and its age.
   */
  connections(): OpenConnection[] {
    const now = performance.now();
    return [...this.#connections].map((connection) => ({
      id: connection.id,
      peer: connection.peer,
      state: connection.state,
      received: connection.received,
      echoed: connection.echoed,
      faults: connection.applied,
      age: now - connection.opened,
    }));
  }

  /**
   * Closes every open connection, or those from `peer` (a host name, or `host:port`), at once:
   * with a TCP reset when `reset` is true (plain TCP from `listenTcp` only; a `UsageError`
   * otherwise), else cleanly. Returns how many it closed.
   *
   * @example Reset every open connection: the client sees a reset
   * ```ts
   * import { equal, rejects } from "node:assert/strict";
   * import { startEchoServer } from "../mod.ts";
   *
   * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0, resettable: true });
   * using client = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
   * await client.write(new Uint8Array([1]));
   * await client.read(new Uint8Array(1));
   * equal(server.closeConnections({ reset: true }), 1);
   * await rejects(client.read(new Uint8Array(1)), Deno.errors.ConnectionReset);
   * ```
   */
  closeConnections(options: { reset?: boolean; peer?: string } = {}): number {
    if (options.reset && (!this.#listener.ownsSockets || this.#session.tls)) {
      throw new UsageError(
        "a reset needs plain TCP from listenTcp (startEchoServer with resettable: true)",
      );
    }
    let closed = 0;
    for (const connection of this.#connections) {
      if (connection.state === "closed" || !matchesPeer(connection.peer, options.peer)) continue;
      hangUp(connection, options.reset ? "reset" : "closed");
      closed++;
    }
    return closed;
  }

  /** Makes `faults` the faults of new connections, and of open ones when `scope` is `all`. */
  #apply(faults: PassingChange["before"], scope: "new" | "all"): void {
    this.#faults = faults;
    if (scope === "new") return;
    for (const connection of this.#connections) {
      connection.faults = faults?.echo;
      connection.faultsChanged = true;
    }
  }

  /**
   * Resolves once the change with `count` or `for` now in force runs its course and the faults
   * before it are back: with `"count"` when its last connection came, `"for"` when its time ran
   * out. Resolves undefined when another change replaces it first, or at once when none is in
   * force.
   *
   * @example
   * ```ts
   * import { equal } from "node:assert/strict";
   * import { startEchoServer } from "../mod.ts";
   *
   * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
   * server.setFaults({ delay: 10 }, { count: 1 });
   * const ended = server.changeRunsOut();
   * using _client = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
   * equal(await ended, "count");
   * equal(server.faults, undefined);
   * ```
   */
  changeRunsOut(): Promise<"count" | "for" | undefined> {
    return this.#passing?.ended.promise ?? Promise.resolve(undefined);
  }

  /**
   * The change with `count` or `for` has run its course: the faults before it come back, to new
   * connections, and to the open ones too when the change reached them and `scope` allows.
   */
  #restore(passing: PassingChange, how: "count" | "for"): void {
    if (this.#passing !== passing) return;
    this.#endPassing(how);
    this.#apply(passing.before, how === "count" ? "new" : passing.scope);
  }

  #endPassing(how?: "count" | "for"): void {
    clearTimeout(this.#passing?.timer);
    this.#passing?.ended.resolve(how);
    this.#passing = undefined;
  }

  /** A snapshot of the server's counters. */
  get stats(): EchoStats {
    return structuredClone(this.#stats);
  }

  async #accept(): Promise<void> {
    while (!this.#closing) {
      let conn: StreamConn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (this.#closing) break;
        if (isPeerGone(err)) {
          // The connection ended before its accept, as a health check's may: not an error.
          this.#stats.closed["health-check"]++;
          this.#onEvent?.({ type: "health-check", open: this.#stats.open });
          continue;
        }
        this.#onError?.(`accept failed: ${errorReason(err)}`);
        // Out of file descriptors and the like: back off instead of spinning on the same error.
        await sleep(50);
        continue;
      }
      this.#admit(conn);
    }
  }

  /** Turns `conn` away at the limit, or counts it as open and starts its session. */
  #admit(conn: StreamConn): void {
    if (this.#stats.open >= this.#maxConnections) {
      this.#stats.rejected++;
      this.#onEvent?.({
        type: "rejected",
        peer: conn.remoteAddr,
        open: this.#stats.open,
        limit: this.#maxConnections,
      });
      conn.close();
      return;
    }
    const session = this.#session;
    const connection: Connection = {
      // Sockets know their own address; otherwise the listener's is the best there is.
      local: "localAddr" in conn ? (conn as Pick<Deno.Conn, "localAddr">).localAddr : this.addr,
      id: ++this.#stats.connections,
      peer: conn.remoteAddr,
      conn,
      state: session.tls || session.proxy ? "handshaking" : this.#closing ? "draining" : "open",
      reading: false,
      lastActive: performance.now(),
      done: Promise.resolve(),
      faults: this.#faults?.echo,
      faultsChanged: false,
      applied: [],
      received: 0,
      echoed: 0,
      opened: performance.now(),
    };
    this.#connections.add(connection);
    this.#stats.open++;
    const passing = this.#passing;
    // The last of the `count` connections keeps the change it was just given.
    if (passing?.left !== undefined && --passing.left === 0) this.#restore(passing, "count");
    if (session.idleTimeout !== undefined) this.#watchIdle(connection);
    connection.done = runSession(connection, session);
  }

  /**
   * Closes the connection once it has been silent for the idle timeout. One timer per connection,
   * re-armed only when it fires, so that busy connections pay one clock read per chunk; the
   * timeout is read when it fires, so that a change reaches it (none: the watch ends).
   */
  #watchIdle(connection: Connection): void {
    const check = () => {
      const timeout = this.#session.idleTimeout;
      if (timeout === undefined) return;
      const silent = performance.now() - connection.lastActive;
      if (silent < timeout) {
        connection.idleTimer = setTimeout(check, timeout - silent);
        return;
      }
      hangUp(connection, "idle");
    };
    connection.idleTimer = setTimeout(check, this.#session.idleTimeout);
  }

  /**
   * Drains the server: stops accepting (new connections are refused) and lets every open
   * connection run to its natural end, its client closing or half-closing it. Connections still
   * open after `drainTimeout` milliseconds (default 5000) are cut cleanly: what was read is
   * written back, then FIN, then what the client still sends is read and dropped until it closes,
   * for at most {@linkcode CUT_GRACE_MS} more. A client still in its handshake (PROXY header or TLS) gets
   * `CUT_GRACE_MS` (or the drain timeout, if shorter) to complete it. Resolves as soon as the last
   * connection has closed. Calling it again returns the same promise.
   */
  shutdown(drainTimeout = 5000): Promise<void> {
    this.#shutdown ??= this.#drain(drainTimeout);
    return this.#shutdown;
  }

  /**
   * The first step of {@linkcode EchoServer.shutdown}: closes the listener and resolves, with the
   * number of connections still open, once it is closed for good (a connection attempt is then
   * refused). Calling it again returns the same promise.
   */
  stopAccepting(): Promise<number> {
    this.#stoppedAccepting ??= (async () => {
      this.#closing = true;
      try {
        this.#listener.close();
      } catch { /* already closed */ }
      // The socket is only released once the pending accept has returned.
      await this.#acceptLoop;
      return this.#stats.open;
    })();
    return this.#stoppedAccepting;
  }

  async #drain(drainTimeout: number): Promise<void> {
    await this.stopAccepting();
    for (const connection of this.#connections) {
      if (connection.state === "open") moveTo(connection, "draining");
    }
    // A client still in its handshake (PROXY header or TLS) has no session to finish yet: a live one completes it
    // within the grace, a stuck one must not hold the drain.
    const handshakes = setTimeout(() => {
      for (const connection of this.#connections) {
        if (connection.state === "handshaking") hangUp(connection, "shutdown");
      }
    }, Math.min(CUT_GRACE_MS, drainTimeout));
    const drained = Promise.all([...this.#connections].map((c) => c.done));
    try {
      if (await settlesWithin(drained, drainTimeout)) return;
      await this.#cut();
      if (await settlesWithin(drained, CUT_GRACE_MS)) return;
      this.abort();
      await drained;
    } finally {
      clearTimeout(handshakes);
    }
  }

  /** The drain deadline: every connection still open is told the echo is over. */
  async #cut(): Promise<void> {
    for (const connection of this.#connections) {
      if (!echoing(connection)) continue;
      moveTo(connection, "closing");
      // A faulted loop echoes what it holds at once, without its delays, and reads no more.
      connection.stop?.abort();
    }
    // A read that has completed may not have resumed its loop yet: one turn of the event loop
    // lets it echo what it got. A connection still waiting in read after that is owed nothing,
    // so its FIN goes out now; one busy writing sends it when its write is done.
    await new Promise((resolve) => setTimeout(resolve, 0));
    for (const connection of this.#connections) {
      if (connection.state === "closing" && connection.reading) sendFin(connection);
    }
  }

  /** Closes the listener and every connection at once, without waiting for echoes in flight. */
  abort(): void {
    this.#closing = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    for (const connection of this.#connections) hangUp(connection, "shutdown");
  }

  /** Shuts the server down gracefully; for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }
}
