import { deepEqual, equal, ok } from "node:assert/strict";
import { ServerLog } from "../../cli/server_log.ts";
import { LineWriter } from "../../cli/line_writer.ts";
import {
  type EchoEvent,
  type EchoServer,
  formatPeer,
  sendAndVerify,
  startEchoServer,
  type StartEchoServerOptions,
} from "../../lib/mod.ts";
import {
  connect,
  exited,
  needs,
  pattern,
  peerEnd,
  readExactly,
  readToEnd,
  within,
  writeAll,
} from "../helpers.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** An in-process server whose text log and close events the test can read. */
class ObservedServer implements AsyncDisposable {
  server!: EchoServer<Deno.NetAddr>;
  readonly closed: Extract<EchoEvent, { type: "closed" }>[] = [];
  bytesSent = 0;
  readonly #lines: string[] = [];
  readonly #log: ServerLog;
  #waiters: (() => void)[] = [];

  /** Starts a server on a free loopback port with `options`. */
  static async start(
    options: StartEchoServerOptions & { tls?: undefined } = {},
  ): Promise<ObservedServer> {
    const observed = new ObservedServer();
    observed.server = await startEchoServer({
      hostname: "127.0.0.1",
      port: 0,
      ...options,
      onEvent: (event) => observed.#observe(event),
      onError: (message) => observed.#log.error(message),
    });
    return observed;
  }

  private constructor() {
    const decoder = new TextDecoder();
    const sink = new LineWriter({
      write: (bytes) => {
        this.#lines.push(...decoder.decode(bytes).split("\n").slice(0, -1));
        return Promise.resolve(bytes.length);
      },
    });
    this.#log = new ServerLog({ format: "text", quiet: false, out: sink, err: sink });
  }

  #observe(event: EchoEvent): void {
    this.#log.onEvent?.(event);
    if (event.type === "sending") this.bytesSent += event.bytes;
    if (event.type === "closed") this.closed.push(event);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  get port(): number {
    return this.server.addr.port;
  }

  /** Resolves once `test` holds, checked after every event; fails naming `what` past WAIT_MS. */
  until(what: string, test: () => boolean): Promise<void> {
    const waiting = (async () => {
      while (!test()) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    })();
    return within(what, waiting, { seen: () => this.#lines.join("\n") });
  }

  /** Every log line so far. */
  async lines(): Promise<string[]> {
    await this.#log.flush();
    return this.#lines;
  }

  /** The log lines that mention the connection from `peer`, beyond the per-chunk ones. */
  async linesAbout(peer: Deno.Addr): Promise<string[]> {
    return (await this.lines()).filter((line) =>
      line.includes(formatPeer(peer)) && !/^(\[#\d+\] )?connection from/.test(line)
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.server.shutdown();
    equal(this.server.stats.open, 0);
  }
}

/**
 * Python clients that each connect, send 64 bytes, read one echoed byte and close with SO_LINGER 0,
 * which always sends a reset (a plain close sends a FIN first). Prints each client's port.
 */
const RESETTING_CLIENTS = `
import socket, struct, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(bytes(range(64)))
    s.recv(1)
    print(s.getsockname()[1])
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
`;

const sanitized = { sanitizeOps: true, sanitizeResources: true };

Deno.test({
  name: "a reset mid-stream ends only that connection, with one log line",
  ...sanitized,
  async fn() {
    await using observed = await ObservedServer.start({ bufferSize: 4096 });
    const conn = await connect(observed.port);
    const peer = conn.localAddr;
    const writing = writeAll(conn, pattern(4 * 1024 * 1024)).catch(() => {});
    await readExactly(conn, 64 * 1024);
    conn.close();
    await writing;
    await observed.until("1 connection closed", () => observed.closed.length === 1);
    equal(observed.closed[0].reason, "reset");
    deepEqual(await observed.linesAbout(peer), [
      `lost connection from ${formatPeer(peer)}: ${observed.closed[0].detail}`,
    ]);
    const result = await sendAndVerify({
      hostname: "127.0.0.1",
      port: observed.port,
      message: pattern(1000),
    });
    equal(result.bytesReceived, 1000);
  },
});

Deno.test({
  name: "a client process killed mid-write ends only its connection, with one log line",
  ...sanitized,
  async fn() {
    await using observed = await ObservedServer.start({ bufferSize: 4096 });
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "send", "--quiet", "--port", String(observed.port), "-"],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(pattern(16 * 1024 * 1024));
    await writer.close();
    // Kill it once the echo is well under way: the kernel resets its half-read socket.
    await observed.until("1 MiB echoed", () => observed.bytesSent > 1024 * 1024);
    child.kill("SIGKILL");
    equal((await exited(child, "the killed client")).signal, "SIGKILL");
    await observed.until("1 connection closed", () => observed.closed.length === 1);
    const [closed] = observed.closed;
    equal(closed.reason, "reset");
    deepEqual(await observed.linesAbout(closed.conn.peer), [
      `lost connection from ${formatPeer(closed.conn.peer)}: ${closed.detail}`,
    ]);
  },
});

Deno.test({
  name: "half-closed and half-open clients: the echo completes or the idle timeout ends it",
  ...sanitized,
  async fn() {
    await using observed = await ObservedServer.start({ idleTimeout: 200, bufferSize: 1024 });
    // Half-closed: the client stops sending but still gets the whole echo, then EOF.
    using halfClosed = await connect(observed.port);
    const message = pattern(256 * 1024);
    const echo = readToEnd(halfClosed);
    await writeAll(halfClosed, message);
    await halfClosed.closeWrite();
    deepEqual(await echo, message);

    // Half-open: a peer that vanished without a FIN or reset looks silent; the idle timeout ends it.
    using silent = await connect(observed.port);
    const silentPeer = silent.localAddr;
    await writeAll(silent, pattern(10));
    await readExactly(silent, 10);
    equal(await peerEnd(silent), "eof");

    // Sending and never reading: the echo stalls on full buffers until the idle timeout.
    using stalled = await connect(observed.port);
    const stalledPeer = stalled.localAddr;
    const writing = writeAll(stalled, pattern(16 * 1024 * 1024)).catch(() => {});
    await observed.until("3 connections closed", () => observed.closed.length === 3);
    await writing;

    deepEqual(observed.closed.map((event) => event.reason).sort(), ["eof", "idle", "idle"]);
    for (const peer of [silentPeer, stalledPeer]) {
      deepEqual(await observed.linesAbout(peer), [
        `closing idle connection from ${formatPeer(peer)}: no byte in or out for 0.2 s`,
      ]);
    }
  },
});

Deno.test({
  ...needs(
    "python3",
    "1,000 reset connections in a row: one line each, the server stays up, nothing leaks",
  ),
  ...sanitized,
  async fn() {
    await using observed = await ObservedServer.start();
    const clients = await new Deno.Command("python3", {
      args: ["-c", RESETTING_CLIENTS, String(observed.port), "1000"],
      stderr: "inherit",
    }).output();
    equal(clients.code, 0);
    const ports = new TextDecoder().decode(clients.stdout).trim().split("\n");
    equal(ports.length, 1000);
    await observed.until("1,000 connections closed", () => observed.closed.length === 1000);

    deepEqual(
      observed.closed.filter((event) => event.reason !== "reset").map((e) => [e.reason, e.detail]),
      [],
    );
    const lines = await observed.lines();
    const lost = lines.filter((line) => line.includes("lost connection from"));
    const named = lost.map((line) => line.match(/\('127\.0\.0\.1', (\d+)\)/)?.[1]).sort();
    deepEqual(named, ports.sort(), "one line for each connection");
    ok(!lines.some((line) => line.startsWith("error:")));

    const result = await sendAndVerify({
      hostname: "127.0.0.1",
      port: observed.port,
      message: pattern(1000),
    });
    equal(result.bytesReceived, 1000);
    equal(observed.server.stats.open, 0);
  },
});
