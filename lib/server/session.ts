/**
 * One connection's session, top to bottom, with one way out:
 *
 * ```
 * accept -> TCP_NODELAY -> [PROXY header] -> [TLS handshake] -> [greeting]
 *        -> echo (plain, or faulted) -> release
 * ```
 *
 * The server accepts and admits the connection, then hands it to {@linkcode runSession}. Each
 * bracketed stage runs only when the server's options ask for it, takes the connection and gives
 * back what it learned (the client the PROXY header names, what the TLS handshake showed). A
 * stage that fails comes back as a {@linkcode StageFailure} naming the stage, and the session
 * stops there. Whatever happened, {@linkcode runSession} ends in one release path, which picks
 * the last event: `proxy-refused` for a failed PROXY stage, `closed` with its reason otherwise.
 *
 * The PROXY codec, the fault plan and the faulted loop are loaded only by a server that uses them
 * ({@linkcode loadProxyStage}, {@linkcode loadFaults}); the TLS stage comes with the server's
 * `TlsServer`. A plain server loads none of them.
 *
 * @module
 */

import { errorReason, ProxyHeaderError, TlsHandshakeError } from "../base/errors.ts";
import { writeAll } from "../base/io.ts";
import { type ConnectionState, discardedAfterFin, moveTo } from "./connection_state.ts";
import { echoLoop } from "./echo_loop.ts";
import type { CloseReason, ConnectionInfo, EchoEvent } from "./events.ts";
import type { GreetingValues } from "./greeting.ts";
import type { EchoStats, EchoTimeRecorder } from "./stats.ts";
import type { echoWithFaults } from "./_fault_echo.ts";
import type { ServerFaults } from "./_server_faults.ts";
import type { FaultPlan } from "../faults/plan.ts";
import { describeFaults } from "../faults/settings.ts";
import type { SocketConn } from "../net/socket_conn.ts";
import type { TlsDetails, TlsServer } from "../net/tls_server.ts";
import type { StreamConn } from "../net/stream_conn.ts";
import type { ProxyInfo, ProxyReadOptions, ProxySource } from "../proxy/reader.ts";

/** A connection through its session, as the server keeps it. */
export interface Connection extends ConnectionInfo {
  /** The accepted socket, then the TLS session over it. `reset` is there for the reset faults. */
  conn: StreamConn & { reset?(): void };
  /** The address the connection was accepted on, for the greeting. */
  readonly local: Deno.Addr;
  /** The client: whoever connected, then the one the PROXY header names. */
  peer: Deno.Addr;
  /** What the PROXY header said. */
  proxy?: ProxyInfo;
  /** What the TLS handshake showed. */
  tls?: TlsDetails;
  /**
   * Tells a faulted echo loop that the server is ending the connection: aborted at the drain
   * deadline and when the server hangs up, not when draining starts. Made when a faulted loop
   * first runs on the connection.
   */
  stop?: AbortController;
  /** The faults this connection runs with (loading since they were set), if any. */
  faults?: Promise<FaultedEcho>;
  /**
   * Set when the server's faults changed for open connections (or a plain loop must start
   * keeping `lastActive` for a new idle timeout): the echo loop hands over at its next chunk,
   * and the echo goes on with `faults`.
   */
  faultsChanged: boolean;
  /** The faults its echo runs with now, one phrase each (`delay 50 ms`); empty for none. */
  applied: readonly string[];
  /** Bytes received from the client, and bytes echoed back to it. */
  received: number;
  echoed: number;
  /** `performance.now()` when it was accepted. */
  readonly opened: number;
  /** Where the connection is in its life; changed only by `moveTo`. */
  state: ConnectionState;
  /** Why the server closed the socket itself, in state `closed`. */
  closedBy?: ClosedBy;
  /** True while the echo loop waits in `read` (not in a write): FIN can go out at once. */
  reading: boolean;
  /** `performance.now()` of the last byte received or sent, for the idle timeout. */
  lastActive: number;
  /** The idle timer, when the server has an idle timeout. */
  idleTimer?: ReturnType<typeof setTimeout>;
  /** Settles when the session has ended and the connection is released. */
  done: Promise<void>;
}

/** The PROXY stage, loaded by {@linkcode loadProxyStage}. */
export interface ProxyStage {
  /** Reads the header that opens `conn`, and not one byte more. */
  read(conn: ProxySource): Promise<ProxyInfo>;
  /** Why a header was refused when the peer got it wrong (malformed, late, missing), else undefined. */
  refusal(error: unknown): string | undefined;
}

/** What a server with faults runs: its plan, and the faulted echo loop. */
export interface FaultedEcho {
  /** Which connections the faults hit, and how. */
  readonly plan: FaultPlan;
  /** The echo loop of a connection the faults hit. */
  readonly echo: typeof echoWithFaults;
  /** The faults, one phrase each, as `describeFaults` puts them. */
  readonly description: readonly string[];
}

/** What a session needs from its server: the stages it runs, the counters, where it reports. */
export interface SessionContext {
  /** Read a PROXY header first, with this stage (loading since the server started). */
  readonly proxy?: Promise<ProxyStage>;
  /** Run this TLS handshake after any PROXY header. */
  readonly tls?: TlsServer;
  /** Send this greeting line (its placeholders filled in) before echoing. */
  readonly greeting?: (values: GreetingValues) => string;
  /** The worker number of the greeting's `{worker}`. */
  readonly worker: number;
  /** Bytes read and echoed at a time. */
  readonly bufferSize: number;
  /** The server's counters. */
  readonly stats: EchoStats;
  /** The server's events. */
  readonly onEvent?: (event: EchoEvent) => void;
  /** Where each echo's time goes. */
  readonly echoTimes?: EchoTimeRecorder;
  /**
   * The idle timeout in milliseconds, if any: the loops then note when bytes move. Changing it
   * reaches the connections accepted from then on.
   */
  idleTimeout?: number;
  /** True once the server has stopped accepting. */
  draining(): boolean;
  /** Forgets `connection`, which has just been released. */
  forget(connection: Connection): void;
}

/** The stages that can fail, in their order. */
export type SessionStage = "proxy" | "tls" | "greeting" | "echo";

/** A stage that failed: which one, the error it met, and, when the peer is to blame, why. */
export class StageFailure {
  /**
   * `stage` failed with `error`; `reason`, when set, says in the peer's terms what it got
   * wrong (such as a malformed PROXY header).
   */
  constructor(
    readonly stage: SessionStage,
    readonly error: unknown,
    readonly reason?: string,
  ) {}
}

/** How a session ended: the last event the release path sends. */
export type SessionEnd =
  | { readonly event: "proxy-refused"; readonly reason: string }
  | { readonly event: "closed"; readonly reason: CloseReason; readonly detail?: string };

/**
 * Loads the PROXY codec (only a server that reads PROXY headers does) and returns the stage that
 * reads a header with `options`, from a peer in one of the `trust` networks (CIDR; default
 * `DEFAULT_PROXY_TRUST` of `proxy/trust.ts`: loopback and the private ranges) and from no other.
 */
export async function loadProxyStage(
  options: ProxyReadOptions & { trust?: readonly string[] },
): Promise<ProxyStage> {
  const [{ readProxyHeader }, { DEFAULT_PROXY_TRUST, proxyTrust }] = await Promise.all([
    import("../proxy/reader.ts"),
    import("../proxy/trust.ts"),
  ]);
  const trusted = proxyTrust(options.trust ?? DEFAULT_PROXY_TRUST);
  return {
    read: (conn) =>
      trusted(conn.remoteAddr) ? readProxyHeader(conn, options) : Promise.reject(
        new ProxyHeaderError(
          `PROXY header from ${
            (conn.remoteAddr as Deno.NetAddr).hostname
          }, which is not in a trusted network`,
        ),
      ),
    refusal: (error) => error instanceof ProxyHeaderError ? error.message : undefined,
  };
}

/** Loads the faulted echo loop, with the plan of `faults`: only a server with faults does. */
export async function loadFaults(faults: ServerFaults): Promise<FaultedEcho> {
  const [plan, { echoWithFaults }] = await Promise.all([faults.plan, import("./_fault_echo.ts")]);
  // The seed is the run's, not the connection's.
  const description = describeFaults({ ...plan.settings, seed: undefined });
  return { plan, echo: echoWithFaults, description };
}

/** Why the server closed a connection itself: its idle timeout, shutdown, or a `close` call. */
export type ClosedBy = "idle" | "shutdown" | "closed" | "reset";

/**
 * Runs the session of `connection`, which the server has just accepted and counted as open, then
 * releases it: socket closed, connection forgotten and counted, its last event sent. Never
 * rejects for anything a peer does.
 */
export async function runSession(connection: Connection, session: SessionContext): Promise<void> {
  release(connection, session, await stages(connection, session));
}

/** The stages, in order: the first that fails ends the session. */
async function stages(connection: Connection, session: SessionContext): Promise<SessionEnd> {
  const { stats, onEvent } = session;
  setNoDelay(connection.conn);
  if (session.proxy) {
    const stage = await session.proxy;
    const proxy = await attempt("proxy", () => stage.read(connection.conn), stage.refusal);
    if (proxy instanceof StageFailure) return ended(proxy, connection, session);
    connection.proxy = proxy;
    connection.peer = proxy.peer;
    // Without TLS to follow, the header was the whole handshake.
    if (!session.tls) handshakeDone(connection, session);
  }
  onEvent?.({ type: "connected", conn: connection, open: stats.open });
  const { tls } = session;
  if (tls) {
    const secured = await attempt("tls", () => tls.handshake(connection.conn as SocketConn));
    if (secured instanceof StageFailure) return ended(secured, connection, session);
    connection.conn = secured.conn;
    connection.tls = secured.details;
    handshakeDone(connection, session);
    onEvent?.({ type: "secured", conn: connection, open: stats.open, tls: secured.details });
  }
  if (session.greeting) {
    const line = greetingLine(connection, session.greeting, session.worker);
    const greeted = await attempt("greeting", () => writeAll(connection.conn, line));
    if (greeted instanceof StageFailure) return ended(greeted, connection, session);
  }
  const echoed = await attempt("echo", () => echo(connection, session));
  return echoed instanceof StageFailure ? ended(echoed, connection, session) : echoed;
}

/** Runs one stage; a failure comes back as a {@linkcode StageFailure} that names it. */
async function attempt<T>(
  stage: SessionStage,
  work: () => Promise<T>,
  reasonOf?: (error: unknown) => string | undefined,
): Promise<T | StageFailure> {
  try {
    return await work();
  } catch (error) {
    return new StageFailure(stage, error, reasonOf?.(error));
  }
}

/** TCP_NODELAY on a socket that has it: the peer sees each echo at once. */
function setNoDelay(conn: StreamConn): void {
  if ("setNoDelay" in conn) {
    try {
      (conn as Deno.TcpConn).setNoDelay(true);
    } catch { /* the peer is already gone: the first read says so */ }
  }
}

/** The handshake is over: the connection echoes from now on, unless the server hung up meanwhile. */
function handshakeDone(connection: Connection, session: SessionContext): void {
  if (connection.state === "handshaking") {
    moveTo(connection, session.draining() ? "draining" : "open");
  }
}

/** The greeting line for `connection`, its placeholders filled in, newline added. */
function greetingLine(
  connection: Connection,
  greeting: (values: GreetingValues) => string,
  worker: number,
): Uint8Array {
  const local = connection.local;
  const line = greeting({
    host: local.transport === "unix" || local.transport === "unixpacket"
      ? local.path
      : (local as Deno.NetAddr).hostname,
    port: "port" in local ? local.port : "",
    worker,
    conn: connection.id,
  });
  return new TextEncoder().encode(`${line}\n`);
}

/**
 * The echo stage: the plain loop, or the faulted one for a connection the faults hit; then, when
 * the drain deadline cut the connection, the rest of the cut.
 */
async function echo(connection: Connection, session: SessionContext): Promise<SessionEnd> {
  const { bufferSize, stats, onEvent, echoTimes } = session;
  let end: "reset" | "eof" | "changed" | Uint8Array | undefined;
  do {
    // The chunk the plain loop read as the faults changed: the loop that follows echoes it.
    const firstChunk = end instanceof Uint8Array ? end : undefined;
    // Faults changed for open connections: the loop that ran hands over to the one they ask for.
    connection.faultsChanged = false;
    const faulted = connection.faults && await connection.faults;
    const faults = faulted?.plan.forConnection(connection.id);
    connection.applied = faulted && faults ? faulted.description : [];
    if (faulted && faults) connection.stop ??= new AbortController();
    end = faulted && faults
      ? await faulted.echo({
        connection,
        faults,
        bufferSize,
        stats,
        onEvent,
        echoTimes,
        signal: connection.stop!.signal,
        firstChunk,
        onFault: (fault, detail) => {
          stats.faults[fault]++;
          onEvent?.({ type: "fault", conn: connection, open: stats.open, fault, detail });
        },
      })
      : await echoLoop(connection, {
        bufferSize,
        stats,
        onEvent,
        echoTimes,
        watched: session.idleTimeout !== undefined,
        firstChunk,
      });
  } while (end === "changed" || end instanceof Uint8Array);
  // The reset fault ended the connection: nothing is left to cut.
  if (end === "reset") return { event: "closed", reason: "fault" };
  // The server hung up while a read or write was finishing: that op succeeded, the next fails.
  const state: ConnectionState = connection.state;
  if (state === "closed") return closedByServer(connection, session);
  if (end !== "eof" && (state === "closing" || state === "half-closed")) {
    await finishCut(connection, stats);
    return { event: "closed", reason: "shutdown" };
  }
  if (state === "half-closed") return { event: "closed", reason: "shutdown" };
  // Ended before its first byte, as a port check does; under faults (no-read) that proves nothing.
  if (connection.received === 0 && connection.applied.length === 0) {
    return { event: "closed", reason: "health-check" };
  }
  return { event: "closed", reason: "eof" };
}

/** The end a failed stage leads to. */
function ended(failure: StageFailure, connection: Connection, session: SessionContext): SessionEnd {
  const { stage, error } = failure;
  if (stage === "proxy") {
    if (error instanceof ProxyHeaderError && error.beforeFirstByte) {
      return { event: "closed", reason: "health-check" };
    }
    const reason = failure.reason ??
      (connection.closedBy === "idle"
        ? idleDetail(session)
        : connection.closedBy === "shutdown"
        ? "the server shut down before the PROXY header arrived"
        : errorReason(error));
    return { event: "proxy-refused", reason };
  }
  if (connection.state === "closed") return closedByServer(connection, session);
  if (connection.state === "closing" || connection.state === "half-closed") {
    return { event: "closed", reason: "shutdown" };
  }
  const detail = errorReason(error);
  if (stage === "tls") return tlsEnd(error, detail, session.stats);
  if (!isPeerGone(error)) return { event: "closed", reason: "error", detail };
  // Reset before its first byte, as HAProxy's checks close: a health check.
  const checked = stage === "echo" && connection.received === 0 &&
    connection.applied.length === 0;
  return checked
    ? { event: "closed", reason: "health-check" }
    : { event: "closed", reason: "reset", detail };
}

/**
 * The end of a failed TLS handshake, counted by why: a client that closed before its first byte
 * (or its first after the PROXY header) was a health check; one that closed or reset during the
 * handshake ended it `early`; one that stayed silent ran out of time.
 */
function tlsEnd(error: unknown, detail: string, stats: EchoStats): SessionEnd {
  if (!(error instanceof TlsHandshakeError)) return { event: "closed", reason: "tls", detail };
  const { failure } = error;
  // A port check is not a failed handshake: it never began one.
  if (error.beforeFirstByte) return { event: "closed", reason: "health-check" };
  stats.tlsFailed[failure]++;
  if (failure === "closed") return { event: "closed", reason: "early", detail };
  if (failure === "timeout") return { event: "closed", reason: "handshake-timeout", detail };
  return { event: "closed", reason: "tls", detail };
}

/** The end of a connection the server closed itself: idle, shut down, or on request. */
function closedByServer(connection: Connection, session: SessionContext): SessionEnd {
  switch (connection.closedBy) {
    case "idle":
      return { event: "closed", reason: "idle", detail: idleDetail(session) };
    case "closed":
      return { event: "closed", reason: "closed", detail: "closed on request" };
    case "reset":
      return { event: "closed", reason: "server-reset", detail: "reset on request" };
    default:
      return { event: "closed", reason: "shutdown" };
  }
}

function idleDetail(session: SessionContext): string {
  return `no byte in or out for ${(session.idleTimeout ?? 0) / 1000} s`;
}

/**
 * The one way out of a session: the socket closed, the connection forgotten and counted, then its
 * last event, and `idle` when it was the last one open.
 */
function release(connection: Connection, session: SessionContext, end: SessionEnd): void {
  const { stats, onEvent } = session;
  clearTimeout(connection.idleTimer);
  try {
    connection.conn.close();
  } catch { /* closed by a failed handshake, the idle timeout or an abort */ }
  session.forget(connection);
  stats.open--;
  if (end.event === "proxy-refused") {
    stats.proxyRefused++;
    onEvent?.({ type: "proxy-refused", conn: connection, open: stats.open, reason: end.reason });
  } else {
    stats.closed[end.reason]++;
    onEvent?.({
      type: "closed",
      conn: connection,
      open: stats.open,
      reason: end.reason,
      detail: end.detail,
    });
  }
  if (stats.open === 0 && !session.draining()) onEvent?.({ type: "idle" });
}

/**
 * The server closes the socket itself, with a TCP reset when `by` is `reset` (the connection must
 * be able to send one); the session's pending read or write then fails.
 */
export function hangUp(connection: Connection, by: ClosedBy): void {
  if (connection.state === "closed") return;
  moveTo(connection, "closed");
  connection.closedBy = by;
  connection.stop?.abort();
  try {
    if (by === "reset") connection.conn.reset!();
    else connection.conn.close();
  } catch { /* already closed */ }
}

/** Sends FIN: from now on the connection is `half-closed`. */
export async function sendFin(connection: Connection): Promise<void> {
  moveTo(connection, "half-closed");
  await connection.conn.closeWrite().catch(() => {});
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
    discardedAfterFin(connection, stats, n);
  }
}

/** True when `err` says the peer reset the connection or is gone. */
export function isPeerGone(err: unknown): boolean {
  return err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted ||
    err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.UnexpectedEof;
}
