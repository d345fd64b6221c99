/**
 * Greetings: one line a server sends first on every connection, naming itself, so that a client
 * behind a load balancer can tell which backend it reached.
 *
 * @module
 */

import { RuntimeError, UsageError } from "../base/errors.ts";

/** What a greeting's placeholders stand for on one connection. */
export interface GreetingValues {
  /** `{host}`: the address the connection was accepted on. */
  host: string;
  /** `{port}`: the port it was accepted on (empty on a Unix socket). */
  port: number | string;
  /** `{worker}`: the worker that accepted it (0 without `--workers`). */
  worker: number;
  /** `{conn}`: the connection's number on that server, from 1. */
  conn: number;
}

const PLACEHOLDER = /\{([a-z]+)\}/g;
const NAMES = new Set(["host", "port", "worker", "conn"]);

/** The longest greeting line a client reads, newline included. */
export const MAX_GREETING = 1024;

/**
 * Checks a greeting template and returns the function that fills it in for a connection. Throws
 * a {@linkcode UsageError} for an unknown placeholder, a line break, or a line too long to read.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { greetingTemplate } from "./greeting.ts";
 *
 * const greet = greetingTemplate("backend {host}:{port} #{conn}");
 * equal(greet({ host: "127.0.0.1", port: 7, worker: 0, conn: 3 }), "backend 127.0.0.1:7 #3");
 * ```
 */
export function greetingTemplate(template: string): (values: GreetingValues) => string {
  if (/[\r\n]/.test(template)) {
    throw new UsageError("a greeting is one line: it cannot contain a line break");
  }
  const unknown = [...template.matchAll(PLACEHOLDER)].map((m) => m[1]).filter((n) => !NAMES.has(n));
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown greeting placeholder {${unknown[0]}}: use {host}, {port}, {worker} or {conn}`,
    );
  }
  if (new TextEncoder().encode(template).length >= MAX_GREETING - 64) {
    throw new UsageError(`a greeting must be shorter than ${MAX_GREETING - 64} bytes`);
  }
  return (values) =>
    template.replace(
      PLACEHOLDER,
      (_, name: keyof GreetingValues) => String(values[name]),
    );
}

/** A greeting line as read from a connection. */
export interface Greeting {
  /** The line, without its line ending (`\n` or `\r\n`). */
  line: string;
  /** Bytes read after the line: the server sent them unasked. */
  rest: Uint8Array;
}

/**
 * Reads a greeting line: bytes up to the first `\n`, at most {@linkcode MAX_GREETING}. Throws
 * `Deno.errors.UnexpectedEof` when the server closes first, `Deno.errors.InvalidData` when the
 * line is too long or not UTF-8, and `Deno.errors.TimedOut` (closing `conn`) when no full line
 * arrives within `timeout` milliseconds.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { readGreeting } from "./greeting.ts";
 *
 * const bytes = new TextEncoder().encode("backend a\nxy");
 * let offset = 0;
 * const conn = {
 *   read(buffer: Uint8Array) {
 *     const n = Math.min(4, bytes.length - offset);
 *     buffer.set(bytes.subarray(offset, offset + n));
 *     offset += n;
 *     return Promise.resolve(n || null);
 *   },
 *   close() {},
 * };
 * const greeting = await readGreeting(conn, 1000);
 * equal(greeting.line, "backend a");
 * equal(new TextDecoder().decode(greeting.rest), "xy");
 * ```
 */
export async function readGreeting(
  conn: Pick<Deno.Conn, "read" | "close">,
  timeout: number,
): Promise<Greeting> {
  const buffer = new Uint8Array(MAX_GREETING);
  let length = 0;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, timeout);
  try {
    while (true) {
      const newline = buffer.subarray(0, length).indexOf(10);
      if (newline !== -1) {
        const end = newline > 0 && buffer[newline - 1] === 13 ? newline - 1 : newline;
        const line = decodeLine(buffer.subarray(0, end));
        return { line, rest: buffer.slice(newline + 1, length) };
      }
      if (length === MAX_GREETING) {
        throw new Deno.errors.InvalidData(
          `the greeting line is longer than ${MAX_GREETING} bytes`,
        );
      }
      let n: number | null;
      try {
        n = await conn.read(buffer.subarray(length));
      } catch (err) {
        if (timedOut) break;
        throw err;
      }
      if (n === null) {
        if (timedOut) break;
        throw new Deno.errors.UnexpectedEof(
          length === 0
            ? "the server closed the connection without a greeting"
            : `the server closed the connection in the middle of its greeting, after ${length} bytes`,
        );
      }
      length += n;
    }
    throw new Deno.errors.TimedOut(`no greeting line within ${timeout} ms`);
  } finally {
    clearTimeout(timer);
  }
}

function decodeLine(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new Deno.errors.InvalidData("the greeting line is not UTF-8 text");
  }
}

/**
 * Reads the greeting a client expects before it sends anything, and returns its line. Throws a
 * {@linkcode RuntimeError} that says what went wrong: no line within `timeout` ms, a close before
 * it, a line too long or not text, or bytes after it that nobody asked for.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { connect, receiveGreeting, startEchoServer } from "../mod.ts";
 *
 * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0, greeting: "hi #{conn}" });
 * const conn = await connect({ hostname: "127.0.0.1", port: server.addr.port });
 * equal(await receiveGreeting(conn, 5000), "hi #1");
 * conn.close();
 * ```
 */
export async function receiveGreeting(
  conn: Pick<Deno.Conn, "read" | "close">,
  timeout: number,
): Promise<string> {
  let greeting: Greeting;
  try {
    greeting = await readGreeting(conn, timeout);
  } catch (err) {
    throw new RuntimeError(`no greeting: ${(err as Error).message}`);
  }
  const extra = greeting.rest.length;
  if (extra > 0) {
    throw new RuntimeError(
      `the server sent ${extra} byte${extra === 1 ? "" : "s"} after its greeting, before it ` +
        "was sent anything",
    );
  }
  return greeting.line;
}
