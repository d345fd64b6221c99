/**
 * Test helpers: run the real CLI as a child process and talk to it over real loopback sockets.
 *
 * @module
 */

import { Buffer } from "node:buffer";
export { pattern } from "../lib/pattern.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const decoder = new TextDecoder();
/** How long a test waits for a log line before it fails. */
const WAIT_MS = 10_000;

/** What a finished CLI run printed and how it exited. */
export interface CliResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Options for one CLI run. */
export interface CliOptions {
  /** Bytes fed to standard input (closed after). */
  stdin?: Uint8Array | string;
  /** Deno permission flags; default `-A`. */
  permissions?: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /**
   * The program and leading arguments that run tcpecho, such as a compiled binary or
   * `deno run` of the bundle; default `deno run PERMISSIONS main.ts`.
   */
  program?: string[];
  /** Open-file limit for the child (`ulimit -n`), for tests that hold thousands of sockets. */
  fileLimit?: number;
  /** Kill the child after this many milliseconds (the result then has `signal` set). */
  killAfter?: number;
}

/** The command that runs `tcpecho ARGS...` with its output piped, for tests that read it raw. */
export function cliCommand(
  args: string[],
  options: CliOptions = {},
  stdin: "piped" | "null" = "null",
): Deno.Command {
  const tcpecho = [
    ...(options.program ?? [Deno.execPath(), "run", ...(options.permissions ?? ["-A"]), MAIN]),
    ...args,
  ];
  // `exec` keeps the process id, so the test can still signal the server and read its memory.
  const [program, ...rest] = options.fileLimit === undefined
    ? tcpecho
    : ["sh", "-c", `ulimit -n ${options.fileLimit} && exec "$0" "$@"`, ...tcpecho];
  return new Deno.Command(program, {
    args: rest,
    signal: options.killAfter === undefined ? undefined : AbortSignal.timeout(options.killAfter),
    env: { NO_COLOR: "1", ...options.env },
    stdin,
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs `tcpecho ARGS...` to completion. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const child = cliCommand(args, options, options.stdin === undefined ? "null" : "piped").spawn();
  return finish(child, options.stdin);
}

/** Runs `tcpecho send --host 127.0.0.1 --port PORT ARGS...` to completion. */
export function sendTo(port: number, args: string[]): Promise<CliResult> {
  return runCli(["send", "--host", "127.0.0.1", "--port", String(port), ...args]);
}

/** Feeds `stdin` (when given) to a spawned child, then waits for it and decodes its output. */
async function finish(child: Deno.ChildProcess, stdin?: Uint8Array | string): Promise<CliResult> {
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    try {
      await writer.write(typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin);
      await writer.close();
    } catch (err) {
      // A child that stops reading its input early (a failed send) closes the pipe: fine.
      if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
    }
  }
  const output = await child.output();
  return {
    code: output.code,
    signal: output.signal,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/**
 * What `serve` logs for one client sending the classic message with a 16-byte buffer, after the
 * start-up line, with the client port normalised (see {@linkcode normalisePeers}).
 */
export const CLASSIC_SERVER_LOG = `waiting for a connection
connection from ('127.0.0.1', PORT)
received b'This is our mess'
sending data back to the client
received b'age. It is very '
sending data back to the client
received b'long but will on'
sending data back to the client
received b'ly be transmitte'
sending data back to the client
received b'd in chunks of 1'
sending data back to the client
received b'6 at a time'
sending data back to the client
received b''
no data from ('127.0.0.1', PORT)
Closing current connection
waiting for a connection`;

/** Collects a stream's text line by line and lets a test wait for a line. */
export class LineCollector {
  readonly lines: string[] = [];
  #waiters: { test: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  #closed = false;
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = this.#collect(stream);
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    let pending = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      pending += text;
      let newline;
      while ((newline = pending.indexOf("\n")) >= 0) {
        this.#add(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
      }
    }
    if (pending) this.#add(pending);
    this.#closed = true;
    for (const waiter of this.#waiters) waiter.resolve("");
  }

  #add(line: string): void {
    this.lines.push(line);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.test(line)) return true;
      waiter.resolve(line);
      return false;
    });
  }

  /**
   * Resolves with the first line (already seen or still to come) that matches; rejects when the
   * stream ends without one, or after `timeoutMs` milliseconds, so a test fails instead of hanging.
   */
  async waitFor(pattern: RegExp | string, timeoutMs = WAIT_MS): Promise<string> {
    const test = (line: string) =>
      typeof pattern === "string" ? line.includes(pattern) : pattern.test(line);
    const seen = this.lines.find(test);
    if (seen !== undefined) return seen;
    const line = this.#closed ? "" : await this.#nextLine(test, timeoutMs);
    if (!test(line)) throw new Error(`no line matching ${pattern} in:\n${this.text}`);
    return line;
  }

  /** Resolves once `count` lines match; rejects like {@linkcode LineCollector.waitFor}. */
  async waitForCount(pattern: RegExp, count: number, timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.filter((line) => pattern.test(line)).length < count) {
      const seen = this.lines.length;
      const line = this.#closed
        ? ""
        : await this.#nextLine(() => this.lines.length > seen, deadline - Date.now());
      if (line === "" && this.lines.length === seen) {
        throw new Error(`fewer than ${count} lines match ${pattern}:\n${this.text}`);
      }
    }
  }

  /** The next line that passes `test`, or "" when the stream ends or time runs out. */
  #nextLine(test: (line: string) => boolean, timeoutMs: number): Promise<string> {
    return new Promise<string>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((waiter) => waiter.resolve !== done);
        resolve("");
      }, Math.max(0, timeoutMs));
      const done = (line: string) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.#waiters.push({ test, resolve: done });
    });
  }

  get text(): string {
    return this.lines.join("\n");
  }
}

/** A running `tcpecho` child process whose output a test reads line by line. */
export interface CliProcess {
  child: Deno.ChildProcess;
  stdout: LineCollector;
  stderr: LineCollector;
}

/** Starts `tcpecho ARGS...` without waiting for it; standard input is closed. */
export function spawnCli(args: string[], options: CliOptions = {}): CliProcess {
  const child = cliCommand(args, options, "null").spawn();
  return {
    child,
    stdout: new LineCollector(child.stdout),
    stderr: new LineCollector(child.stderr),
  };
}

/** A `tcpecho serve` child process listening on a free loopback port. */
export class ServeProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly stdout: LineCollector;
  readonly stderr: LineCollector;
  port = 0;

  private constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.stdout = new LineCollector(child.stdout);
    this.stderr = new LineCollector(child.stderr);
  }

  /**
   * Starts `tcpecho serve --port 0 ARGS...` and waits for its start-up line to learn the port.
   * Pass `--host` in `args` to change the address (default `localhost`); with `--unix` there is
   * no port (it stays 0).
   */
  static async start(args: string[] = [], options: CliOptions = {}): Promise<ServeProcess> {
    const portArgs = args.includes("--unix") ? [] : ["--port", "0"];
    const server = new ServeProcess(
      cliCommand(["serve", ...portArgs, ...args], options, "null").spawn(),
    );
    const line = await server.#firstLine().catch(async (err) => {
      await server.child.status;
      await server.stderr.done;
      throw new Error(`server did not start: ${err.message}\n${server.stderr.text}`);
    });
    const port = line.match(/port (\d+)/)?.[1] ??
      (line.startsWith("{") ? JSON.parse(line).address.split(":").pop() : "0");
    server.port = Number(port) || 0;
    return server;
  }

  #firstLine(): Promise<string> {
    return this.stdout.waitFor(/Starting up on|"event":"listening"/);
  }

  /** Sends `signal` and waits for the process to end. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch { /* already ended */ }
    return await this.exited();
  }

  /** Waits for the process to end by itself and for all of its output. */
  async exited(): Promise<Deno.CommandStatus> {
    const status = await this.child.status;
    await Promise.all([this.stdout.done, this.stderr.done]);
    return status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL");
  }
}

/** Connects to a loopback port. */
export function connect(port: number, hostname = "127.0.0.1"): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname, port });
}

/** Writes all of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/** Reads until the peer closes; returns everything read. */
export async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
    total += n;
  }
  const all = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}

/** Reads exactly `length` bytes, or fewer if the peer closes first. */
export async function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array> {
  const all = new Uint8Array(length);
  let offset = 0;
  while (offset < length) {
    const n = await conn.read(all.subarray(offset));
    if (n === null) break;
    offset += n;
  }
  return all.subarray(0, offset);
}

/** The resident memory of process `pid` in bytes (VmRSS in /proc/PID/status), Linux only. */
export function residentBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = status.match(/^VmRSS:\s+(\d+) kB$/m)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kib) * 1024;
}

/** Whether two byte arrays hold the same bytes (a fast comparison, for megabytes). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length)
    .equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** Whether a program is on the PATH, for interop tests that skip without it. */
export function hasProgram(name: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${name}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** Whether this machine has an IPv6 loopback address to listen on. */
export function hasLoopback6(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

/** A test's name and `ignore` flag: skipped, saying why in its name, unless `available`. */
export function skipUnless(
  available: boolean,
  reason: string,
  name: string,
): { name: string; ignore: boolean } {
  return { name: available ? name : `${name} (skipped: ${reason})`, ignore: !available };
}

/** A test's name and `ignore` flag for a test that needs `program` on the PATH. */
export function needs(program: string, name: string): { name: string; ignore: boolean } {
  return skipUnless(hasProgram(program), `${program} is not installed`, name);
}

/** Whether anything (a file, a socket, a directory) exists at `path`. */
export function pathExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Replaces client port numbers in peer tuples with `PORT`, so transcripts compare exactly. */
export function normalisePeers(text: string): string {
  return text.replace(/\('([^']*)', \d+(, 0, 0)?\)/g, "('$1', PORT$2)");
}

/** A throwaway TCP server on a free loopback port that runs `handle` for each connection. */
export class TcpFixture implements AsyncDisposable {
  readonly listener: Deno.TcpListener;
  readonly #handlers: Promise<void>[] = [];
  readonly #accepting: Promise<void>;

  /** Listens on 127.0.0.1 port 0 and serves each connection with `handle`, which owns it. */
  constructor(handle: (conn: Deno.TcpConn) => Promise<void>) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.listener = listener;
    this.#accepting = (async () => {
      for await (const conn of listener) {
        this.#handlers.push(
          handle(conn).catch(() => {}).finally(() => {
            try {
              conn.close();
            } catch { /* the handler closed it */ }
          }),
        );
      }
    })().catch(() => {});
  }

  /** The port the fixture listens on. */
  get port(): number {
    return this.listener.addr.port;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.listener.close();
    } catch { /* already closed */ }
    await this.#accepting;
    await Promise.all(this.#handlers);
  }
}

/** A loopback port that was free a moment ago (bound to port 0, then released). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** Retries connecting to `port` until something accepts, for servers that print no port. */
export async function waitUntilAccepting(port: number, attempts = 100): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      (await connect(port)).close();
      return;
    } catch (err) {
      if (attempt >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Runs `program ARGS...` with `stdin` fed and closed; returns its output as text. */
export function runProgram(
  program: string,
  args: string[],
  stdin: Uint8Array | string = "",
): Promise<CliResult> {
  const child = new Deno.Command(program, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return finish(child, stdin);
}

/** A running `haproxy -W -db` with a configuration of the test's; disposing stops it. */
export interface Haproxy extends AsyncDisposable {
  /** What HAProxy wrote to standard error. */
  log: LineCollector;
}

/**
 * Starts HAProxy with `config` (written to a temporary file) and waits until it says its
 * listeners are bound (`-W`: the master prints "Loading success.").
 */
export async function startHaproxy(config: string): Promise<Haproxy> {
  const file = await Deno.makeTempFile({ suffix: ".cfg" });
  await Deno.writeTextFile(file, config);
  const child = new Deno.Command("haproxy", {
    args: ["-W", "-db", "-f", file],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log = new LineCollector(child.stderr);
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already ended */ }
    await child.status;
    await log.done;
    await Deno.remove(file);
  };
  try {
    await log.waitFor("Loading success.");
  } catch (err) {
    await stop();
    throw err;
  }
  return { log, [Symbol.asyncDispose]: stop };
}

/**
 * Runs Prometheus's `promtool check metrics` on `text`: resolves with what it said, empty when it
 * found nothing wrong, or with `promtool failed: ...` when it rejects the text.
 */
export async function promtoolCheck(text: string): Promise<string> {
  const { code, stdout, stderr } = await runProgram("promtool", ["check", "metrics"], text);
  return code === 0 ? stdout + stderr : `promtool failed: ${stdout}${stderr}`;
}
