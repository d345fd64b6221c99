import { equal, ok } from "node:assert/strict";
import { connect, ServeProcess } from "../helpers.ts";

const CLIENTS = 100;
const PIECE = 16 * 1024;
/** Bytes a client lets go unanswered before it waits for its echo, like a real streaming peer. */
const WINDOW = 64 * 1024;

/** Byte `offset` of client `id`'s endless stream: differs per client, so mix-ups show. */
function streamByte(id: number, offset: number): number {
  return ((offset * 131 + 7) % 251) ^ (id & 0xff);
}

/** A client that writes its stream until the server ends the echo, checking every byte back. */
class StreamingClient {
  sent = 0;
  echoed = 0;
  /** Offset of the first echoed byte that differed from the stream, or -1. */
  corruptAt = -1;
  /** Resolves when the first echoed bytes arrive. */
  readonly started: Promise<void>;
  readonly finished: Promise<void>;
  readonly #conn: Deno.TcpConn;
  #ended = false;
  #onStarted!: () => void;
  #progress = Promise.withResolvers<void>();

  constructor(readonly id: number, conn: Deno.TcpConn) {
    this.#conn = conn;
    this.started = new Promise((resolve) => this.#onStarted = resolve);
    const writing = this.#write();
    this.finished = this.#read().finally(async () => {
      this.#ended = true;
      this.#progress.resolve();
      await writing;
      conn.close();
    });
  }

  async #write(): Promise<void> {
    const piece = new Uint8Array(PIECE);
    try {
      while (!this.#ended) {
        if (this.sent - this.echoed >= WINDOW) {
          await this.#progress.promise;
          continue;
        }
        for (let i = 0; i < PIECE; i++) piece[i] = streamByte(this.id, this.sent + i);
        let written = 0;
        while (written < PIECE) written += await this.#conn.write(piece.subarray(written));
        this.sent += PIECE;
      }
    } catch { /* the connection closed under a write in flight */ }
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

Deno.test("SIGTERM with 100 clients mid-stream: every echo whole and uncorrupted, exit 0", async () => {
  await using server = await ServeProcess.start([
    "--quiet",
    "--log",
    "json",
    "--drain-timeout",
    "30",
  ]);
  const clients: StreamingClient[] = [];
  for (let id = 0; id < CLIENTS; id++) {
    clients.push(new StreamingClient(id, await connect(server.port)));
  }
  await Promise.all(clients.map((client) => client.started));

  const status = await server.stop("SIGTERM");
  await Promise.all(clients.map((client) => client.finished));

  equal(status.code, 0, server.stderr.text);
  equal(server.stderr.text, "");
  const summary = JSON.parse(server.stdout.lines.at(-1) ?? "");
  equal(summary.event, "shutdown");
  equal(summary.connections, CLIENTS);
  for (const client of clients) {
    equal(client.corruptAt, -1, `client ${client.id}: echo differs at byte ${client.corruptAt}`);
    ok(client.echoed <= client.sent, `client ${client.id} got more than it sent`);
  }
  // Every byte the server read was either echoed or arrived after its shutdown notice...
  equal(summary.bytes_received, summary.bytes_echoed + summary.bytes_discarded);
  // ...and every byte it echoed reached its client.
  const echoed = clients.reduce((sum, client) => sum + client.echoed, 0);
  equal(echoed, summary.bytes_echoed);
  console.log(
    `${CLIENTS} clients: ${echoed} bytes echoed, ${summary.bytes_discarded} sent after the ` +
      "shutdown notice, 0 lost",
  );
});
