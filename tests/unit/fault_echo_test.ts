import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { noStats } from "../../lib/server/stats.ts";
import { echoWithFaults } from "../../lib/server/_fault_echo.ts";
import { FaultPlan } from "../../lib/faults/plan.ts";
import type { FaultKind, FaultSettings } from "../../lib/faults/settings.ts";
import type { EchoShaper } from "../../lib/faults/unit.ts";
import { pattern } from "../../lib/load/pattern.ts";
import { listenTcp } from "../../lib/net/transport.ts";
import type { SocketListener } from "../../lib/net/socket_conn.ts";

/** An echo server that runs every connection through the faulted loop, as the server does. */
class FaultedServer implements AsyncDisposable {
  readonly listener: SocketListener;
  readonly stats = noStats();
  readonly faults: [FaultKind, string][] = [];
  readonly results: ("reset" | "eof" | "changed" | undefined | Error)[] = [];
  readonly #plan: FaultPlan;
  readonly #stop = new AbortController();
  readonly #done: Promise<void>[] = [];
  readonly #accepting: Promise<void>;
  #closed?: Promise<void>;

  /** Listens on a free loopback port, with connections that can be reset. */
  static async start(settings: FaultSettings, bufferSize = 1024): Promise<FaultedServer> {
    return new FaultedServer(
      await listenTcp({ hostname: "127.0.0.1", port: 0 }),
      settings,
      bufferSize,
    );
  }

  private constructor(listener: SocketListener, settings: FaultSettings, bufferSize: number) {
    this.listener = listener;
    this.#plan = new FaultPlan(settings);
    this.#accepting = this.#accept(bufferSize);
  }

  async #accept(bufferSize: number): Promise<void> {
    {
      for await (const conn of this.listener) {
        const id = ++this.stats.connections;
        const connection = {
          id,
          peer: conn.remoteAddr,
          conn,
          state: "open" as const,
          reading: false,
          lastActive: performance.now(),
          received: 0,
          echoed: 0,
        };
        this.#done.push(
          echoWithFaults({
            connection,
            faults: this.#plan.forConnection(id)!,
            bufferSize,
            stats: this.stats,
            onFault: (kind, detail) => this.faults.push([kind, detail]),
            signal: this.#stop.signal,
          }).then((result) => {
            this.results.push(result);
          }, (err) => {
            this.results.push(err);
          }).finally(() => {
            try {
              conn.close();
            } catch { /* reset */ }
          }),
        );
      }
    }
  }

  get port(): number {
    return this.listener.addr.port;
  }

  /** Stops the server and waits for every connection to end; may be called again. */
  [Symbol.asyncDispose](): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.listener.close();
    await this.#accepting;
    this.#stop.abort();
    await Promise.all(this.#done);
  }
}

/** Sends `message`, reads until the end, a reset or `limit` bytes; says how it ended. */
async function roundTrip(port: number, message: Uint8Array, limit = Infinity) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const writing = conn.write(message).catch(() => 0);
  const chunks: Uint8Array[] = [];
  const reads: number[] = [];
  let ending: "eof" | "reset" | "limit" = "limit";
  const started = performance.now();
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (let total = 0; total < limit;) {
      const n = await conn.read(buffer);
      if (n === null) {
        ending = "eof";
        break;
      }
      chunks.push(buffer.slice(0, n));
      reads.push(n);
      total += n;
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.ConnectionReset)) throw err;
    ending = "reset";
  }
  const ms = performance.now() - started;
  await writing;
  conn.close();
  const echo = new Uint8Array(reads.reduce((a, b) => a + b, 0));
  let offset = 0;
  for (const chunk of chunks) {
    echo.set(chunk, offset);
    offset += chunk.length;
  }
  return { echo, reads, ending, ms };
}

const sanitized = { sanitizeOps: true, sanitizeResources: true };

Deno.test({
  name: "reset after N bytes: the client gets exactly N bytes, then ECONNRESET",
  ...sanitized,
  async fn() {
    await using server = await FaultedServer.start({ resetAfter: 1000 }, 16);
    const message = pattern(3000);
    const { echo, ending } = await roundTrip(server.port, message);
    equal(ending, "reset");
    deepEqual(echo, message.subarray(0, 1000));
    deepEqual(server.faults, [["reset", "reset after 1,000 bytes echoed"]]);
    equal(server.stats.bytesEchoed, 1000);
    await server[Symbol.asyncDispose]();
    deepEqual(server.results, ["reset"]);
  },
});

Deno.test({
  name: "reset after a time, even on a connection that sends nothing",
  ...sanitized,
  async fn() {
    await using server = await FaultedServer.start({ resetAfterTime: 100 });
    const { echo, ending, ms } = await roundTrip(server.port, new Uint8Array(0));
    equal(ending, "reset");
    equal(echo.length, 0);
    ok(ms >= 90, `${ms} ms`);
    deepEqual(server.faults, [["reset", "reset after 100 ms"]]);
  },
});

Deno.test({
  name: "close after N bytes: exactly N bytes then a clean FIN, while the client still sends",
  ...sanitized,
  async fn() {
    await using server = await FaultedServer.start({ closeAfter: 1000 });
    const message = pattern(200_000);
    const { echo, ending } = await roundTrip(server.port, message);
    equal(ending, "eof");
    deepEqual(echo, message.subarray(0, 1000));
    deepEqual(server.faults, [["close", "closed after 1,000 bytes echoed"]]);
    await server[Symbol.asyncDispose]();
    equal(server.stats.bytesEchoed, 1000);
    equal(server.stats.bytesDiscarded, 0);
  },
});

Deno.test({
  name: "delay and jitter hold every chunk back and keep the bytes in order",
  ...sanitized,
  async fn() {
    await using server = await FaultedServer.start({ delay: 60, jitter: 30, seed: 1 }, 16);
    const small = await roundTrip(server.port, pattern(16), 16);
    ok(small.ms >= 55, `${small.ms} ms`);
    // 4,096 chunks of 16 bytes, each delayed: pipelined, so far less than 4,096 x 60 ms.
    const message = pattern(64 * 1024);
    const big = await roundTrip(server.port, message, message.length);
    deepEqual(big.echo, message);
    ok(big.ms < 20_000, `${big.ms} ms`);
  },
});

Deno.test({
  name: "slices: the echo arrives in pieces of at most N bytes, unchanged",
  ...sanitized,
  async fn() {
    await using server = await FaultedServer.start({ slice: 7, sliceDelay: 2 });
    const message = pattern(300);
    const { echo, reads } = await roundTrip(server.port, message, message.length);
    deepEqual(echo, message);
    ok(reads.every((n) => n <= 7), `${reads}`);
    ok(reads.length >= 300 / 7, `${reads.length} reads`);
  },
});

Deno.test({
  name: "the bandwidth cap paces the echo",
  ...sanitized,
  async fn() {
    await using server = await FaultedServer.start({ bandwidth: 200 * 1024 });
    const message = pattern(100 * 1024);
    const { echo, ms } = await roundTrip(server.port, message, message.length);
    deepEqual(echo, message);
    // 100 KiB at 200 KiB/s: half a second, less the first piece.
    ok(ms >= 450, `${ms} ms`);
  },
});

Deno.test({
  name: "stalls pause the echo, then it resumes",
  ...sanitized,
  async fn() {
    await using server = await FaultedServer.start({ stallEvery: 50, stallFor: 200 });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const buffer = new Uint8Array(16);
    const times: number[] = [];
    const started = performance.now();
    for (let i = 0; i < 4; i++) {
      await conn.write(pattern(16));
      equal(await conn.read(buffer), 16);
      times.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    conn.close();
    ok(times.at(-1)! >= 200, `${times}`);
    ok(
      server.faults.some(([kind, detail]) =>
        kind === "stall" && detail === "echo stalled for 200 ms"
      ),
    );
  },
});

Deno.test({
  name: "corruption flips exactly one bit per chunk, at the same places for the same seed",
  ...sanitized,
  async fn() {
    const flips = async () => {
      await using server = await FaultedServer.start({ corruptRate: 1, seed: 5 }, 64);
      const message = pattern(64);
      const { echo } = await roundTrip(server.port, message, 64);
      const differing = [...echo].map((byte, i) => byte ^ message[i]).flatMap((x, i) =>
        x === 0 ? [] : [[i, x]]
      );
      equal(differing.length, 1);
      equal(Math.log2(differing[0][1]) % 1, 0, "a single bit");
      return [differing, server.faults];
    };
    deepEqual(await flips(), await flips());
  },
});

Deno.test({
  name: "blackhole reads everything and echoes nothing",
  ...sanitized,
  async fn() {
    await using server = await FaultedServer.start({ blackhole: true });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write(pattern(5000));
    await conn.closeWrite();
    equal(await conn.read(new Uint8Array(16)), null);
    conn.close();
    await server[Symbol.asyncDispose]();
    equal(server.stats.bytesReceived, 5000);
    equal(server.stats.bytesEchoed, 0);
    deepEqual(server.faults, [["blackhole", "reading and echoing nothing"]]);
  },
});

Deno.test({
  name: "no read: the client's writes stop once the buffers are full, until the server stops",
  ...sanitized,
  async fn() {
    const server = await FaultedServer.start({ noRead: true });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    let written = 0;
    const writing = (async () => {
      for (;;) written += await conn.write(new Uint8Array(64 * 1024));
    })();
    // The kernel buffers a few MiB at most; the writes then wait for good.
    let last = -1;
    while (last !== written) {
      last = written;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    ok(written < 64 * 1024 * 1024, `${written}`);
    equal(server.stats.bytesReceived, 0);
    await server[Symbol.asyncDispose]();
    await rejects(writing);
    conn.close();
  },
});

Deno.test({
  name: "a unit's hooks: the chunk as it is read, then for each piece pause, limit, pace and end",
  ...sanitized,
  async fn() {
    const calls: string[] = [];
    const call = (name: string) => {
      calls.push(name);
      return Promise.resolve();
    };
    const shaper: EchoShaper = {
      chunk(data, offset) {
        calls.push(`chunk at ${offset}`);
        data.forEach((byte, i) => data[i] = byte - 32);
        return 0;
      },
      pause: () => call("pause"),
      pieceLimit(echoed) {
        calls.push(`limit at ${echoed}`);
        return 2;
      },
      pace: (size) => call(`pace ${size}`),
      afterPiece(echoed) {
        calls.push(`after ${echoed}`);
        return echoed >= 4 ? { how: "close" } : undefined;
      },
      betweenPieces: () => call("between"),
    };
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    using client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    using conn = await listener.accept();
    const connection = {
      id: 1,
      peer: conn.remoteAddr,
      conn,
      state: "open" as const,
      reading: false,
      lastActive: performance.now(),
      received: 0,
      echoed: 0,
    };
    const echo = echoWithFaults({
      connection,
      faults: {
        random: { next: () => 0, below: () => 0 },
        resets: false,
        shape: () => [shaper],
      },
      bufferSize: 1024,
      stats: noStats(),
      onFault: () => {},
      signal: new AbortController().signal,
    });
    // One write of six bytes: one chunk on loopback.
    await client.write(new TextEncoder().encode("abcdef"));
    const echoed = new Uint8Array(16);
    let length = 0;
    for (let n; (n = await client.read(echoed.subarray(length))) !== null;) length += n;
    equal(new TextDecoder().decode(echoed.subarray(0, length)), "ABCD");
    await client.closeWrite();
    equal(await echo, "eof");
    deepEqual(calls, [
      "chunk at 0",
      "pause",
      "limit at 0",
      "pace 2",
      "after 2",
      "between",
      "pause",
      "limit at 2",
      "pace 2",
      "after 4",
    ]);
  },
});
