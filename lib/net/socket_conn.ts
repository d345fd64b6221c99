/**
 * TCP through `node:net`, in the shape of a `Deno.Conn`: the one adapter for the sockets that need
 * `node:net`. A listener whose connections have TCP_NODELAY set before any byte moves, and a
 * connection type that reads and writes like a `Deno.Conn`, can hand its socket over (with the
 * bytes it already read) to the next stage, such as a TLS handshake, and can end with a real TCP
 * reset. `Deno.listenTls` connections cannot set TCP_NODELAY, so owning the TCP socket is what
 * keeps TLS free of the delayed-ACK stall; and closing a `Deno.Conn` always sends a FIN first, so
 * the reset faults need these sockets too.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createServer, type Server, type Socket } from "node:net";
import type { ResettableConn } from "./stream_conn.ts";

/** How long {@linkcode SocketConn.close} waits for buffered bytes to leave before it cuts. */
export const CLOSE_FLUSH_MS = 2000;

/** Node's socket error codes as the `Deno.errors` the rest of the library understands. */
const DENO_ERRORS: Record<string, new (message: string) => Error> = {
  ECONNREFUSED: Deno.errors.ConnectionRefused,
  ECONNRESET: Deno.errors.ConnectionReset,
  ECONNABORTED: Deno.errors.ConnectionAborted,
  EPIPE: Deno.errors.BrokenPipe,
  ETIMEDOUT: Deno.errors.TimedOut,
  EADDRINUSE: Deno.errors.AddrInUse,
  EADDRNOTAVAIL: Deno.errors.AddrNotAvailable,
  EACCES: Deno.errors.PermissionDenied,
  ENOTCONN: Deno.errors.NotConnected,
  // What Deno's permission checks raise inside node:net.
  EPERM: Deno.errors.NotCapable,
};

/**
 * A `node:net` or `node:tls` error as the matching `Deno.errors` class, its message kept; other
 * errors (a failed name lookup among them) keep their own class and code.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { toDenoError } from "./socket_conn.ts";
 *
 * const err = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
 * ok(toDenoError(err) instanceof Deno.errors.ConnectionReset);
 * ```
 */
export function toDenoError(err: Error & { code?: string }): Error {
  const DenoError = err.code === undefined ? undefined : DENO_ERRORS[err.code];
  return DenoError ? new DenoError(err.message) : err;
}

/** The address of one end of a `node:net` socket, as a `Deno.NetAddr`. */
function netAddr(address: string | undefined, port: number | undefined): Deno.NetAddr {
  return { transport: "tcp", hostname: address ?? "", port: port ?? 0 };
}

/**
 * A `node:net` or `node:tls` socket read and written like a `Deno.Conn`: `read` fills the
 * caller's buffer, `write` resolves once the socket took the bytes (at once unless its buffer is
 * full), `closeWrite` sends FIN (after TLS close_notify), `close` hangs up, `reset` cuts with a
 * TCP reset.
 */
export class SocketConn implements ResettableConn {
  /** The socket underneath. */
  readonly socket: Socket;
  /** The peer's address, kept from the start: Node forgets it once the socket closes. */
  readonly remoteAddr: Deno.NetAddr;
  /** This end's address. */
  readonly localAddr: Deno.NetAddr;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #reading = false;
  #paused = false;
  #ended = false;
  #error?: Error;
  #wake?: () => void;
  #drained: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  #closing = false;

  /** Wraps `socket`; `addresses` default to the socket's own. */
  constructor(
    socket: Socket,
    addresses?: { remoteAddr: Deno.NetAddr; localAddr: Deno.NetAddr },
  ) {
    this.socket = socket;
    this.remoteAddr = addresses?.remoteAddr ?? netAddr(socket.remoteAddress, socket.remotePort);
    this.localAddr = addresses?.localAddr ?? netAddr(socket.localAddress, socket.localPort);
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
    socket.on("drain", this.#onDrain);
    // Everything written has left once the stream finishes: writes still waiting are done.
    socket.on("finish", this.#onDrain);
  }

  #onData = (data: Uint8Array) => {
    this.#queue.push(data);
    this.#queued += data.length;
    // Stop taking bytes off the network while the reader is far behind.
    if (this.#queued > 256 * 1024 && !this.#paused) {
      this.#paused = true;
      this.socket.pause();
    }
    this.#wakeReader();
  };

  #onEnd = () => {
    this.#ended = true;
    this.#wakeReader();
  };

  #onError = (err: Error) => {
    this.#error ??= toDenoError(err);
    this.#wakeReader();
    this.#failWriters(this.#error);
  };

  #onClose = () => {
    this.#ended = true;
    this.#wakeReader();
    this.#failWriters(this.#error ?? new Deno.errors.BrokenPipe("the connection is closed"));
  };

  #onDrain = () => {
    for (const waiter of this.#drained.splice(0)) waiter.resolve();
  };

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #failWriters(err: Error): void {
    for (const waiter of this.#drained.splice(0)) waiter.reject(err);
  }

  /** Reads into `buffer`; resolves with the byte count, or null at the end of the stream. */
  async read(buffer: Uint8Array): Promise<number | null> {
    if (!this.#reading) {
      // Bytes are taken off the socket only once someone reads, so that a stage that never
      // reads can hand the socket over untouched.
      this.#reading = true;
      this.socket.on("data", this.#onData);
      this.socket.on("end", this.#onEnd);
      this.socket.resume();
    }
    for (;;) {
      const head = this.#queue[0];
      if (head !== undefined) {
        const n = Math.min(buffer.length, head.length);
        buffer.set(n === head.length ? head : head.subarray(0, n));
        if (n === head.length) this.#queue.shift();
        else this.#queue[0] = head.subarray(n);
        this.#queued -= n;
        if (this.#paused && this.#queued <= 64 * 1024) {
          this.#paused = false;
          this.socket.resume();
        }
        return n;
      }
      if (this.#error) throw this.#error;
      if (this.#ended || this.socket.destroyed) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  /**
   * Writes all of `bytes` (copied, so the caller may reuse its buffer at once); resolves with
   * their count as soon as the socket took them, or once its buffer drained below its limit.
   */
  write(bytes: Uint8Array): Promise<number> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.socket.destroyed) {
      return Promise.reject(new Deno.errors.BrokenPipe("the connection is closed"));
    }
    if (this.socket.write(Buffer.from(bytes))) return Promise.resolve(bytes.length);
    return new Promise((resolve, reject) => {
      this.#drained.push({ resolve: () => resolve(bytes.length), reject });
    });
  }

  /** Sends FIN (over TLS: close_notify, then FIN): the end of what this side sends. */
  closeWrite(): Promise<void> {
    if (this.socket.destroyed || this.socket.writableEnded) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once("close", () => resolve());
      this.socket.end(() => resolve());
    });
  }

  /**
   * Closes the connection: what is still buffered for sending goes out first, then (over TLS)
   * close_notify and FIN, and the socket is released. A peer that does not take those bytes within
   * {@linkcode CLOSE_FLUSH_MS}, or a second call, closes it at once.
   */
  close(): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    if (this.#closing || socket.writableFinished) {
      socket.destroy();
      return;
    }
    this.#closing = true;
    const timer = setTimeout(() => socket.destroy(), CLOSE_FLUSH_MS);
    Deno.unrefTimer(timer);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
    };
    socket.once("finish", done);
    socket.once("close", done);
    socket.end();
  }

  /**
   * Ends the connection with a TCP reset (`SO_LINGER` 0, then close): the peer's next read fails
   * with `ECONNRESET` instead of reading a FIN, and whatever is still unsent is thrown away.
   */
  reset(): void {
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  /**
   * Stops reading and gives up the socket for the next stage, with every byte this connection
   * took off it but did not hand out, after `unread` (bytes a caller read and did not use), put
   * back in front of what the socket receives next. The connection must not be used afterwards.
   */
  release(unread?: Uint8Array): Socket {
    const socket = this.socket;
    socket.off("data", this.#onData);
    socket.off("end", this.#onEnd);
    socket.off("close", this.#onClose);
    socket.off("drain", this.#onDrain);
    socket.off("finish", this.#onDrain);
    socket.pause();
    const pending = [...(unread?.length ? [unread] : []), ...this.#queue];
    this.#queue = [];
    this.#queued = 0;
    if (pending.length > 0) socket.unshift(Buffer.concat(pending));
    // The error listener stays until the next owner has its own, so that no error goes unheard.
    queueMicrotask(() => socket.off("error", this.#onError));
    return socket;
  }
}

/** Where a {@linkcode SocketListener} listens. */
export interface SocketListenOptions {
  /** Address to listen on. Default `localhost`. */
  hostname?: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Share the port with other listeners, the kernel spreading connections over them (Linux). */
  reusePort?: boolean;
}

/**
 * A TCP listener on `node:net` with the accept loop of a `Deno.Listener`: {@linkcode accept}
 * resolves with the next connection, TCP_NODELAY already set. Open one with
 * {@linkcode listenSockets}.
 */
export class SocketListener {
  readonly #server: Server;
  readonly #waiting: Array<{ resolve: (conn: SocketConn) => void; reject: (err: Error) => void }> =
    [];
  readonly #arrived: Socket[] = [];
  #closed = false;
  /** The address listened on, with the real port when port 0 was asked for. */
  readonly addr: Deno.NetAddr;
  /** Its connections are node:net sockets: they can go through TLS and be reset. */
  readonly ownsSockets = true;

  /** Use {@linkcode listenSockets}, which waits until the socket listens. */
  constructor(server: Server, addr: Deno.NetAddr) {
    this.#server = server;
    this.addr = addr;
    server.on("connection", (socket: Socket) => {
      // Errors before anyone reads must not go unheard (an unheard error ends the process).
      socket.on("error", () => {});
      socket.setNoDelay(true);
      const waiter = this.#waiting.shift();
      if (waiter) waiter.resolve(new SocketConn(socket));
      else this.#arrived.push(socket);
    });
  }

  /** The next connection; rejects with `BadResource` once the listener is closed. */
  accept(): Promise<SocketConn> {
    const socket = this.#arrived.shift();
    if (socket) return Promise.resolve(new SocketConn(socket));
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("the listener is closed"));
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  /** Yields connections until the listener closes. */
  async *[Symbol.asyncIterator](): AsyncIterator<SocketConn> {
    while (!this.#closed) {
      try {
        yield await this.accept();
      } catch (err) {
        if (this.#closed) return;
        throw err;
      }
    }
  }

  /** Stops listening; connections not yet accepted are closed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const socket of this.#arrived.splice(0)) socket.destroy();
    for (const waiter of this.#waiting.splice(0)) {
      waiter.reject(new Deno.errors.BadResource("the listener is closed"));
    }
  }
}

/**
 * Listens on TCP with `node:net` and resolves once the socket listens; rejects with the
 * `Deno.errors` class of the failure (`AddrInUse`, `PermissionDenied`, ...).
 *
 * @example Accept a connection, with TCP_NODELAY set
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { listenSockets } from "./socket_conn.ts";
 *
 * const listener = await listenSockets({ hostname: "127.0.0.1", port: 0 });
 * const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const conn = await listener.accept();
 * await client.write(new Uint8Array([1, 2, 3]));
 * equal(await conn.read(new Uint8Array(8)), 3);
 * client.close();
 * conn.close();
 * listener.close();
 * ```
 */
export function listenSockets(options: SocketListenOptions): Promise<SocketListener> {
  const server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true });
  return new Promise((resolve, reject) => {
    server.once("error", (err: Error) => reject(toDenoError(err)));
    server.listen(
      {
        host: options.hostname ?? "localhost",
        port: options.port,
        reusePort: options.reusePort ?? false,
      },
      () => {
        server.removeAllListeners("error");
        server.on("error", () => {});
        const address = server.address();
        const addr = typeof address === "object" && address !== null
          ? netAddr(address.address, address.port)
          : netAddr(options.hostname, options.port);
        resolve(new SocketListener(server, addr));
      },
    );
  });
}
