/**
 * The echo server: an accept loop that never dies on one bad accept, and one echo loop per
 * connection (read into a fixed buffer, write it all back, read again).
 *
 * @module
 */

import { errorReason, UsageError } from "./errors.ts";
import { ProxyHeaderError, type ProxyMode } from "./proxy_header.ts";
import { DEFAULT_PROXY_TIMEOUT, type ProxyInfo, readProxyHeader } from "./proxy_reader.ts";
import { type SocketConn, SocketListener } from "./socket_conn.ts";
import { type TlsDetails, TlsServer, type TlsServerOptions } from "./tls_server.ts";
import { listen, type ListenOptions, listenTcp, type StreamConn } from "./transport.ts";
import { echoWithFaults } from "./_fault_echo.ts";
import {
  type ConnectionFaults,
  type FaultCounts,
  type FaultKind,
  FaultPlan,
  type FaultSettings,
  hasFaults,
  needsReset,
} from "./faults.ts";
import { ResettableListener } from "./resettable_listener.ts";

/**
 * Why a connection ended: the client closed (`eof`), reset or vanished (`reset`), stayed silent
 * past the idle timeout (`idle`), the server shut down (`shutdown`), a reset fault ended it
 * (`fault`), or something else failed (`error`).
 */
export type CloseReason = "eof" | "reset" | "idle" | "shutdown" | "fault" | "error";

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
    /** For `reset`, `idle` and `error`: what went wrong, in a few words. */
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

/** How an echo server behaves. */
export interface EchoServerOptions<A extends Deno.Addr = Deno.Addr> {
  /**
   * The socket to serve; the server owns it from now on and closes it on shutdown. The reset
   * faults need a {@linkcode ResettableListener}, whose connections can send a TCP reset.
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
   * Misbehave on purpose: delay, throttle, slice, reset, close early, blackhole or corrupt the
   * echo of every connection, or of a share of them (`faultRate`), reproducibly from `seed`.
   * Default: none, and connections without faults pay nothing for them.
   */
  faults?: FaultSettings;
}

/** Live counters of a running echo server. */
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
   * Bytes that arrived after shutdown had told their client the echo was over: read and dropped.
   * After a graceful shutdown, `bytesReceived = bytesEchoed + bytesDiscarded`.
   */
  bytesDiscarded: number;
  /** Connections closed at once because `maxConnections` were already open. */
  rejected: number;
  /** Connections closed before any echo for a malformed, late or missing PROXY header. */
  proxyRefused: number;
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
    faults: {},
  };
}

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
  tls?: TlsDetails;
  peer: Deno.Addr;
  proxy?: ProxyInfo;
  /** Tells a faulted echo loop that the server is ending the connection. */
  readonly stop?: AbortController;
  /** True while the echo loop waits for data with nothing left to send back. */
  reading: boolean;
  /**
   * True while the PROXY header or the TLS handshake is still being read: nothing has been
   * echoed yet.
   */
  handshaking: boolean;
  draining: boolean;
  /** True once the server sent FIN (shut down its sending side). */
  finSent: boolean;
  /** `performance.now()` of the last byte received or sent, for the idle timeout. */
  lastActive: number;
  /** True once the idle timeout closed the connection. */
  idle: boolean;
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
  readonly #proxy?: { mode: ProxyMode; timeout: number };
  readonly #connections = new Set<Connection>();
  readonly #stats: EchoStats = noStats();
  readonly #acceptLoop: Promise<void>;
  #closing = false;
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
    if (options.proxyProtocol) {
      this.#proxy = {
        mode: options.proxyProtocol,
        timeout: options.proxyTimeout ?? DEFAULT_PROXY_TIMEOUT,
      };
    }
    if (hasFaults(options.faults)) {
      this.#faults = new FaultPlan(options.faults!);
      if (needsReset(options.faults) && !(this.#listener instanceof ResettableListener)) {
        throw new UsageError(
          "the reset faults need a ResettableListener (startEchoServer makes one over plain TCP)",
        );
      }
    }
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
    return { ...this.#stats, faults: { ...this.#stats.faults } };
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
      id,
      peer: conn.remoteAddr,
      conn,
      reading: false,
      handshaking: false,
      draining: this.#closing,
      finSent: false,
      lastActive: performance.now(),
      idle: false,
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
    connection.handshaking = true;
    try {
      connection.proxy = await readProxyHeader(connection.conn, options);
      connection.peer = connection.proxy.peer;
    } catch (err) {
      const reason = err instanceof ProxyHeaderError
        ? err.message
        : connection.idle
        ? `no byte in or out for ${(this.#idleTimeout ?? 0) / 1000} s`
        : connection.draining
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
    connection.handshaking = false;
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
      connection.idle = true;
      connection.draining = true;
      connection.stop?.abort();
      try {
        connection.conn.close();
      } catch { /* already closed */ }
    };
    connection.idleTimer = setTimeout(check, timeout);
  }

  async #echo(connection: Connection, faults?: ConnectionFaults): Promise<void> {
    let { conn } = connection;
    const onEvent = this.#onEvent;
    const stats = this.#stats;
    const watched = this.#idleTimeout !== undefined;
    const buffer = new Uint8Array(this.#bufferSize);
    let reason: CloseReason = "eof";
    let detail: string | undefined;
    try {
      // Finish TLS first, so that a client that fails the handshake is logged as such.
      if (this.#tls) {
        connection.handshaking = true;
        const session = await this.#tls.handshake(conn as SocketConn);
        connection.conn = conn = session.conn;
        connection.tls = session.details;
        connection.handshaking = false;
        onEvent?.({ type: "secured", conn: connection, open: stats.open, tls: session.details });
      }
      if (faults && await this.#echoWithFaults(connection, faults) === "reset") reason = "fault";
      while (!faults && !connection.draining) {
        connection.reading = true;
        const n = await conn.read(buffer);
        connection.reading = false;
        if (watched) connection.lastActive = performance.now();
        if (n === null) {
          onEvent?.({
            type: "received",
            conn: connection,
            open: stats.open,
            data: buffer.subarray(0, 0),
          });
          break;
        }
        stats.bytesReceived += n;
        // Shutdown sent FIN while this read waited: these bytes came after it and cannot go back.
        if (connection.finSent) {
          stats.bytesDiscarded += n;
          break;
        }
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
      }
      if (connection.draining && !connection.idle && reason !== "fault") {
        reason = "shutdown";
        await finishDraining(connection, stats);
      }
    } catch (err) {
      if (connection.idle) {
        reason = "idle";
      } else if (connection.draining) {
        reason = "shutdown";
      } else if (isPeerGone(err)) {
        reason = "reset";
        detail = errorReason(err);
      } else {
        reason = "error";
        detail = errorReason(err);
      }
    }
    clearTimeout(connection.idleTimer);
    if (connection.idle) {
      reason = "idle";
      detail = `no byte in or out for ${(this.#idleTimeout ?? 0) / 1000} s`;
    }
    try {
      conn.close();
    } catch { /* closed by the idle or drain timeout */ }
    this.#connections.delete(connection);
    stats.open--;
    onEvent?.({ type: "closed", conn: connection, open: stats.open, reason, detail });
    if (stats.open === 0 && !this.#closing) onEvent?.({ type: "idle" });
  }

  /** The echo loop of a connection that faults hit, in place of the plain one above. */
  #echoWithFaults(connection: Connection, faults: ConnectionFaults): Promise<"reset" | undefined> {
    const stats = this.#stats;
    return echoWithFaults({
      connection,
      faults,
      bufferSize: this.#bufferSize,
      stats,
      onEvent: this.#onEvent,
      signal: connection.stop!.signal,
      onFault: (fault, detail) => {
        stats.faults[fault] = (stats.faults[fault] ?? 0) + 1;
        this.#onEvent?.({ type: "fault", conn: connection, open: stats.open, fault, detail });
      },
    });
  }

  /**
   * Stops accepting, lets every connection finish echoing what it has already read, closes them,
   * and resolves when all are closed. Connections still open after `drainTimeout` milliseconds
   * (default 5000) are closed at once. Calling it again returns the same promise.
   */
  shutdown(drainTimeout = 5000): Promise<void> {
    this.#shutdown ??= this.#drain(drainTimeout);
    return this.#shutdown;
  }

  async #drain(drainTimeout: number): Promise<void> {
    this.#closing = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    await this.#acceptLoop;
    for (const connection of this.#connections) {
      connection.draining = true;
      connection.stop?.abort();
    }
    // A read that has completed may not have resumed its loop yet: one turn of the event loop lets
    // it echo what it got. A connection still waiting in read after that is owed nothing, so tell
    // its client we are done right away.
    await new Promise((resolve) => setTimeout(resolve, 0));
    for (const connection of this.#connections) {
      if (connection.reading) sendFin(connection);
      // Still shaking hands: nothing is owed and nothing can be said, so just hang up.
      if (connection.handshaking) connection.conn.close();
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, drainTimeout));
    const drained = Promise.all([...this.#connections].map((c) => c.done));
    await Promise.race([drained, timeout]);
    clearTimeout(timer);
    this.abort();
    await drained;
  }

  /** Closes the listener and every connection at once, without waiting for echoes in flight. */
  abort(): void {
    this.#closing = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    for (const connection of this.#connections) {
      connection.draining = true;
      connection.stop?.abort();
      try {
        connection.conn.close();
      } catch { /* already closed */ }
    }
  }

  /** Shuts the server down gracefully; for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }
}

/**
 * After shutdown began: send FIN so the client sees the end of the echo, then read and drop
 * whatever it still sends until it closes too, so that closing never resets a connection whose
 * echoed bytes the client has not read yet.
 */
async function finishDraining(connection: Connection, stats: EchoStats): Promise<void> {
  await sendFin(connection);
  const sink = new Uint8Array(16 * 1024);
  for (let n; (n = await connection.conn.read(sink)) !== null;) {
    stats.bytesReceived += n;
    stats.bytesDiscarded += n;
  }
}

async function sendFin(connection: Connection): Promise<void> {
  if (connection.finSent) return;
  connection.finSent = true;
  await connection.conn.closeWrite().catch(() => {});
}

function isPeerGone(err: unknown): boolean {
  return err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted ||
    err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.UnexpectedEof;
}

/**
 * Where and how to start an echo server with {@linkcode startEchoServer}: TCP by default, TLS
 * with `tls`, a Unix domain socket with `unix`.
 */
export interface StartEchoServerOptions
  extends Omit<EchoServerOptions, "listener" | "tls">, ListenOptions {}

/**
 * Starts a stream echo server: TCP, TLS over TCP (`tls: { cert, key }`, PEM; the server then
 * resolves once it listens) or a Unix domain socket (`unix: path`). It is `AsyncDisposable`:
 * `await using` shuts it down gracefully.
 *
 * @example TCP on a free port
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { startEchoServer } from "./mod.ts";
 *
 * await using server = startEchoServer({ hostname: "127.0.0.1", port: 0, bufferSize: 4096 });
 * equal(server.addr.hostname, "127.0.0.1");
 * ```
 *
 * @example A misbehaving server for a client's own tests
 * ```ts
 * import { equal, rejects } from "node:assert/strict";
 * import { EchoError, sendAndVerify, startEchoServer } from "./mod.ts";
 *
 * await using server = startEchoServer({
 *   port: 0,
 *   faults: { delay: 50, resetAfter: 1024, seed: 1 },
 * });
 * const started = performance.now();
 * const echo = await sendAndVerify({ port: server.addr.port, message: new Uint8Array(100) });
 * equal(echo.bytesReceived, 100);
 * equal(performance.now() - started >= 50, true);
 * // Past 1,024 bytes echoed, the server resets the connection: the client must cope.
 * await rejects(
 *   sendAndVerify({ port: server.addr.port, message: new Uint8Array(4096) }),
 *   (err: EchoError) => err.bytesReceived === 1024 && /reset/i.test(err.message),
 * );
 * ```
 *
 * @example A Unix domain socket
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { sendAndVerify, startEchoServer } from "./mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/echo.sock`;
 * {
 *   await using server = startEchoServer({ unix: path });
 *   equal(server.addr.path, path);
 *   const result = await sendAndVerify({ unix: path, message: new Uint8Array([1, 2, 3]) });
 *   equal(result.bytesReceived, 3);
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @example TLS with mutual authentication and ALPN, logging what each handshake showed
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { makeSelfSignedCertificates, sendAndVerify, startEchoServer } from "./mod.ts";
 *
 * const server = await makeSelfSignedCertificates({ names: ["127.0.0.1"] });
 * const client = await makeSelfSignedCertificates({ names: ["alice"] });
 * const seen: string[] = [];
 * {
 *   await using echo = await startEchoServer({
 *     hostname: "127.0.0.1",
 *     port: 0,
 *     tls: { cert: server.cert, key: server.key, clientCa: client.caCert, alpn: ["echo"] },
 *     onEvent: (event) => {
 *       if (event.type === "secured") seen.push(`${event.tls.alpn} ${event.tls.clientSubject}`);
 *     },
 *   });
 *   await sendAndVerify({
 *     hostname: "127.0.0.1",
 *     port: echo.addr.port,
 *     tls: { caCerts: [server.caCert], alpn: ["echo"], cert: client.cert, key: client.key },
 *     message: new TextEncoder().encode("hello"),
 *   });
 * }
 * equal(seen[0], "echo CN=alice");
 * ```
 *
 * @example Behind a proxy that sends the PROXY protocol: the log names the real client
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { type EchoEvent, sendAndVerify, startEchoServer } from "./mod.ts";
 *
 * const clients: string[] = [];
 * const onEvent = (event: EchoEvent) => {
 *   if (event.type === "connected") clients.push((event.conn.peer as Deno.NetAddr).hostname);
 * };
 * {
 *   await using server = startEchoServer({
 *     hostname: "127.0.0.1",
 *     port: 0,
 *     proxyProtocol: "any",
 *     proxyTimeout: 1000,
 *     onEvent,
 *   });
 *   // The client side of the same option: what a proxy in front would send.
 *   await sendAndVerify({
 *     hostname: "127.0.0.1",
 *     port: server.addr.port,
 *     proxyHeader: {
 *       version: 2,
 *       source: { transport: "tcp", hostname: "203.0.113.7", port: 4242 },
 *     },
 *     message: new TextEncoder().encode("hello"),
 *   });
 * }
 * equal(clients[0], "203.0.113.7");
 * ```
 */
export function startEchoServer(
  options: StartEchoServerOptions & { unix: string },
): EchoServer<Deno.UnixAddr>;
/** Starts a TLS echo server once it listens; see the first signature. */
export function startEchoServer(
  options: StartEchoServerOptions & { tls: TlsServerOptions },
): Promise<EchoServer<Deno.NetAddr>>;
/** Starts a TCP echo server; see the first signature. */
export function startEchoServer(
  options?: StartEchoServerOptions & { tls?: undefined },
): EchoServer<Deno.NetAddr>;
/** Starts an echo server of any kind; a TLS server once it listens. */
export function startEchoServer(
  options: StartEchoServerOptions,
): EchoServer | Promise<EchoServer>;
export function startEchoServer(
  options: StartEchoServerOptions = {},
): EchoServer | Promise<EchoServer> {
  const { hostname, port, unix, tls, reusePort, ...rest } = options;
  if (needsReset(rest.faults)) {
    if (unix !== undefined || tls || reusePort) {
      throw new UsageError("the reset faults work over plain TCP, not over TLS or Unix sockets");
    }
    return new EchoServer({ ...rest, listener: new ResettableListener({ hostname, port }) });
  }
  if (tls === undefined) {
    return new EchoServer({ ...rest, listener: listen({ hostname, port, unix, reusePort }) });
  }
  if (unix !== undefined) throw new UsageError("TLS works over TCP only, not over a Unix socket");
  const tlsServer = new TlsServer(tls);
  return listenTcp({ hostname, port, reusePort }).then((listener) =>
    new EchoServer({ ...rest, listener, tls: tlsServer })
  );
}
