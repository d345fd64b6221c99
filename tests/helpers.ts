/**
 * Test helpers: run the real CLI as a child process and talk to it over real loopback sockets.
 *
 * @module
 */

import "./backstop.ts";
import { Buffer } from "node:buffer";
import { awaitedLater, previewBytes, WAIT_MS, within } from "./deadline.ts";
import { hasProgram } from "../tools/system.ts";
export { pattern } from "../lib/load/pattern.ts";
export { within } from "./deadline.ts";
export { freePort, hasProgram, residentBytes, waitUntilAccepting } from "../tools/system.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
/**
 * How long a whole CLI or program run may take before it is killed and the test fails: some send
 * 64 MiB, which takes 20 s on a busy two-core machine.
 */
const RUN_MS = 45_000;

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

/** The `errors` of a `bench --json` report in which nothing went wrong. */
export const NO_BENCH_ERRORS = {
  mismatches: 0,
  early_closes: 0,
  resets: 0,
  timeouts: 0,
  refused: 0,
  connect_timeouts: 0,
};

/** Runs `tcpecho bench --json` against 127.0.0.1 `port` with `args`, and parses its report. */
export async function benchJson(
  port: number,
  ...args: string[]
  // deno-lint-ignore no-explicit-any
): Promise<CliResult & { report: any }> {
  const result = await runCli([
    "bench",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--json",
    ...args,
  ]);
  return { ...result, report: result.stdout === "" ? undefined : JSON.parse(result.stdout) };
}

/**
 * Runs `tcpecho ARGS...` to completion; kills it and fails showing its output if it runs longer
 * than 45 s.
 */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const child = cliCommand(args, options, options.stdin === undefined ? "null" : "piped").spawn();
  return finish(child, `tcpecho ${args.join(" ")}`, options.stdin);
}

/** Runs `tcpecho send --host 127.0.0.1 --port PORT ARGS...` to completion. */
export function sendTo(port: number, args: string[]): Promise<CliResult> {
  return runCli(["send", "--host", "127.0.0.1", "--port", String(port), ...args]);
}

/**
 * Feeds `stdin` (when given) to a spawned child, then waits for it and decodes its output; kills
 * it and fails naming `what` when it outlives {@linkcode RUN_MS}.
 */
async function finish(
  child: Deno.ChildProcess,
  what: string,
  stdin?: Uint8Array | string,
): Promise<CliResult> {
  const stdout = new LineCollector(child.stdout, `${what}: stdout`);
  const stderr = new LineCollector(child.stderr, `${what}: stderr`);
  const feeding = stdin === undefined ? Promise.resolve() : feed(child, stdin);
  const status = await within(
    `${what} to exit`,
    Promise.all([child.status, stdout.done, stderr.done, feeding]).then(([status]) => status),
    { ms: RUN_MS, onTimeout: () => kill(child), seen: () => bothStreams(stdout, stderr) },
  );
  return {
    code: status.code,
    signal: status.signal,
    stdout: stdout.raw,
    stderr: withoutCacheLines(stderr.raw),
  };
}

/**
 * Drops the `Download https://...` lines Deno prints while its cache is cold (a `--no-config`
 * run, a new machine): they are Deno's, not tcpecho's, and no test may depend on a warm cache.
 */
export function withoutCacheLines(stderr: string): string {
  return stderr.replace(/^Download https?:\/\/\S+\n/gm, "");
}

/** Writes `stdin` to the child and closes it. */
async function feed(child: Deno.ChildProcess, stdin: Uint8Array | string): Promise<void> {
  const writer = child.stdin.getWriter();
  try {
    await writer.write(typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin);
    await writer.close();
  } catch (err) {
    // A child that stops reading its input early (a failed send) closes the pipe: fine.
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
}

/** Both streams of a process so far, each under its label. */
function bothStreams(stdout: LineCollector, stderr: LineCollector): string {
  return `${stdout.label}:\n${stdout.text}\n${stderr.label}:\n${stderr.text}`;
}

/** Kills a child process that may have ended already. */
function kill(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch { /* already ended */ }
}

/** Waits for a child process to exit; kills it and fails naming `what` past the deadline. */
export function exited(
  child: Deno.ChildProcess,
  what: string,
  ms = WAIT_MS,
): Promise<Deno.CommandStatus> {
  return within(`${what} to exit`, child.status, { ms, onTimeout: () => kill(child) });
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
  /** What the stream is, for error messages: `tcpecho serve: stdout`. */
  readonly label: string;
  #raw = "";
  #waiters: { test: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  #closed = false;
  readonly done: Promise<void>;
  /** More to show when a wait fails, such as the process's other stream. */
  #context?: () => string;

  constructor(stream: ReadableStream<Uint8Array>, label = "output", context?: () => string) {
    this.label = label;
    this.#context = context;
    this.done = this.#collect(stream);
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    let pending = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      this.#raw += text;
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
   * stream ends without one, or after `timeoutMs` milliseconds, naming the pattern and showing
   * the output so far.
   */
  async waitFor(pattern: RegExp | string, timeoutMs = WAIT_MS): Promise<string> {
    const test = (line: string) =>
      typeof pattern === "string" ? line.includes(pattern) : pattern.test(line);
    const seen = this.lines.find(test);
    if (seen !== undefined) return seen;
    const what = `a line matching ${describePattern(pattern)} in ${this.label}`;
    const line = this.#closed ? "" : await this.#nextLine(what, test, timeoutMs);
    if (!test(line)) throw new Error(`${this.label} ended without ${what}:\n${this.#seen()}`);
    return line;
  }

  /** Resolves once `count` lines match; rejects like {@linkcode LineCollector.waitFor}. */
  async waitForCount(pattern: RegExp, count: number, timeoutMs = WAIT_MS): Promise<void> {
    const what = `${count} lines matching ${pattern} in ${this.label}`;
    const matching = () => this.lines.filter((line) => pattern.test(line)).length;
    const deadline = Date.now() + timeoutMs;
    while (matching() < count) {
      const seen = this.lines.length;
      if (this.#closed) throw new Error(`${this.label} ended before ${what}:\n${this.#seen()}`);
      await this.#nextLine(what, () => this.lines.length > seen, deadline - Date.now());
    }
  }

  /** The next line that passes `test`, or "" when the stream ends; fails past `timeoutMs`. */
  #nextLine(what: string, test: (line: string) => boolean, timeoutMs: number): Promise<string> {
    const { promise, resolve } = Promise.withResolvers<string>();
    this.#waiters.push({ test, resolve });
    return within(what, promise, {
      ms: Math.max(0, timeoutMs),
      onTimeout: () => {
        this.#waiters = this.#waiters.filter((waiter) => waiter.resolve !== resolve);
      },
      seen: () => this.#seen(),
    });
  }

  #seen(): string {
    return this.text + (this.#context ? `\n${this.#context()}` : "");
  }

  /** The lines so far, joined by newlines. */
  get text(): string {
    return this.lines.join("\n");
  }

  /** Everything read so far, exactly as it came. */
  get raw(): string {
    return this.#raw;
  }
}

function describePattern(pattern: RegExp | string): string {
  return typeof pattern === "string" ? JSON.stringify(pattern) : String(pattern);
}

/** A running `tcpecho` child process whose output a test reads line by line. */
export interface CliProcess {
  child: Deno.ChildProcess;
  stdout: LineCollector;
  stderr: LineCollector;
}

/** Starts `tcpecho ARGS...` without waiting for it; standard input is closed. */
export function spawnCli(args: string[], options: CliOptions = {}): CliProcess {
  return watch(cliCommand(args, options, "null").spawn(), `tcpecho ${args.join(" ")}`);
}

/** Collects a child's output, each stream's failed waits showing the other stream too. */
function watch(child: Deno.ChildProcess, what: string): CliProcess {
  const stderr: LineCollector = new LineCollector(child.stderr, `${what}: stderr`);
  const stdout = new LineCollector(
    child.stdout,
    `${what}: stdout`,
    () => `${stderr.label}:\n${stderr.text}`,
  );
  return { child, stdout, stderr };
}

/** A `tcpecho serve` child process listening on a free loopback port. */
export class ServeProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly stdout: LineCollector;
  readonly stderr: LineCollector;
  port = 0;

  private constructor({ child, stdout, stderr }: CliProcess) {
    this.child = child;
    this.stdout = stdout;
    this.stderr = stderr;
  }

  /**
   * Starts `tcpecho serve --port 0 ARGS...` and waits for its start-up line to learn the port.
   * Pass `--host` in `args` to change the address (default `localhost`); with `--unix` there is
   * no port (it stays 0).
   */
  static async start(args: string[] = [], options: CliOptions = {}): Promise<ServeProcess> {
    const portArgs = args.includes("--unix") ? [] : ["--port", "0"];
    const serveArgs = ["serve", ...portArgs, ...args];
    const server = new ServeProcess(
      watch(cliCommand(serveArgs, options, "null").spawn(), `tcpecho ${serveArgs.join(" ")}`),
    );
    const line = await server.stdout.waitFor(/Starting up on|"event":"listening"/)
      .catch(async (err) => {
        await server.stop("SIGKILL");
        throw new Error(`server did not start: ${err.message}`);
      });
    const port = line.match(/port (\d+)/)?.[1] ??
      (line.startsWith("{") ? JSON.parse(line).address.split(":").pop() : "0");
    server.port = Number(port) || 0;
    return server;
  }

  /** Sends `signal` and waits for the process to end; see {@linkcode ServeProcess.exited}. */
  async stop(signal: Deno.Signal = "SIGTERM", ms = WAIT_MS): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch { /* already ended */ }
    return await this.exited(ms, ` after ${signal}`);
  }

  /**
   * Waits for the process to end and for all of its output; past `ms` milliseconds, kills it and
   * fails showing its output.
   */
  exited(ms = WAIT_MS, after = ""): Promise<Deno.CommandStatus> {
    return within(
      `tcpecho serve to exit${after}`,
      Promise.all([this.child.status, this.stdout.done, this.stderr.done]).then(([s]) => s),
      { ms, onTimeout: () => kill(this.child), seen: () => bothStreams(this.stdout, this.stderr) },
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL");
  }
}

/** Connects to a loopback port, failing after {@linkcode WAIT_MS} if nothing answers. */
export function connect(port: number, hostname = "127.0.0.1"): Promise<Deno.TcpConn> {
  return within(`a connection to ${hostname} port ${port}`, Deno.connect({ hostname, port }));
}

/** Writes all of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/**
 * Reads until the peer closes; returns everything read. Fails when no byte arrives for `ms`
 * milliseconds (default {@linkcode WAIT_MS}), showing what it had read.
 */
export function readToEnd(conn: Deno.Conn, ms = WAIT_MS): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  const options = { ms, seen: () => previewBytes(concat(chunks)) };
  const what = `${peerName(conn)} to close the connection`;
  return awaitedLater((async () => {
    for (let n; (n = await within(what, conn.read(buffer), options)) !== null;) {
      chunks.push(buffer.slice(0, n));
    }
    return concat(chunks);
  })());
}

/**
 * Reads exactly `length` bytes, or fewer if the peer closes first. Fails when no byte arrives for
 * `ms` milliseconds (default {@linkcode WAIT_MS}), showing what it had read.
 */
export function readExactly(conn: Deno.Conn, length: number, ms = WAIT_MS): Promise<Uint8Array> {
  const all = new Uint8Array(length);
  let offset = 0;
  const options = { ms, seen: () => previewBytes(all.subarray(0, offset)) };
  const what = `${length} bytes from ${peerName(conn)}`;
  return awaitedLater((async () => {
    while (offset < length) {
      const n = await within(what, conn.read(all.subarray(offset)), options);
      if (n === null) break;
      offset += n;
    }
    return all.subarray(0, offset);
  })());
}

/**
 * How the peer ended the connection: `eof`, `data` when it sent a byte instead, or the error's
 * name (`ConnectionReset`); fails after `ms` milliseconds (default {@linkcode WAIT_MS}).
 */
export function peerEnd(conn: Deno.Conn, ms = WAIT_MS): Promise<string> {
  const reading = conn.read(new Uint8Array(1)).then(
    (n) => n === null ? "eof" : "data",
    (err) => (err as Error).name,
  );
  return within(`${peerName(conn)} to close the connection`, reading, { ms });
}

/** The other end of `conn` in words: `127.0.0.1 port 4321`, `unix:/tmp/echo.sock`. */
function peerName(conn: Deno.Conn): string {
  const addr = conn.remoteAddr;
  if ("path" in addr) return `unix:${addr.path || "(the server)"}`;
  return "hostname" in addr ? `${addr.hostname} port ${addr.port}` : addr.transport;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}

/** Whether two byte arrays hold the same bytes (a fast comparison, for megabytes). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length)
    .equals(Buffer.from(b.buffer, b.byteOffset, b.length));
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

/**
 * A throwaway TCP server on 127.0.0.1 port 0 that hands each connection to `handle`, for servers
 * that misbehave on purpose. `closing` resolves when the fixture is disposed of: a handler that
 * holds its connection without touching it awaits that. Disposing closes the listener and every
 * connection still open, then waits for the handlers.
 */
export class TcpFixture implements AsyncDisposable {
  readonly listener: Deno.TcpListener;
  readonly #open = new Set<Deno.TcpConn>();
  readonly #handlers: Promise<void>[] = [];
  readonly #accepting: Promise<void>;
  readonly #closing = Promise.withResolvers<void>();

  constructor(handle: (conn: Deno.TcpConn, closing: Promise<void>) => Promise<void>) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.listener = listener;
    this.#accepting = (async () => {
      for await (const conn of listener) {
        this.#open.add(conn);
        this.#handlers.push(
          handle(conn, this.#closing.promise).catch(() => {}).finally(() => this.#close(conn)),
        );
      }
    })().catch(() => {});
  }

  /** The port the fixture listens on. */
  get port(): number {
    return this.listener.addr.port;
  }

  #close(conn: Deno.TcpConn): void {
    if (!this.#open.delete(conn)) return;
    try {
      conn.close();
    } catch { /* the handler closed it */ }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.listener.close();
    } catch { /* already closed */ }
    await this.#accepting;
    this.#closing.resolve();
    for (const conn of this.#open) this.#close(conn);
    await within("the fixture server's handlers to finish", Promise.all(this.#handlers));
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
  return finish(child, `${program} ${args.join(" ")}`.slice(0, 80), stdin);
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
  const log = new LineCollector(child.stderr, "haproxy: stderr");
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already ended */ }
    await exited(child, "haproxy");
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
