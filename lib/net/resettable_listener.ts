/**
 * A TCP listener whose connections can end with a real reset (RST), for the reset faults.
 *
 * Deno's own connections cannot: closing one shuts its sending side down first, so the client
 * reads a FIN (a clean end of stream) even when unread data makes the kernel send a reset after
 * it. `node:net`'s `resetAndDestroy()` sets `SO_LINGER` to 0 before closing, so the kernel sends
 * only the RST and the client's next read fails with `ECONNRESET`. So these connections are
 * `node:net` sockets behind the few methods the echo server uses.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import net from "node:net";
import process from "node:process";
import { errorReason } from "../base/errors.ts";
import { listen } from "./transport.ts";

/** A connection of a {@linkcode ResettableListener}: what the echo server uses, and `reset`. */
export interface ResettableConn {
  /** The client's address. */
  readonly remoteAddr: Deno.NetAddr;
  /** The server's address. */
  readonly localAddr: Deno.NetAddr;
  /** Reads into `buffer`; resolves to the byte count, or null at the end of the stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes all of `bytes` (copied at once) and resolves once the kernel has them. */
  write(bytes: Uint8Array): Promise<number>;
  /** Sends FIN once everything written has gone out. */
  closeWrite(): Promise<void>;
  /** Closes the connection (FIN). */
  close(): void;
  /** Ends the connection with a TCP reset: the client sees `ECONNRESET`, not a FIN. */
  reset(): void;
  /** Turns Nagle's algorithm off (`true`, as the echo server does) or on. */
  setNoDelay(noDelay?: boolean): void;
}

/**
 * A listener like `Deno.listen`'s (`addr`, `accept`, `close`) that hands out
 * {@linkcode ResettableConn}s. It listens as soon as it is made, like `Deno.listen`.
 */
export class ResettableListener implements AsyncIterable<ResettableConn>, Disposable {
  /** Where it listens, with the real port when port 0 was asked for. */
  readonly addr: Deno.NetAddr;
  readonly #server: net.Server;
  readonly #ready: ResettableConn[] = [];
  #waiting?: PromiseWithResolvers<ResettableConn>;
  #closed = false;

  /**
   * Listens on `hostname` and `port` (default `localhost` port 10000), with the same checks and
   * error messages as {@linkcode listen}.
   */
  constructor(options: { hostname?: string; port?: number } = {}) {
    // Deno.listen resolves the name, checks permissions and explains failures; the port it got
    // is then bound again here, synchronously, so that the address is known on return.
    const probe = listen(options) as Deno.TcpListener;
    const { hostname, port } = probe.addr;
    probe.close();
    this.#server = net.createServer({ noDelay: true }, (socket) => this.#accepted(socket));
    this.#server.on("error", () => {/* accept failures leave the listener serving */});
    this.#server.listen(bindNow(hostname, port));
    this.addr = { transport: "tcp", hostname, port };
  }

  #accepted(socket: net.Socket): void {
    const conn = new NodeConn(socket);
    if (this.#waiting) {
      this.#waiting.resolve(conn);
      this.#waiting = undefined;
    } else {
      this.#ready.push(conn);
    }
  }

  /** The next connection; rejects with `BadResource` once the listener is closed. */
  accept(): Promise<ResettableConn> {
    const conn = this.#ready.shift();
    if (conn) return Promise.resolve(conn);
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("listener closed"));
    this.#waiting = Promise.withResolvers();
    return this.#waiting.promise;
  }

  /** Stops listening; connections not yet accepted are closed. */
  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("listener closed");
    this.#closed = true;
    this.#server.close();
    for (const conn of this.#ready.splice(0)) conn.close();
    this.#waiting?.reject(new Deno.errors.BadResource("listener closed"));
    this.#waiting = undefined;
  }

  /** Yields connections until the listener closes. */
  async *[Symbol.asyncIterator](): AsyncIterator<ResettableConn> {
    while (!this.#closed) {
      try {
        yield await this.accept();
      } catch (err) {
        if (this.#closed) return;
        throw err;
      }
    }
  }

  /** Closes the listener. */
  [Symbol.dispose](): void {
    if (!this.#closed) this.close();
  }
}

/** libuv's TCP handle, as node's `Server.listen(handle)` takes it. */
interface TcpHandle {
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  listen(backlog: number): number;
}

/**
 * A listening TCP handle on `hostname` and `port`, bound before it returns. `Server.listen(port,
 * host)` would look the host up first and bind only on a later turn of the event loop, when the
 * caller may already have connected and been refused.
 */
function bindNow(hostname: string, port: number): TcpHandle {
  // deno-lint-ignore no-explicit-any
  const { TCP, constants } = (process as any).binding("tcp_wrap");
  const handle: TcpHandle = new TCP(constants.SERVER);
  const status = hostname.includes(":")
    ? handle.bind6(hostname, port, 0)
    : handle.bind(hostname, port);
  if (status !== 0 || handle.listen(511) !== 0) {
    throw new Deno.errors.AddrInUse(`cannot listen on ${hostname} port ${port} again`);
  }
  return handle;
}

/** Room for what node has read ahead from the kernel before `read` takes it. */
const READ_AHEAD = 64 * 1024;

class NodeConn implements ResettableConn {
  readonly remoteAddr: Deno.NetAddr;
  readonly localAddr: Deno.NetAddr;
  readonly #socket: net.Socket;
  /** Data node delivered that `read` has not taken yet. */
  readonly #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error?: Error;
  #wake?: () => void;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    this.remoteAddr = netAddr(socket.remoteAddress, socket.remotePort);
    this.localAddr = netAddr(socket.localAddress, socket.localPort);
    socket.on("data", (data: Buffer) => {
      this.#chunks.push(data);
      this.#buffered += data.length;
      // Backpressure: stop reading from the kernel until `read` catches up.
      if (this.#buffered >= READ_AHEAD) socket.pause();
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (err: Error) => {
      this.#error ??= toDenoError(err);
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended || this.#socket.destroyed) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    let n = 0;
    while (n < buffer.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0];
      const take = Math.min(chunk.length, buffer.length - n);
      buffer.set(chunk.subarray(0, take), n);
      n += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    this.#buffered -= n;
    if (this.#buffered < READ_AHEAD && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#socket.destroyed) {
      return Promise.reject(new Deno.errors.BadResource("the connection is closed"));
    }
    // Copied: the echo loop reuses its buffer as soon as this resolves.
    const copy = Buffer.from(bytes);
    return new Promise((resolve, reject) => {
      this.#socket.write(copy, (err) => {
        if (err) reject(this.#error ?? toDenoError(err));
        else resolve(bytes.length);
      });
    });
  }

  closeWrite(): Promise<void> {
    if (this.#socket.destroyed || this.#socket.writableEnded) return Promise.resolve();
    return new Promise((resolve) => this.#socket.end(resolve));
  }

  close(): void {
    if (this.#socket.destroyed) throw new Deno.errors.BadResource("the connection is closed");
    this.#socket.destroy();
  }

  reset(): void {
    if (!this.#socket.destroyed) this.#socket.resetAndDestroy();
  }

  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }
}

function netAddr(hostname = "", port = 0): Deno.NetAddr {
  return { transport: "tcp", hostname, port };
}

/** node's error codes as the Deno errors the echo server already knows how to name. */
function toDenoError(err: Error): Error {
  const code = (err as Error & { code?: string }).code;
  const message = errorReason(err);
  switch (code) {
    case "ECONNRESET":
      return new Deno.errors.ConnectionReset(message);
    case "EPIPE":
      return new Deno.errors.BrokenPipe(message);
    case "ECONNABORTED":
      return new Deno.errors.ConnectionAborted(message);
    case "ENOTCONN":
      return new Deno.errors.NotConnected(message);
    default:
      return err;
  }
}
