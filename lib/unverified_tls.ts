/**
 * TLS without certificate checks. `Deno.connectTls` always verifies the chain (its
 * `unsafelyDisableHostnameVerification` skips only the name check, and
 * `--unsafely-ignore-certificate-errors` is a flag of the whole process), so this uses
 * `node:tls` with `rejectUnauthorized: false` and wraps the socket in the `read`/`write` shape
 * of a `Deno.Conn`.
 *
 * @module
 */

import { connect as connectNodeTls, type TLSSocket } from "node:tls";

/** Where to connect. */
export interface UnverifiedTlsOptions {
  hostname: string;
  port: number;
  signal?: AbortSignal;
}

/** Node's socket error codes as the `Deno.errors` the rest of the code understands. */
const DENO_ERRORS: Record<string, new (message: string) => Error> = {
  ECONNREFUSED: Deno.errors.ConnectionRefused,
  ECONNRESET: Deno.errors.ConnectionReset,
  EPIPE: Deno.errors.BrokenPipe,
  ETIMEDOUT: Deno.errors.TimedOut,
  EADDRNOTAVAIL: Deno.errors.AddrNotAvailable,
};

function toDenoError(err: Error & { code?: string }): Error {
  const DenoError = err.code === undefined ? undefined : DENO_ERRORS[err.code];
  return DenoError ? new DenoError(err.message) : err;
}

/**
 * Connects with TLS, accepting any certificate the server shows, and resolves once the
 * handshake is done.
 */
export function connectUnverifiedTls(options: UnverifiedTlsOptions): Promise<UnverifiedTlsConn> {
  return new Promise((resolve, reject) => {
    const socket = connectNodeTls({
      host: options.hostname,
      port: options.port,
      rejectUnauthorized: false,
    });
    const onAbort = () => socket.destroy(new Error("aborted"));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const settle = () => options.signal?.removeEventListener("abort", onAbort);
    socket.once("error", (err) => {
      settle();
      reject(toDenoError(err));
    });
    socket.once("secureConnect", () => {
      settle();
      socket.setNoDelay(true);
      resolve(new UnverifiedTlsConn(socket));
    });
  });
}

/** A `node:tls` socket read and written like a `Deno.Conn`. */
export class UnverifiedTlsConn {
  readonly #socket: TLSSocket;
  #pending?: Uint8Array;
  #ended = false;
  #error?: Error;
  #wake?: () => void;
  /** The server's address, kept from the handshake: Node forgets it once the socket closes. */
  readonly remoteAddr: Deno.NetAddr;

  constructor(socket: TLSSocket) {
    this.#socket = socket;
    this.remoteAddr = {
      transport: "tcp",
      hostname: socket.remoteAddress ?? "",
      port: socket.remotePort ?? 0,
    };
    const wake = () => {
      this.#wake?.();
      this.#wake = undefined;
    };
    socket.removeAllListeners("error");
    socket.on("readable", wake);
    socket.on("end", () => {
      this.#ended = true;
      wake();
    });
    socket.on("error", (err) => {
      this.#error = toDenoError(err);
      wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      wake();
    });
  }

  /** Reads into `buffer`; resolves with the byte count, or null at the end of the stream. */
  async read(buffer: Uint8Array): Promise<number | null> {
    for (;;) {
      this.#pending ??= this.#socket.read() ?? undefined;
      if (this.#pending) {
        const n = Math.min(buffer.length, this.#pending.length);
        buffer.set(this.#pending.subarray(0, n));
        this.#pending = n < this.#pending.length ? this.#pending.subarray(n) : undefined;
        return n;
      }
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  /** Writes all of `bytes`; resolves with their count once the socket took them. */
  write(bytes: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#socket.write(
        bytes,
        (err) => err ? reject(toDenoError(err)) : resolve(bytes.length),
      );
    });
  }

  /** Sends TLS close_notify and FIN: the end of what this side sends. */
  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#socket.end(resolve));
  }

  /** Closes the connection at once. */
  close(): void {
    this.#socket.destroy();
  }
}
