import { equal, ok } from "node:assert/strict";
import { makeCertificates } from "../certificates.ts";
import {
  connect,
  hasProgram,
  pattern,
  readExactly,
  readToEnd,
  sameBytes,
  ServeProcess,
  skipUnless,
  writeAll,
} from "../helpers.ts";

const CLIENTS = 100;
const MESSAGE = 1024 * 1024;
const PIECE = 16 * 1024;
/** Bytes a client lets go unanswered before it waits for its echo, like a real streaming peer. */
const WINDOW = 64 * 1024;

/** Byte `offset` of client `id`'s stream: differs per client, so mix-ups show. */
function streamByte(id: number, offset: number): number {
  return ((offset * 131 + 7) % 251) ^ (id & 0xff);
}

/**
 * A client that streams `length` bytes (endless when `Infinity`) in pieces, at most `WINDOW`
 * ahead of its echo, half-closes when done, and checks every byte echoed until the end of stream.
 * Given `pauseAt`, it stops sending there (`paused` resolves) until `resume()`.
 */
class StreamingClient {
  sent = 0;
  echoed = 0;
  /** Offset of the first echoed byte that differed from the stream, or -1. */
  corruptAt = -1;
  /** What went wrong reading the echo (a reset, say), if anything. */
  readError?: unknown;
  readonly started: Promise<void>;
  readonly finished: Promise<void>;
  readonly #pause = Promise.withResolvers<void>();
  readonly #paused = Promise.withResolvers<void>();
  readonly paused = this.#paused.promise;
  readonly #conn: Deno.TcpConn;
  #ended = false;
  #onStarted!: () => void;
  #progress = Promise.withResolvers<void>();

  constructor(
    readonly id: number,
    conn: Deno.TcpConn,
    readonly length = MESSAGE,
    readonly pauseAt = Infinity,
  ) {
    this.#conn = conn;
    this.started = new Promise((resolve) => this.#onStarted = resolve);
    const writing = this.#write();
    this.finished = this.#read().catch((err) => this.readError = err).finally(async () => {
      this.#ended = true;
      this.#progress.resolve();
      await writing;
      conn.close();
    });
  }

  async #write(): Promise<void> {
    const piece = new Uint8Array(PIECE);
    try {
      while (!this.#ended && this.sent < this.length) {
        if (this.sent === this.pauseAt) {
          this.#paused.resolve();
          await this.#pause.promise;
        }
        if (this.sent - this.echoed >= WINDOW) {
          await this.#progress.promise;
          continue;
        }
        const size = Math.min(
          PIECE,
          this.length - this.sent,
          this.sent < this.pauseAt ? this.pauseAt - this.sent : PIECE,
        );
        for (let i = 0; i < size; i++) piece[i] = streamByte(this.id, this.sent + i);
        let written = 0;
        while (written < size) written += await this.#conn.write(piece.subarray(written, size));
        this.sent += size;
      }
      if (!this.#ended) await this.#conn.closeWrite();
    } catch { /* the connection closed under a write in flight */ }
  }

  /** Goes on sending after `pauseAt`. */
  resume(): void {
    this.#pause.resolve();
  }

  async #read(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await this.#conn.read(buffer);
      if (n === null) return;
      for (let i = 0; i < n && this.corruptAt < 0; i++) {
        if (buffer[i] !== streamByte(this.id, this.echoed + i)) this.corruptAt = this.echoed + i;
      }
      this.echoed += n;
      this.#onStarted();
      this.#progress.resolve();
      this.#progress = Promise.withResolvers();
    }
  }
}

const format = (n: number) => new Intl.NumberFormat("en-US").format(n);

Deno.test("SIGTERM mid-stream: 100 clients streaming 1 MiB each all get every byte back, exit 0", async () => {
  await using server = await ServeProcess.start([
    "--quiet",
    "--buffer-size",
    "64KiB",
    // Long enough for a loaded CI machine: the point is that exit comes when the last client is
    // done, not at this deadline.
    "--drain-timeout",
    "120",
  ]);
  // Every client sends half of its message, and the rest only once the server is draining.
  const clients: StreamingClient[] = [];
  for (let id = 0; id < CLIENTS; id++) {
    clients.push(new StreamingClient(id, await connect(server.port), MESSAGE, MESSAGE / 2));
  }
  await Promise.all(clients.map((client) => client.paused));
  const midStream = clients.filter((client) => client.sent < MESSAGE).length;
  const signalled = performance.now();
  server.child.kill("SIGTERM");
  await server.stderr.waitFor("draining");
  for (const client of clients) client.resume();
  const status = await server.exited();
  const secondsToExit = (performance.now() - signalled) / 1000;
  await Promise.all(clients.map((client) => client.finished));

  equal(status.code, 0, server.stderr.text);
  equal(midStream, CLIENTS);
  equal(
    server.stderr.lines[0],
    `draining ${CLIENTS} connections (up to 120 s; send the signal again to stop now)`,
  );
  for (const client of clients) {
    equal(client.readError, undefined, `client ${client.id}: ${client.readError}`);
    equal(client.corruptAt, -1, `client ${client.id}: echo differs at byte ${client.corruptAt}`);
    equal(client.echoed, MESSAGE, `client ${client.id} got ${client.echoed} of ${MESSAGE} bytes`);
  }
  const whole = clients.filter((client) => client.echoed === MESSAGE).length;
  equal(
    server.stdout.lines.at(-1),
    `shut down: ${CLIENTS} connections, ${format(CLIENTS * MESSAGE)} bytes echoed`,
  );
  console.log(
    `${whole} of ${CLIENTS} clients whole (${midStream} mid-stream at the signal), ` +
      `${format(CLIENTS * MESSAGE)} bytes echoed, exit ${secondsToExit.toFixed(2)} s after SIGTERM`,
  );
});

Deno.test("SIGTERM: an idle client delays exit by at most the drain timeout, then gets FIN", async () => {
  await using server = await ServeProcess.start(["--host", "127.0.0.1", "--drain-timeout", "0.5"]);
  const conn = await connect(server.port);
  await writeAll(conn, new TextEncoder().encode("hi"));
  equal((await readExactly(conn, 2)).length, 2);
  const signalled = performance.now();
  server.child.kill("SIGTERM");
  // Nothing until the deadline, then the end of stream: the client closes, as clients do.
  equal((await readToEnd(conn)).length, 0);
  conn.close();
  const status = await server.exited();
  const elapsed = performance.now() - signalled;
  equal(status.code, 0);
  ok(elapsed >= 450, `FIN came ${elapsed.toFixed(0)} ms after the signal, before the deadline`);
  // The deadline, plus the time a loaded machine takes to run the process down.
  ok(elapsed < 500 + 2000, `exit came ${elapsed.toFixed(0)} ms after the signal`);
  equal(
    server.stderr.text,
    "draining 1 connection (up to 0.5 s; send the signal again to stop now)",
  );
  equal(
    server.stdout.lines.at(-2),
    "closing connection from ('127.0.0.1', " + conn.localAddr.port + ")",
  );
  equal(
    server.stdout.lines.at(-1),
    "shut down: 1 connection, 2 bytes echoed, 1 cut at the drain deadline",
  );
});

Deno.test("SIGTERM: a client still sending at the deadline gets a clean prefix and FIN, never a reset", async () => {
  await using server = await ServeProcess.start([
    "--quiet",
    "--log",
    "json",
    "--buffer-size",
    "64KiB",
    "--drain-timeout",
    "0.5",
  ]);
  const client = new StreamingClient(7, await connect(server.port), Infinity);
  await client.started;
  server.child.kill("SIGTERM");
  await client.finished;
  const status = await server.exited();
  equal(status.code, 0);
  equal(client.readError, undefined, `the echo ended with ${client.readError}, not FIN`);
  equal(client.corruptAt, -1, `echo differs at byte ${client.corruptAt}`);
  ok(client.echoed > 0 && client.echoed <= client.sent);
  const summary = JSON.parse(server.stdout.lines.at(-1)!);
  equal(summary.event, "shutdown");
  equal(summary.cut, 1);
  // Every byte the server echoed reached the client, and every byte it read was echoed or came
  // after the FIN.
  equal(summary.bytes_echoed, client.echoed);
  equal(summary.bytes_received, summary.bytes_echoed + summary.bytes_discarded);
  const draining = JSON.parse(server.stdout.lines.at(-2)!);
  equal(draining.event, "draining");
  equal(draining.open, 1);
  equal(draining.timeout_s, 0.5);
});

/** How a client reaches `serve` in the transport tests below. */
type Dial = (server: ServeProcess) => Promise<Deno.Conn>;

/**
 * A session open at SIGTERM runs on: it is echoed after the signal, and the server exits as soon
 * as its client closes, long before the drain timeout. New clients are refused.
 */
async function drainLetsTheSessionFinish(args: string[], dial: Dial): Promise<void> {
  await using server = await ServeProcess.start(["--quiet", "--drain-timeout", "60", ...args]);
  const conn = await dial(server);
  await writeAll(conn, pattern(1000));
  ok(sameBytes(await readExactly(conn, 1000), pattern(1000)));
  server.child.kill("SIGTERM");
  await server.stderr.waitFor(
    "draining 1 connection (up to 60 s; send the signal again to stop now)",
  );
  await dial(server).then(
    (late) => {
      late.close();
      throw new Error("a client connected after the signal");
    },
    () => {/* refused, as it should be */},
  );
  await writeAll(conn, pattern(5000));
  ok(sameBytes(await readExactly(conn, 5000), pattern(5000)), "no echo after the signal");
  await conn.closeWrite();
  equal((await readToEnd(conn)).length, 0);
  conn.close();
  const signalled = performance.now();
  const status = await server.exited();
  equal(status.code, 0);
  ok(performance.now() - signalled < 10_000, "exit waited for the drain deadline");
  equal(server.stdout.lines.at(-1), "shut down: 1 connection, 6,000 bytes echoed");
}

Deno.test("SIGTERM over TCP lets an open session finish, refuses new ones, exits when it ends", () =>
  drainLetsTheSessionFinish(["--host", "127.0.0.1"], (server) => connect(server.port)));

Deno.test({
  ...skipUnless(
    Deno.build.os !== "windows",
    "no Unix domain sockets on Windows",
    "SIGTERM over a Unix socket lets an open session finish",
  ),
  async fn() {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/echo.sock`;
    try {
      await drainLetsTheSessionFinish(
        ["--unix", path],
        () => Deno.connect({ transport: "unix", path }),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  ...skipUnless(
    hasProgram("openssl"),
    "needs openssl",
    "SIGTERM over TLS lets an open session finish",
  ),
  async fn() {
    await using certificates = await makeCertificates();
    const caCerts = [await Deno.readTextFile(certificates.ca)];
    await drainLetsTheSessionFinish(
      ["--host", "127.0.0.1", "--tls-cert", certificates.cert, "--tls-key", certificates.key],
      (server) => Deno.connectTls({ hostname: "127.0.0.1", port: server.port, caCerts }),
    );
  },
});
