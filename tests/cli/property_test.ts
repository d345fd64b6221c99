import { deepEqual, equal } from "node:assert/strict";
import fc from "fast-check";
import { sendAndVerify, startEchoServer } from "../../lib/mod.ts";
import { connect, readToEnd, runCli, ServeProcess, within } from "../helpers.ts";

/** Reads and writes per byte stream are capped, so that a 1 MiB message never meets a 1 B buffer. */
const MAX_STEPS = 20_000;

/** `size` bytes from a seeded generator (mulberry32): any byte value, reproducible from the seed. */
function randomBytes(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let state = seed >>> 0;
  for (let i = 0; i < size; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    bytes[i] = (t ^ (t >>> 14)) & 0xff;
  }
  return bytes;
}

/** A size from 0 B to 1 MiB, small ones as likely as large ones. */
const size = fc.oneof(
  fc.integer({ min: 0, max: 64 }),
  fc.integer({ min: 0, max: 64 * 1024 }),
  fc.integer({ min: 0, max: 1024 * 1024 }),
);
const bufferSize = fc.oneof(
  fc.integer({ min: 1, max: 64 }),
  fc.integer({ min: 1, max: 64 * 1024 }),
);

/** One echo exchange: what to send, how to cut it into writes, and when to half-close. */
const exchange = fc.record({
  size,
  seed: fc.integer(),
  chunks: fc.array(fc.integer({ min: 1, max: 256 * 1024 }), { minLength: 1, maxLength: 8 }),
  serverBuffer: bufferSize,
  clientBuffer: bufferSize,
  halfClose: fc.constantFrom("after-sending" as const, "after-echo" as const),
});
type Exchange = typeof exchange extends fc.Arbitrary<infer T> ? T : never;

/** A buffer size no smaller than `size / MAX_STEPS`. */
function bounded(buffer: number, size: number): number {
  return Math.max(buffer, Math.ceil(size / MAX_STEPS));
}

/**
 * Sends the message in the given write sizes (cycled) while reading the echo with the client's
 * buffer, half-closing either right after the last write or only once the whole echo is back;
 * returns everything that came back before the server closed.
 */
async function echoThrough(port: number, run: Exchange, message: Uint8Array): Promise<Uint8Array> {
  using conn = await connect(port);
  const chunks = run.chunks.map((chunk) => bounded(chunk, message.length));
  const buffer = new Uint8Array(bounded(run.clientBuffer, message.length));
  const received = new Uint8Array(message.length);
  let got = 0;
  const reading = (async () => {
    while (got < message.length) {
      const n = await conn.read(buffer);
      if (n === null) return;
      received.set(buffer.subarray(0, Math.min(n, message.length - got)), got);
      got += n;
    }
  })();
  for (let sent = 0, i = 0; sent < message.length; i++) {
    const end = Math.min(message.length, sent + chunks[i % chunks.length]);
    while (sent < end) sent += await conn.write(message.subarray(sent, end));
  }
  if (run.halfClose === "after-sending") await conn.closeWrite();
  await within(`the echo of ${message.length} bytes`, reading, {
    seen: () => `${got} bytes came back`,
  });
  if (run.halfClose === "after-echo") await conn.closeWrite();
  // After the echo the server has nothing more to say: it closes.
  const extra = await readToEnd(conn);
  equal(got, message.length, "the echo came back whole");
  equal(extra.length, 0, "nothing after the echo");
  return received;
}

Deno.test("property: the in-process server echoes any message, chunking and half-close", async () => {
  await fc.assert(
    fc.asyncProperty(exchange, async (run) => {
      const message = randomBytes(run.size, run.seed);
      await using server = await startEchoServer({
        hostname: "127.0.0.1",
        port: 0,
        bufferSize: bounded(run.serverBuffer, run.size),
      });
      deepEqual(await echoThrough(server.addr.port, run, message), message);
    }),
    { numRuns: 40 },
  );
});

Deno.test("property: tcpecho serve echoes any message, chunking and half-close", async () => {
  await fc.assert(
    fc.asyncProperty(exchange, async (run) => {
      const message = randomBytes(run.size, run.seed);
      const buffer = bounded(run.serverBuffer, run.size);
      await using server = await ServeProcess.start(["--quiet", "--buffer-size", String(buffer)]);
      deepEqual(await echoThrough(server.port, run, message), message);
      equal((await server.stop("SIGTERM")).code, 0);
    }),
    { numRuns: 4 },
  );
});

Deno.test("property: sendAndVerify checks any message with any buffer size", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0, bufferSize: 4096 });
  await fc.assert(
    fc.asyncProperty(size, fc.integer(), bufferSize, async (length, seed, buffer) => {
      const message = randomBytes(length, seed);
      const result = await sendAndVerify({
        hostname: "127.0.0.1",
        port: server.addr.port,
        message,
        bufferSize: bounded(buffer, length),
      });
      equal(result.bytesReceived, length);
    }),
    { numRuns: 40 },
  );
});

Deno.test("property: tcpecho send checks any file with any buffer sizes", async () => {
  const path = await Deno.makeTempFile({ prefix: "tcpecho-property-" });
  try {
    await fc.assert(
      fc.asyncProperty(size, fc.integer(), bufferSize, bufferSize, async (length, seed, a, b) => {
        await using server = await startEchoServer({
          hostname: "127.0.0.1",
          port: 0,
          bufferSize: bounded(a, length),
        });
        await Deno.writeFile(path, randomBytes(length, seed));
        const result = await runCli([
          "send",
          "--quiet",
          "--port",
          String(server.addr.port),
          "--host",
          "127.0.0.1",
          "--buffer-size",
          String(bounded(b, length)),
          "--file",
          path,
        ]);
        equal(result.stderr, "");
        equal(result.code, 0);
        equal(server.stats.bytesEchoed, length);
      }),
      { numRuns: 4 },
    );
  } finally {
    await Deno.remove(path);
  }
});
