/**
 * The echo server: an accept loop that never dies on one bad accept, the limits (how many
 * connections, how long one may stay silent), and the drain, cut and abort of shutdown. Each
 * connection it admits runs its own session (see `session.ts`): stages, echo, release.
 *
 * @module
 */

import { errorReason, UsageError } from "../base/errors.ts";
import { settlesWithin, sleep } from "../base/timers.ts";
import { echoing, moveTo } from "./connection_state.ts";
import type { EchoEvent } from "./events.ts";
import { greetingTemplate } from "./greeting.ts";
import { serverFaults } from "./_server_faults.ts";
import {
  type Connection,
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

/**
 * A running echo server. Dispose of it (`await using`) or call {@linkcode EchoServer.shutdown} to
 * stop it gracefully.
 */
export class EchoServer<A extends Deno.Addr = Deno.Addr> implements AsyncDisposable {
  readonly #listener: StreamListener<A>;
  readonly #onEvent?: (event: EchoEvent) => void;
  readonly #onError?: (message: string) => void;
  readonly #idleTimeout?: number;
  readonly #maxConnections: number;
  readonly #faults?: Readonly<FaultSettings>;
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
    if (needsReset(options.faults) && !options.listener.ownsSockets) {
      throw new UsageError(
        "the reset faults need a listener whose connections can be reset (startEchoServer makes one over plain TCP)",
      );
    }
    this.#listener = options.listener;
    this.#onEvent = options.onEvent;
    this.#onError = options.onError;
    this.#idleTimeout = options.idleTimeout;
    this.#maxConnections = options.maxConnections ?? Infinity;
    const faults = serverFaults(options.faults);
    this.#faults = faults?.settings;
    this.#session = {
      proxy: options.proxyProtocol === undefined ? undefined : loadProxyStage({
        mode: options.proxyProtocol,
        timeout: options.proxyTimeout,
        trust: options.proxyTrust,
      }),
      tls: options.tls,
      greeting: options.greeting === undefined ? undefined : greetingTemplate(options.greeting),
      worker: options.worker ?? 1,
      faults: faults && loadFaults(faults),
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

  /** The faults in force, with the seed they run on (a random one unless set); or undefined. */
  get faults(): Readonly<FaultSettings> | undefined {
    return this.#faults;
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
      heard: false,
      lastActive: performance.now(),
      done: Promise.resolve(),
      stop: session.faults && new AbortController(),
    };
    this.#connections.add(connection);
    this.#stats.open++;
    if (this.#idleTimeout !== undefined) this.#watchIdle(connection, this.#idleTimeout);
    connection.done = runSession(connection, session);
  }

  /**
   * Closes the connection once it has been silent for `timeout` ms. One timer per connection,
   * re-armed only when it fires, so that busy connections pay one clock read per chunk.
   */
  #watchIdle(connection: Connection, timeout: number): void {
    const check = () => {
      const silent = performance.now() - connection.lastActive;
      if (silent < timeout) {
        connection.idleTimer = setTimeout(check, timeout - silent);
        return;
      }
      hangUp(connection, "idle");
    };
    connection.idleTimer = setTimeout(check, timeout);
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
