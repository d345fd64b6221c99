import { deepEqual, equal, match } from "node:assert/strict";
import {
  connect,
  hasProgram,
  pattern,
  readExactly,
  readToEnd,
  runCli,
  ServeProcess,
  skipUnless,
  writeAll,
} from "../helpers.ts";
import { makeCertificates } from "../certificates.ts";

const UNSTABLE_NET = ["-A", "--unstable-net"];
const CLIENTS = 24;
const HELD = 4;
const SIZE = 2000;

/**
 * Starts `serve --workers 2` with `args`, has clients reach it through `open`, and checks that
 * connections went to both workers and every byte came back, also for connections still open at
 * SIGTERM.
 */
async function spreadsAndLosesNothing(
  args: string[],
  open: (port: number) => Promise<Deno.Conn>,
): Promise<void> {
  await using server = await ServeProcess.start(
    ["--host", "127.0.0.1", "--workers", "2", "--log", "json", ...args],
    { permissions: UNSTABLE_NET },
  );
  // Each client sends its own bytes: a reply that went to the wrong client would show.
  const message = (client: number) => pattern(SIZE + client);
  await Promise.all(Array.from({ length: CLIENTS }, async (_, client) => {
    using conn = await open(server.port);
    await writeAll(conn, message(client));
    await conn.closeWrite();
    deepEqual(await readToEnd(conn), message(client));
  }));
  // Connections still open at SIGTERM: one drain over all workers lets each run on until its
  // client closes it.
  const held = await Promise.all(Array.from({ length: HELD }, async () => {
    const conn = await open(server.port);
    await writeAll(conn, pattern(SIZE));
    deepEqual(await readExactly(conn, SIZE), pattern(SIZE));
    return conn;
  }));
  await server.stdout.waitForCount(/"event":"connected"/, CLIENTS + HELD);
  server.child.kill("SIGTERM");
  await server.stderr.waitFor("draining");
  for (const conn of held) {
    await writeAll(conn, pattern(SIZE));
    deepEqual(await readExactly(conn, SIZE), pattern(SIZE));
    await conn.closeWrite();
    equal(await conn.read(new Uint8Array(1)), null);
    conn.close();
  }
  equal((await server.exited()).code, 0);
  equal(
    server.stderr.text,
    `draining ${HELD} connections (up to 5 s; send the signal again to stop now)`,
  );

  const events = server.stdout.lines.map((line) => JSON.parse(line));
  deepEqual(events[0].workers, 2);
  const connected = events.filter((event) => event.event === "connected");
  const perWorker = [1, 2].map((worker) => connected.filter((e) => e.worker === worker).length);
  equal(perWorker[0] + perWorker[1], CLIENTS + HELD);
  for (const count of perWorker) equal(count > 0, true, `connections per worker: ${perWorker}`);
  // Each worker's lines arrive in its own order: a connection's story starts with
  // `connected` and ends with `closed`, with the echoed bytes in between.
  const stories = Map.groupBy(
    events.filter((event) => event.conn !== undefined),
    (event) => `${event.worker}#${event.conn}`,
  );
  equal(stories.size, CLIENTS + HELD);
  for (const story of stories.values()) {
    equal(story[0].event, "connected");
    equal(story.at(-1).event, "closed");
  }
  deepEqual(events.filter((event) => event.event === "draining").map((e) => e.open), [HELD]);
  const shutdowns = events.filter((event) => event.event === "shutdown");
  deepEqual(shutdowns.map(({ connections, bytes_echoed }) => ({ connections, bytes_echoed })), [{
    connections: CLIENTS + HELD,
    bytes_echoed: CLIENTS * SIZE + (CLIENTS * (CLIENTS - 1)) / 2 + 2 * HELD * SIZE,
  }]);
  equal(events.at(-1).event, "shutdown");
}

Deno.test({
  name: "serve --workers 2 spreads connections over both workers and loses nothing",
  ignore: Deno.build.os !== "linux",
  fn: () => spreadsAndLosesNothing([], (port) => connect(port)),
});

Deno.test({
  ...skipUnless(
    Deno.build.os === "linux" && hasProgram("openssl"),
    "needs Linux and openssl",
    "serve --workers 2 over TLS spreads connections over both workers and loses nothing",
  ),
  async fn() {
    await using certificates = await makeCertificates();
    const caCerts = [await Deno.readTextFile(certificates.ca)];
    await spreadsAndLosesNothing(
      ["--tls-cert", certificates.cert, "--tls-key", certificates.key],
      (port) => Deno.connectTls({ hostname: "127.0.0.1", port, caCerts }),
    );
  },
});

Deno.test("serve --workers explains what it needs", async () => {
  const noFlag = await runCli(["serve", "--port", "0", "--workers", "2"], {
    permissions: ["-A", "--no-config"],
  });
  equal(noFlag.code, 2);
  match(noFlag.stderr, /^error: --workers needs the --unstable-net flag/);
  const zero = await runCli(["serve", "--workers", "0"]);
  equal(zero.code, 2);
  equal(zero.stderr, "error: --workers must be a whole number from 1 to 256, not '0'\n");
  const unix = await runCli(["serve", "--unix", "echo.sock", "--workers", "2"]);
  equal(unix.code, 2);
  equal(
    unix.stderr,
    "error: --workers serves TCP and TLS only, not --unix (see 'tcpecho serve --help')\n",
  );
});
