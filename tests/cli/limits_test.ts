import { deepEqual, equal, match, ok } from "node:assert/strict";
import {
  connect,
  pattern,
  peerEnd,
  readExactly,
  runCli,
  ServeProcess,
  skipUnless,
  writeAll,
} from "../helpers.ts";

/** Sends `text` on `conn` and checks that exactly it comes back. */
async function roundTrip(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  await writeAll(conn, bytes);
  deepEqual(await readExactly(conn, bytes.length), bytes);
}

Deno.test("serve --idle-timeout closes a silent connection with one log line", async () => {
  await using server = await ServeProcess.start(["--idle-timeout", "0.2"]);
  using silent = await connect(server.port);
  await roundTrip(silent, "hello");
  equal(await peerEnd(silent), "eof");
  match(
    await server.stdout.waitFor("closing idle connection"),
    /^closing idle connection from \('127\.0\.0\.1', \d+\): no byte in or out for 0\.2 s$/,
  );
  // The server goes on serving.
  using next = await connect(server.port);
  await roundTrip(next, "still there");
});

Deno.test("serve --idle-timeout keeps a connection that is never silent that long", async () => {
  await using server = await ServeProcess.start(["--idle-timeout", "1"]);
  using conn = await connect(server.port);
  // A byte every 0.4 s for three timeouts' worth: never silent for a timeout, but silent for a
  // fifth of one when the server's first check comes, which a timer at a fraction of it would cut.
  const started = performance.now();
  for (let i = 0; performance.now() - started < 3000; i++) {
    await roundTrip(conn, String(i % 10));
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
  conn.close();
  await server.stdout.waitFor("Closing current connection");
  equal(server.stdout.lines.filter((line) => line.includes("idle")).length, 0, server.stdout.text);
});

Deno.test("serve --idle-timeout also frees a connection stuck on a client that never reads", async () => {
  await using server = await ServeProcess.start(["--idle-timeout", "0.2", "-b", "64KiB"]);
  using stuck = await connect(server.port);
  // Far more than the socket buffers hold: the server's writes stall once they are full.
  const writing = writeAll(stuck, pattern(16 * 1024 * 1024)).then(() => "written", (err) => err);
  await server.stdout.waitFor("closing idle connection");
  ok(await writing instanceof Error, "the server closed the stuck connection");
});

Deno.test("serve --max-connections turns away connections beyond the limit", async () => {
  await using server = await ServeProcess.start(["--max-connections", "2"]);
  const first = await connect(server.port);
  using second = await connect(server.port);
  await roundTrip(first, "one");
  await roundTrip(second, "two");

  using third = await connect(server.port);
  const end = await peerEnd(third);
  ok(end === "eof" || end === "ConnectionReset", `third connection ended with ${end}`);
  match(
    await server.stdout.waitFor("turned away"),
    /^turned away connection from \('127\.0\.0\.1', \d+\): 2 connections already open$/,
  );

  // Once one closes there is room again.
  first.close();
  await server.stdout.waitFor("Closing current connection");
  using fourth = await connect(server.port);
  await roundTrip(fourth, "four");
  await roundTrip(second, "two again");

  second.close();
  fourth.close();
  await server.stdout.waitForCount(/Closing current connection/, 3);
  const status = await server.stop("SIGTERM");
  equal(status.code, 0);
  match(server.stdout.text, /shut down: 3 connections, 19 bytes echoed, 1 turned away/);
});

Deno.test("serve --drain-timeout bounds shutdown while a client never reads", async () => {
  await using server = await ServeProcess.start(["--drain-timeout", "0.3", "--quiet"]);
  const stuck = await connect(server.port);
  const writing = writeAll(stuck, pattern(16 * 1024 * 1024)).catch((err) => err);
  await readExactly(stuck, 1); // the server has started echoing
  const status = await server.stop("SIGTERM");
  equal(status.code, 0);
  await server.stdout.waitFor(
    /^shut down: 1 connection, [\d,]+ bytes echoed, 1 cut at the drain deadline/,
  );
  await server.stderr.waitFor("draining 1 connection (up to 0.3 s;");
  stuck.close();
  await writing;
});

Deno.test("serve: a second signal stops at once, without waiting for the drain, exit 130", async () => {
  await using server = await ServeProcess.start(["--drain-timeout", "600", "--quiet"]);
  const stuck = await connect(server.port);
  const writing = writeAll(stuck, pattern(16 * 1024 * 1024)).catch((err) => err);
  await readExactly(stuck, 1);
  server.child.kill("SIGTERM");
  await server.stderr.waitFor("draining 1 connection (up to 600 s;");
  const status = await server.stop("SIGTERM");
  equal(status.code, 130);
  match(
    server.stdout.text,
    /shut down: 1 connection, [\d,]+ bytes echoed, 1 cut by the second signal/,
  );
  stuck.close();
  await writing;
});

Deno.test("serve rejects bad limit values as usage errors", async () => {
  for (
    const [flag, value, message] of [
      [
        "--idle-timeout",
        "0",
        "--idle-timeout must be a duration from 1ms to 24.8 days, not '0'",
      ],
      [
        "--idle-timeout",
        "soon",
        "--idle-timeout must be a duration such as 250ms, 1.5s, 2m or 1h (a bare number is in " +
        "seconds), not 'soon'",
      ],
      ["--max-connections", "0", "--max-connections must be a whole number from 1 to 1000000"],
      [
        "--drain-timeout",
        "-1",
        "--drain-timeout must be a duration from 0 to 24.8 days, not '-1'",
      ],
    ]
  ) {
    const result = await runCli(["serve", "--port", "0", `${flag}=${value}`]);
    equal(result.code, 2, result.stderr);
    ok(result.stderr.startsWith(`error: ${message}`), result.stderr);
    equal(result.stderr.trim().split("\n").length, 1);
  }
});

Deno.test({
  ...skipUnless(
    Deno.build.os === "linux",
    "serve --workers needs Linux",
    "serve --workers passes --idle-timeout and --max-connections on to every worker",
  ),
  async fn() {
    await using server = await ServeProcess.start(
      ["--workers", "2", "--idle-timeout", "0.2", "--max-connections", "1"],
      { permissions: ["-A", "--unstable-net"] },
    );
    using silent = await connect(server.port);
    await roundTrip(silent, "hello");
    equal(await peerEnd(silent), "eof");
    match(
      await server.stdout.waitFor("closing idle connection"),
      /^\[w[12] #1\] closing idle connection from \('127\.0\.0\.1', \d+\): no byte in or out for 0\.2 s$/,
    );
    // One connection per worker: a third one held at once finds both full.
    const held = [
      await connect(server.port),
      await connect(server.port),
      await connect(server.port),
    ];
    const ends = await Promise.all(held.map(async (conn) => {
      await writeAll(conn, new TextEncoder().encode("x")).catch(() => {});
      return await peerEnd(conn);
    }));
    for (const conn of held) conn.close();
    ok(ends.filter((end) => end === "data").length <= 2, `ends: ${ends}`);
  },
});
