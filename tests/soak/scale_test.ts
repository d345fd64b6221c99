import { deepEqual, equal, ok } from "node:assert/strict";
import { TEST_MS } from "../backstop.ts";
import { connect, readExactly, residentBytes, ServeProcess, writeAll } from "../helpers.ts";

const CONNECTIONS = 5000;
const BATCH = 250;
const MESSAGE = 1024;
const MiB = 1024 * 1024;

/** Connection `id`'s message for round `round`: different for every connection and round. */
function message(id: number, round: number): Uint8Array {
  const bytes = new Uint8Array(MESSAGE);
  for (let i = 0; i < MESSAGE; i++) bytes[i] = (i * 131 + id * 7 + round * 13) % 251;
  return bytes;
}

async function verifiedRoundTrip(conn: Deno.Conn, id: number, round: number): Promise<void> {
  const bytes = message(id, round);
  // Thousands of echoes at once on a busy machine: the soak's own time scale.
  const echo = readExactly(conn, bytes.length, TEST_MS / 4);
  await writeAll(conn, bytes);
  deepEqual(await echo, bytes);
}

Deno.test("soak: 5,000 concurrent connections on one server, each echo verified", async () => {
  await using server = await ServeProcess.start(["--quiet"], { fileLimit: 20_000 });
  const pid = server.child.pid;
  const idleRss = residentBytes(pid);
  const started = performance.now();

  const conns: Deno.TcpConn[] = [];
  const errors: string[] = [];
  // Connect in batches so the listen backlog never overflows into SYN retries.
  for (let first = 0; first < CONNECTIONS; first += BATCH) {
    const batch = await Promise.all(
      Array.from({ length: BATCH }, async (_, i) => {
        const conn = await connect(server.port);
        await verifiedRoundTrip(conn, first + i, 0).catch((err) => errors.push(String(err)));
        return conn;
      }),
    );
    conns.push(...batch);
  }
  const heldRss = residentBytes(pid);

  // Every connection is still open and served: a second round on all of them at once.
  await Promise.all(
    conns.map((conn, id) =>
      verifiedRoundTrip(conn, id, 1).catch((err) => errors.push(String(err)))
    ),
  );
  const peakRss = Math.max(heldRss, residentBytes(pid));
  const seconds = (performance.now() - started) / 1000;
  for (const conn of conns) conn.close();

  const status = await server.stop("SIGTERM", TEST_MS / 4);
  equal(status.code, 0);
  deepEqual(errors, []);
  equal(
    server.stdout.lines.at(-1),
    `shut down: ${new Intl.NumberFormat("en-US").format(CONNECTIONS)} connections, ${
      new Intl.NumberFormat("en-US").format(CONNECTIONS * MESSAGE * 2)
    } bytes echoed`,
  );
  console.log(
    `${CONNECTIONS} connections held at once, ${CONNECTIONS * 2} verified round trips in ` +
      `${seconds.toFixed(1)} s, 0 errors; server RSS ${(idleRss / MiB).toFixed(1)} MiB idle, ` +
      `${(peakRss / MiB).toFixed(1)} MiB with all open ` +
      `(${((peakRss - idleRss) / CONNECTIONS / 1024).toFixed(1)} KiB per connection)`,
  );
  // Bounded: a few KiB per connection, nowhere near a buffer per byte in flight.
  ok(peakRss - idleRss < 256 * MiB, `RSS grew by ${(peakRss - idleRss) / MiB} MiB`);
});
