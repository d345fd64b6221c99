import { deepEqual, equal, ok } from "node:assert/strict";
import {
  connect,
  pattern,
  readExactly,
  residentBytes,
  ServeProcess,
  within,
  writeAll,
} from "../helpers.ts";
import { TEST_MS } from "../backstop.ts";

const MiB = 1024 * 1024;
const HOG_BYTES = 256 * MiB;
const OTHERS = 4;
const ROUND_TRIPS = 500;
const ROUNDS = 3;
const SLOW_BYTES = 8 * MiB;

/** Samples a process's RSS until stopped; keeps the highest value. */
class PeakRss {
  peak: number;
  readonly #timer: ReturnType<typeof setInterval>;
  constructor(readonly pid: number) {
    this.peak = residentBytes(pid);
    this.#timer = setInterval(() => this.peak = Math.max(this.peak, residentBytes(pid)), 20);
  }
  stop(): number {
    clearInterval(this.#timer);
    return this.peak = Math.max(this.peak, residentBytes(this.pid));
  }
}

/** `OTHERS` clients doing small round trips at once; returns every latency in milliseconds. */
async function others(port: number): Promise<number[]> {
  return (await Promise.all(Array.from({ length: OTHERS }, () => pingPong(port)))).flat();
}

/** Small round trips, each timed; returns the latencies in milliseconds. */
async function pingPong(port: number): Promise<number[]> {
  using conn = await connect(port);
  const ping = pattern(64);
  const latencies: number[] = [];
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const started = performance.now();
    await writeAll(conn, ping);
    deepEqual(await readExactly(conn, ping.length), ping);
    latencies.push(performance.now() - started);
  }
  return latencies;
}

/** Sends `bytes` and reads the echo slowly: small reads with a pause between them. */
async function slowReader(port: number, bytes: Uint8Array): Promise<number> {
  using conn = await connect(port);
  const writing = writeAll(conn, bytes);
  const buffer = new Uint8Array(16 * 1024);
  let received = 0;
  let firstDifference = -1;
  while (received < bytes.length) {
    // The pause is the point: this reader is slower than the writer, not a synchronisation.
    await new Promise((resolve) => setTimeout(resolve, 1));
    const n = await conn.read(buffer);
    if (n === null) break;
    for (let i = 0; i < n && firstDifference < 0; i++) {
      if (buffer[i] !== bytes[received + i]) firstDifference = received + i;
    }
    received += n;
  }
  await writing;
  equal(firstDifference, -1, "the slow reader's echo is unchanged");
  return received;
}

function percentile(values: number[], p: number): number {
  const sorted = values.toSorted((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

Deno.test("soak: a client that writes 256 MiB and never reads is not buffered by the server", async () => {
  await using server = await ServeProcess.start(["--quiet"]);
  // The same clients without the hog: the reference for the latencies measured with it.
  const reference = await others(server.port);
  const baseline = residentBytes(server.child.pid);
  const rss = new PeakRss(server.child.pid);

  const hog = await connect(server.port);
  let hogWritten = 0;
  const block = new Uint8Array(MiB).fill(0x68);
  const firstWrite = Promise.withResolvers<void>();
  const hogging = (async () => {
    while (hogWritten < HOG_BYTES) {
      hogWritten += await hog.write(block);
      firstWrite.resolve();
    }
  })().catch(() => {});
  // The others start once the hog is pushing: from then on it only fills buffers.
  await firstWrite.promise;

  // Rounds of the same clients: the first runs while the hog still fills the socket buffers, the
  // later ones once it is stuck.
  const rounds: number[][] = [];
  for (let round = 0; round < ROUNDS; round++) rounds.push(await others(server.port));
  const slowReceived = await within(
    "the slow reader's whole echo",
    slowReader(server.port, pattern(SLOW_BYTES)),
    { ms: TEST_MS / 2 },
  );
  const peak = rss.stop();
  const stuckAt = hogWritten;
  hog.close();
  await hogging;

  const status = await server.stop("SIGTERM", TEST_MS / 4);
  equal(status.code, 0);
  const growth = peak - baseline;
  const ms = (values: number[], p: number) => `${percentile(values, p).toFixed(2)} ms`;
  console.log(
    `hog stuck after writing ${(stuckAt / MiB).toFixed(1)} of 256 MiB; server RSS grew by ` +
      `${(growth / MiB).toFixed(1)} MiB (baseline ${(baseline / MiB).toFixed(1)} MiB); ` +
      `${OTHERS} other clients, ${OTHERS * ROUND_TRIPS} round trips a round; with the hog: p99 ` +
      `${rounds.map((round) => ms(round, 0.99)).join(", then ")}; without it: p99 ` +
      `${ms(reference, 0.99)}; ` +
      `slow reader got ${slowReceived} of ${SLOW_BYTES} bytes`,
  );
  ok(stuckAt < HOG_BYTES, "the hog could not push its 256 MiB into the server");
  ok(growth <= 32 * MiB, `server RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  for (const round of rounds) equal(round.length, OTHERS * ROUND_TRIPS);
  equal(slowReceived, SLOW_BYTES);
});
