/**
 * The echo server: an accept loop that never dies on one bad accept, and one echo loop per
 * connection (read into a fixed buffer, write it all back, read again).
 *
 * @module
 */

import { errorReason, UsageError } from "../base/errors.ts";
import { ProxyHeaderError, type ProxyMode } from "../proxy/header.ts";
import { DEFAULT_PROXY_TIMEOUT, type ProxyInfo, readProxyHeader } from "../proxy/reader.ts";
import { greetingTemplate, type GreetingValues } from "./greeting.ts";
import { type SocketConn, SocketListener } from "../net/socket_conn.ts";
import { type TlsDetails, TlsServer } from "../net/tls_server.ts";
import type { StreamConn } from "../net/transport.ts";
import { echoWithFaults } from "./_fault_echo.ts";
import { type ConnectionState, discardedAfterFin, echoing, moveTo } from "./connection_state.ts";
import {
  type ConnectionFaults,
  type FaultCounts,
  type FaultKind,
  FaultPlan,
  type FaultSettings,
  hasFaults,
  needsReset,
  noFaultCounts,
} from "../faults/plan.ts";

/**
 * Why a connection ended: the client closed or half-closed it (`eof`), reset or vanished
 * (`reset`), stayed silent past the idle timeout (`idle`), failed its TLS handshake (`tls`), was
 * cut by the server at the drain deadline or by {@linkcode EchoServer.abort} (`shutdown`), a
 * reset fault ended it (`fault`), or something else failed (`error`).
 */
export type CloseReason = "eof" | "reset" | "idle" | "tls" | "shutdown" | "fault" | "error";

/** One open connection, as events describe it. */
export interface ConnectionInfo {
  /** 1 for the first connection the server accepted, 2 for the next, and so on. */
  readonly id: number;
  /** The client's address: the one its PROXY header names, when the server reads one. */
  readonly peer: Deno.Addr;
  /** What the connection's PROXY header said, when the server reads one. */
  readonly proxy?: ProxyInfo;
  /** What the TLS handshake showed, once it is done (TLS servers only). */
  readonly tls?: TlsDetails;
}

/** What happens on the server, in order, as it happens. */
export type EchoEvent =
  | { type: "connected"; conn: ConnectionInfo; open: number }
  /** The TLS handshake is done; `tls` says what it showed (also in `conn.tls` from now on). */
  | { type: "secured"; conn: ConnectionInfo; open: number; tls: TlsDetails }
  /** `data` is only valid during the callback: the buffer is reused for the next read. */
  | { type: "received"; conn: ConnectionInfo; open: number; data: Uint8Array }
  | { type: "sending"; conn: ConnectionInfo; open: number; bytes: number }
  | {
    type: "closed";
    conn: ConnectionInfo;
    open: number;
    reason: CloseReason;
    /** For `reset`, `idle`, `tls` and `error`: what went wrong, in a few words. */
    detail?: string;
  }
  /** A connection beyond `maxConnections`, closed at once without an id or any echo. */
  | { type: "rejected"; peer: Deno.Addr; open: number; limit: number }
  /**
   * A connection closed before any echo because its PROXY header was malformed, cut short, late
   * or missing; `conn.peer` is the proxy (or whoever connected), `reason` says what was wrong.
   */
  | { type: "proxy-refused"; conn: ConnectionInfo; open: number; reason: string }
  /** A fault was injected on the connection: `detail` says which, as a phrase. */
  | {
    type: "fault";
    conn: ConnectionInfo;
    open: number;
    fault: FaultKind;
    detail: string;
  }
  /** UDP: a fault was injected on datagram number `id` from `peer`. */
  | { type: "datagram-fault"; id: number; peer: Deno.Addr; fault: FaultKind; detail: string }
  /** The last open connection closed: the server waits for the next one. */
  | { type: "idle" }
  /**
   * UDP: datagram number `id` arrived from `peer` and is echoed right away. `data` is only valid
   * during the callback.
   */
  | { type: "datagram"; id: number; peer: Deno.Addr; data: Uint8Array };

/**
 * Where a server reports how long each echo took, such as a Prometheus histogram
 * (the `echoTimeHistogram` of the metrics).
 */
export interface EchoTimeRecorder {
  /** Records one echo that took `seconds`. */
  observe(seconds: number): void;
}

/** How an echo server behaves. */
export interface EchoServerOptions<A extends Deno.Addr = Deno.Addr> {
  /**
   * The socket to serve; the server owns it from now on and closes it on shutdown. The reset
   * faults need a listener whose connections can send a TCP reset (from {@linkcode listenTcp}).
   */
  listener: StreamListener<A>;
  /**
   * Run this TLS handshake on each connection before echoing; `listener` must then hand out
   * connections that own their socket (from {@linkcode listenTcp}).
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

/**
 * Live counters of a running echo server. Every field is a count that adds up across servers
 * (see {@linkcode addStats}).
 */
export interface EchoStats {
  /** Connections accepted so far. */
  connections: number;
  /** Connections open right now. */
  open: number;
  /** UDP datagrams echoed so far (0 for stream servers). */
  datagrams: number;
  /** Bytes echoed back so far, over all connections. */
  bytesEchoed: number;
  /** Bytes received so far, over all connections. */
  bytesReceived: number;
  /**
   * Bytes that arrived after the server had told their client the echo was over (FIN at the drain
   * deadline): read and dropped. After a graceful shutdown,
   * `bytesReceived = bytesEchoed + bytesDiscarded`.
   */
  bytesDiscarded: number;
  /** Connections closed at once because `maxConnections` were already open. */
  rejected: number;
  /** Connections closed before any echo for a malformed, late or missing PROXY header. */
  proxyRefused: number;
  /** Connections closed so far, by reason; `shutdown` counts those cut at the drain deadline. */
  closed: Record<CloseReason, number>;
  /** Faults injected, by kind. */
  faults: FaultCounts;
}

/** Counters with nothing counted yet. */
export function noStats(): EchoStats {
  return {
    connections: 0,
    open: 0,
    datagrams: 0,
    bytesEchoed: 0,
    bytesReceived: 0,
    bytesDiscarded: 0,
    rejected: 0,
    proxyRefused: 0,
    closed: { eof: 0, reset: 0, idle: 0, tls: 0, shutdown: 0, fault: 0, error: 0 },
    faults: noFaultCounts(),
  };
}

/**
 * Counters that add up: every field a number, or a record of such fields. A field of another
 * kind makes {@linkcode addStats} fail to compile rather than be left out of the sum.
 */
export type Counts<T> = {
  [K in keyof T]: T[K] extends number ? number : T[K] extends object ? Counts<T[K]> : never;
};

/**
 * The counters of two servers added field by field, such as those of the workers that share a
 * port. Every field is added, including any added to {@linkcode EchoStats} later.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { addStats, noStats } from "./echo_server.ts";
 *
 * const one = { ...noStats(), connections: 2, closed: { ...noStats().closed, eof: 2 } };
 * const sum = addStats(one, one);
 * equal(sum.connections, 4);
 * equal(sum.closed.eof, 4);
 * ```
 */
export function addStats(a: EchoStats, b: EchoStats): EchoStats {
  return addCounts(a, b);
}

/** `a + b` for every field of two {@linkcode Counts}, nested records included. */
export function addCounts<T extends Counts<T>>(a: T, b: T): T {
  const sum: Record<string, unknown> = {};
  for (const key of Object.keys(a) as (keyof T & string)[]) {
    const x = a[key] as unknown;
    const y = b[key] as unknown;
    sum[key] = typeof x === "number" ? x + (y as number) : addCounts(x as T, y as T);
  }
  return sum as T;
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
}

interface Connection extends ConnectionInfo {
  conn: StreamConn & { reset?(): void };
  /** The address the connection was accepted on, for the greeting. */
  local: Deno.Addr;
  tls?: TlsDetails;
  peer: Deno.Addr;
  proxy?: ProxyInfo;
  /**
   * Tells a faulted echo loop that the server is ending the connection: aborted at the drain
   * deadline and when the server hangs up, not when draining starts.
   */
  readonly stop?: AbortController;
  state: ConnectionState;
  /** Why the server closed the socket itself, in state `closed`. */
  closedBy?: "idle" | "shutdown";
  /** True while the echo loop waits in `read` (not in a write): FIN can go out at once. */
  reading: boolean;
  /** `performance.now()` of the last byte received or sent, for the idle timeout. */
  lastActive: number;
  idleTimer?: ReturnType<typeof setTimeout>;
  done: Promise<void>;
}

/**
 * A running echo server. Dispose of it (`await using`) or call {@linkcode EchoServer.shutdown} to
 * stop it gracefully.
 */
export class EchoServer<A extends Deno.Addr = Deno.Addr> implements AsyncDisposable {
  readonly #listener: StreamListener<A>;
  readonly #tls?: TlsServer;
  readonly #faults?: FaultPlan;
  readonly #bufferSize: number;
  readonly #onEvent?: (event: EchoEvent) => void;
  readonly #onError?: (message: string) => void;
  readonly #idleTimeout?: number;
  readonly #maxConnections: number;
  readonly #echoTimes?: EchoTimeRecorder;
  readonly #proxy?: { mode: ProxyMode; timeout: number };
  readonly #greeting?: (values: GreetingValues) => string;
  readonly #worker: number;
  readonly #connections = new Set<Connection>();
  readonly #stats: EchoStats = noStats();
  readonly #acceptLoop: Promise<void>;
  #closing = false;
  #stoppedAccepting?: Promise<number>;
  #shutdown?: Promise<void>;

  /** Starts serving `options.listener` at once. */
  constructor(options: EchoServerOptions<A>) {
    if (options.tls && !(options.listener instanceof SocketListener)) {
      throw new UsageError("a TLS echo server needs a listener from listenTcp");
    }
    this.#listener = options.listener;
    this.#tls = options.tls;
    this.#bufferSize = options.bufferSize ?? 16;
    this.#onEvent = options.onEvent;
    this.#onError = options.onError;
    this.#idleTimeout = options.idleTimeout;
    this.#maxConnections = options.maxConnections ?? Infinity;
    this.#echoTimes = options.echoTimes;
    if (options.proxyProtocol) {
      this.#proxy = {
        mode: options.proxyProtocol,
        timeout: options.proxyTimeout ?? DEFAULT_PROXY_TIMEOUT,
      };
    }
    if (hasFaults(options.faults)) {
      this.#faults = new FaultPlan(options.faults!);
      if (needsReset(options.faults) && !(this.#listener instanceof SocketListener)) {
        throw new UsageError(
          "the reset faults need a listener whose connections can be reset " +
            "(startEchoServer makes one over plain TCP)",
        );
      }
    }
    this.#greeting = options.greeting === undefined
      ? undefined
      : greetingTemplate(options.greeting);
    this.#worker = options.worker ?? 1;
    this.#acceptLoop = this.#accept();
  }

  /** The address the server listens on, with the real port when port 0 was asked for. */
  get addr(): A {
    return this.#listener.addr as A;
  }

  /** The faults in force, with the seed they run on (a random one unless set); or undefined. */
  get faults(): Readonly<FaultSettings> | undefined {
    return this.#faults?.settings;
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
        this.#onError?.(`accept failed: ${errorReason(err)}`);
        // Out of file descriptors and the like: back off instead of spinning on the same error.
        if (!isPeerGone(err)) await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      this.#serve(conn);
    }
  }

  #serve(conn: StreamConn): void {
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
    const id = ++this.#stats.connections;
    const faults = this.#faults?.forConnection(id);
    const connection: Connection = {
      // Sockets know their own address; otherwise the listener's is the best there is.
      local: "localAddr" in conn ? (conn as Pick<Deno.Conn, "localAddr">).localAddr : this.addr,
      id,
      peer: conn.remoteAddr,
      conn,
      state: this.#tls || this.#proxy ? "handshaking" : this.#closing ? "draining" : "open",
      reading: false,
      lastActive: performance.now(),
      done: Promise.resolve(),
      stop: faults && new AbortController(),
    };
    if ("setNoDelay" in conn) {
      try {
        (conn as Deno.TcpConn).setNoDelay(true);
      } catch { /* the peer is already gone: the first read says so */ }
    }
    this.#connections.add(connection);
    this.#stats.open++;
    if (this.#idleTimeout !== undefined) this.#watchIdle(connection, this.#idleTimeout);
    if (this.#proxy) {
      connection.done = this.#echoProxied(connection, this.#proxy, faults);
      return;
    }
    this.#onEvent?.({ type: "connected", conn: connection, open: this.#stats.open });
    connection.done = this.#echo(connection, faults);
  }

  /**
   * Reads the connection's PROXY header before anything else; a bad, late or missing one closes
   * the connection with one `proxy-refused` event instead of `connected` and `closed`.
   */
  async #echoProxied(
    connection: Connection,
    options: { mode: ProxyMode; timeout: number },
    faults?: ConnectionFaults,
  ): Promise<void> {
    try {
      connection.proxy = await readProxyHeader(connection.conn, options);
      connection.peer = connection.proxy.peer;
    } catch (err) {
      const reason = err instanceof ProxyHeaderError
        ? err.message
        : connection.closedBy === "idle"
        ? `no byte in or out for ${(this.#idleTimeout ?? 0) / 1000} s`
        : connection.closedBy === "shutdown"
        ? "the server shut down before the PROXY header arrived"
        : errorReason(err);
      clearTimeout(connection.idleTimer);
      try {
        connection.conn.close();
      } catch { /* closed by the deadline, the idle timeout or shutdown */ }
      const stats = this.#stats;
      stats.proxyRefused++;
      this.#connections.delete(connection);
      stats.open--;
      this.#onEvent?.({ type: "proxy-refused", conn: connection, open: stats.open, reason });
      if (stats.open === 0 && !this.#closing) this.#onEvent?.({ type: "idle" });
      return;
    }
    // Without TLS to follow, the header was the whole handshake.
    if (!this.#tls && connection.state === "handshaking") {
      moveTo(connection, this.#closing ? "draining" : "open");
    }
    this.#onEvent?.({ type: "connected", conn: connection, open: this.#stats.open });
    await this.#echo(connection, faults);
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

  /** Sends the greeting line, its placeholders filled in for `connection`. */
  async #greet(connection: Connection): Promise<void> {
    const local = connection.local;
    const line = this.#greeting!({
      host: local.transport === "unix" || local.transport === "unixpacket"
        ? local.path
        : (local as Deno.NetAddr).hostname,
      port: "port" in local ? local.port : "",
      worker: this.#worker,
      conn: connection.id,
    });
    const bytes = new TextEncoder().encode(`${line}\n`);
    for (let written = 0; written < bytes.length;) {
      written += await connection.conn.write(bytes.subarray(written));
    }
  }

  async #echo(connection: Connection, faults?: ConnectionFaults): Promise<void> {
    let { conn } = connection;
    const onEvent = this.#onEvent;
    const stats = this.#stats;
    const watched = this.#idleTimeout !== undefined;
    const echoTimes = this.#echoTimes;
    const buffer = new Uint8Array(this.#bufferSize);
    let reason: CloseReason = "eof";
    let detail: string | undefined;
    try {
      // Finish TLS first, so that a client that fails the handshake is logged as such.
      if (this.#tls) {
        const session = await this.#tls.handshake(conn as SocketConn);
        connection.conn = conn = session.conn;
        connection.tls = session.details;
        if (connection.state === "handshaking") {
          moveTo(connection, this.#closing ? "draining" : "open");
        }
        onEvent?.({ type: "secured", conn: connection, open: stats.open, tls: session.details });
      }
      if (this.#greeting) await this.#greet(connection);
      let clientClosed = false;
      if (faults) {
        const end = await this.#echoWithFaults(connection, faults);
        if (end === "reset") reason = "fault";
        clientClosed = end === "eof";
      }
      while (!faults && echoing(connection)) {
        connection.reading = true;
        const n = await conn.read(buffer);
        connection.reading = false;
        const readAt = watched || echoTimes ? performance.now() : 0;
        if (watched) connection.lastActive = readAt;
        if (n === null) {
          clientClosed = true;
          // After a FIN at the drain deadline, the client's end is its answer to the cut.
          if (connection.state === "half-closed") break;
          onEvent?.({
            type: "received",
            conn: connection,
            open: stats.open,
            data: buffer.subarray(0, 0),
          });
          break;
        }
        stats.bytesReceived += n;
        // FIN went out at the drain deadline while this read waited: too late to echo these.
        if (discardedAfterFin(connection, stats, n)) break;
        const chunk = n === buffer.length ? buffer : buffer.subarray(0, n);
        if (onEvent) {
          onEvent({ type: "received", conn: connection, open: stats.open, data: chunk });
          onEvent({ type: "sending", conn: connection, open: stats.open, bytes: n });
        }
        // Counted write by write, so a connection cut mid-chunk still adds up in the summary.
        for (let written = 0; written < n;) {
          const sent = await conn.write(written === 0 ? chunk : chunk.subarray(written));
          written += sent;
          stats.bytesEchoed += sent;
          if (watched) connection.lastActive = performance.now();
        }
        echoTimes?.observe((performance.now() - readAt) / 1000);
      }
      // The server hung up while a read or write was finishing: that op succeeded, the next fails.
      if (reason === "fault") {
        // The reset fault ended the connection: nothing is left to cut.
      } else if (connection.state === "closed") reason = connection.closedBy!;
      else if (connection.state === "half-closed") reason = "shutdown";
      if (
        reason !== "fault" && !clientClosed &&
        (connection.state === "closing" || connection.state === "half-closed")
      ) {
        reason = "shutdown";
        await finishCut(connection, stats);
      }
    } catch (err) {
      if (connection.state === "closed") {
        reason = connection.closedBy!;
      } else if (connection.state === "closing" || connection.state === "half-closed") {
        reason = "shutdown";
      } else if (connection.state === "handshaking") {
        reason = "tls";
        detail = errorReason(err);
      } else if (isPeerGone(err)) {
        reason = "reset";
        detail = errorReason(err);
      } else {
        reason = "error";
        detail = errorReason(err);
      }
    }
    clearTimeout(connection.idleTimer);
    if (reason === "idle") detail = `no byte in or out for ${(this.#idleTimeout ?? 0) / 1000} s`;
    try {
      conn.close();
    } catch { /* closed by the idle timeout or an abort */ }
    this.#connections.delete(connection);
    stats.open--;
    stats.closed[reason]++;
    onEvent?.({ type: "closed", conn: connection, open: stats.open, reason, detail });
    if (stats.open === 0 && !this.#closing) onEvent?.({ type: "idle" });
  }

  /** The echo loop of a connection that faults hit, in place of the plain one above. */
  #echoWithFaults(
    connection: Connection,
    faults: ConnectionFaults,
  ): Promise<"reset" | "eof" | undefined> {
    const stats = this.#stats;
    return echoWithFaults({
      connection,
      faults,
      bufferSize: this.#bufferSize,
      stats,
      onEvent: this.#onEvent,
      echoTimes: this.#echoTimes,
      signal: connection.stop!.signal,
      onFault: (fault, detail) => {
        stats.faults[fault]++;
        this.#onEvent?.({ type: "fault", conn: connection, open: stats.open, fault, detail });
      },
    });
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

/** The longest timer there is: a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Resolves true if `promise` settles within `ms` milliseconds, false otherwise. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) =>
    timer = setTimeout(() => resolve(false), Math.min(ms, MAX_TIMER_MS))
  );
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The server closes the socket itself; the echo loop's pending read or write then fails. */
function hangUp(connection: Connection, by: "idle" | "shutdown"): void {
  if (connection.state === "closed") return;
  moveTo(connection, "closed");
  connection.closedBy = by;
  connection.stop?.abort();
  try {
    connection.conn.close();
  } catch { /* already closed */ }
}

/**
 * After the drain deadline: send FIN (unless it went out already) so the client sees the end of
 * the echo, then read and drop whatever it still sends until it closes too.
 */
async function finishCut(connection: Connection, stats: EchoStats): Promise<void> {
  if (connection.state === "closing") await sendFin(connection);
  const sink = new Uint8Array(16 * 1024);
  for (let n; (n = await connection.conn.read(sink)) !== null;) {
    stats.bytesReceived += n;
    stats.bytesDiscarded += n;
  }
}

/** Sends FIN: from now on the connection is `half-closed`. */
async function sendFin(connection: Connection): Promise<void> {
  moveTo(connection, "half-closed");
  await connection.conn.closeWrite().catch(() => {});
}

function isPeerGone(err: unknown): boolean {
  return err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted ||
    err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.UnexpectedEof;
}
