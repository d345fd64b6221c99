/**
 * The echo server: an accept loop that never dies on one bad accept, and one echo loop per
 * connection (read into a fixed buffer, write it all back, read again).
 *
 * @module
 */

import { errorReason } from "./errors.ts";

/** Why a connection ended. */
export type CloseReason = "eof" | "reset" | "shutdown" | "error";

/** One open connection, as events describe it. */
export interface ConnectionInfo {
  /** 1 for the first connection the server accepted, 2 for the next, and so on. */
  readonly id: number;
  /** The client's address. */
  readonly peer: Deno.Addr;
}

/** What happens on the server, in order, as it happens. */
export type EchoEvent =
  | { type: "connected"; conn: ConnectionInfo; open: number }
  /** `data` is only valid during the callback: the buffer is reused for the next read. */
  | { type: "received"; conn: ConnectionInfo; open: number; data: Uint8Array }
  | { type: "sending"; conn: ConnectionInfo; open: number; bytes: number }
  | {
    type: "closed";
    conn: ConnectionInfo;
    open: number;
    reason: CloseReason;
    /** For `reset` and `error`: what went wrong, in a few words. */
    detail?: string;
  }
  /** The last open connection closed: the server waits for the next one. */
  | { type: "idle" };

/** How an echo server behaves. */
export interface EchoServerOptions<A extends Deno.Addr = Deno.Addr> {
  /** The socket to serve; the server owns it from now on and closes it on shutdown. */
  listener: Deno.Listener<Deno.Conn, A>;
  /** Bytes read (and echoed) at a time per connection. Default 16. */
  bufferSize?: number;
  /** Called for every event; omit it to run without any per-chunk work. */
  onEvent?: (event: EchoEvent) => void;
  /** Called when something fails that ends no connection, such as an accept. */
  onError?: (message: string) => void;
}

/** Live counters of a running echo server. */
export interface EchoStats {
  /** Connections accepted so far. */
  connections: number;
  /** Connections open right now. */
  open: number;
  /** Bytes echoed back so far, over all connections. */
  bytesEchoed: number;
}

interface Connection extends ConnectionInfo {
  readonly conn: Deno.Conn;
  /** True while the echo loop waits for data with nothing left to send back. */
  reading: boolean;
  draining: boolean;
  /** True once the server sent FIN (shut down its sending side). */
  finSent: boolean;
  done: Promise<void>;
}

/**
 * A running echo server. Dispose of it (`await using`) or call {@linkcode EchoServer.shutdown} to
 * stop it gracefully.
 */
export class EchoServer<A extends Deno.Addr = Deno.Addr> implements AsyncDisposable {
  readonly #listener: Deno.Listener<Deno.Conn, A>;
  readonly #bufferSize: number;
  readonly #onEvent?: (event: EchoEvent) => void;
  readonly #onError?: (message: string) => void;
  readonly #connections = new Set<Connection>();
  readonly #stats: EchoStats = { connections: 0, open: 0, bytesEchoed: 0 };
  readonly #acceptLoop: Promise<void>;
  #closing = false;
  #shutdown?: Promise<void>;

  /** Starts serving `options.listener` at once. */
  constructor(options: EchoServerOptions<A>) {
    this.#listener = options.listener;
    this.#bufferSize = options.bufferSize ?? 16;
    this.#onEvent = options.onEvent;
    this.#onError = options.onError;
    this.#acceptLoop = this.#accept();
  }

  /** The address the server listens on, with the real port when port 0 was asked for. */
  get addr(): A {
    return this.#listener.addr;
  }

  /** A snapshot of the server's counters. */
  get stats(): EchoStats {
    return { ...this.#stats };
  }

  async #accept(): Promise<void> {
    while (!this.#closing) {
      let conn: Deno.Conn;
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

  #serve(conn: Deno.Conn): void {
    const connection: Connection = {
      id: ++this.#stats.connections,
      peer: conn.remoteAddr,
      conn,
      reading: false,
      draining: this.#closing,
      finSent: false,
      done: Promise.resolve(),
    };
    if ("setNoDelay" in conn) {
      try {
        (conn as Deno.TcpConn).setNoDelay(true);
      } catch { /* the peer is already gone: the first read says so */ }
    }
    this.#connections.add(connection);
    this.#stats.open++;
    this.#onEvent?.({ type: "connected", conn: connection, open: this.#stats.open });
    connection.done = this.#echo(connection);
  }

  async #echo(connection: Connection): Promise<void> {
    const { conn } = connection;
    const onEvent = this.#onEvent;
    const buffer = new Uint8Array(this.#bufferSize);
    let reason: CloseReason = "eof";
    let detail: string | undefined;
    try {
      while (!connection.draining) {
        connection.reading = true;
        const n = await conn.read(buffer);
        connection.reading = false;
        if (n === null) {
          onEvent?.({
            type: "received",
            conn: connection,
            open: this.#stats.open,
            data: buffer.subarray(0, 0),
          });
          break;
        }
        if (connection.draining) break;
        const chunk = n === buffer.length ? buffer : buffer.subarray(0, n);
        if (onEvent) {
          onEvent({ type: "received", conn: connection, open: this.#stats.open, data: chunk });
          onEvent({ type: "sending", conn: connection, open: this.#stats.open, bytes: n });
        }
        let written = await conn.write(chunk);
        while (written < n) written += await conn.write(chunk.subarray(written));
        this.#stats.bytesEchoed += n;
      }
      if (connection.draining) {
        reason = "shutdown";
        await finishDraining(connection);
      }
    } catch (err) {
      if (connection.draining) {
        reason = "shutdown";
      } else if (isPeerGone(err)) {
        reason = "reset";
        detail = errorReason(err);
      } else {
        reason = "error";
        detail = errorReason(err);
      }
    }
    try {
      conn.close();
    } catch { /* closed by the drain timeout */ }
    this.#connections.delete(connection);
    this.#stats.open--;
    onEvent?.({ type: "closed", conn: connection, open: this.#stats.open, reason, detail });
    if (this.#stats.open === 0 && !this.#closing) onEvent?.({ type: "idle" });
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
      // Idle in read: nothing is owed, so tell the client we are done right away.
      if (connection.reading) sendFin(connection);
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
async function finishDraining(connection: Connection): Promise<void> {
  await sendFin(connection);
  const sink = new Uint8Array(16 * 1024);
  while (await connection.conn.read(sink) !== null);
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
