import { equal, ok, rejects } from "node:assert/strict";
import {
  connect,
  normalisePeers,
  pattern,
  readExactly,
  readToEnd,
  sameBytes,
  ServeProcess,
  writeAll,
} from "../helpers.ts";

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`${signal} stops serve: idle clients get end of stream, a summary, exit 0`, async () => {
    await using server = await ServeProcess.start(["--host", "127.0.0.1"]);
    const conn = await connect(server.port);
    await writeAll(conn, new TextEncoder().encode("hi"));
    equal((await readExactly(conn, 2)).length, 2);
    server.child.kill(signal);
    // The server sends FIN to a client idle in read; the client sees the end and closes.
    equal((await readToEnd(conn)).length, 0);
    conn.close();
    const status = await server.exited();
    equal(status.code, 0);
    equal(server.stderr.text, "");
    equal(
      normalisePeers(server.stdout.lines.slice(-2).join("\n")),
      "closing connection from ('127.0.0.1', PORT)\nshut down: 1 connection, 2 bytes echoed",
    );
  });
}

Deno.test("SIGTERM lets an echo in flight finish before closing", async () => {
  await using server = await ServeProcess.start(["--quiet", "--host", "127.0.0.1"]);
  const conn = await connect(server.port);
  const sent = pattern(4 * 1024 * 1024);
  // Send without reading: the server fills our receive buffer and blocks in a write.
  const writing = writeAll(conn, sent).catch(() => {});
  equal((await readExactly(conn, 1024)).length, 1024);
  server.child.kill("SIGTERM");
  const rest = await readToEnd(conn);
  await writing;
  conn.close();
  const status = await server.exited();
  equal(status.code, 0);
  // Everything the server read came back whole and in order, then the stream ended cleanly.
  const echoed = 1024 + rest.length;
  ok(sameBytes(rest, sent.subarray(1024, echoed)), "the echo differs from what was sent");
  // What we kept sending after the end of the echo was read and dropped, and is counted apart.
  const format = (n: number) => new Intl.NumberFormat("en-US").format(n);
  equal(
    server.stdout.lines.at(-1),
    `shut down: 1 connection, ${format(echoed)} bytes echoed, ${
      format(sent.length - echoed)
    } bytes sent after the shutdown notice dropped`,
  );
});

Deno.test("after a signal serve accepts no one; a second signal ends it at once, exit 130", async () => {
  await using server = await ServeProcess.start(["--host", "127.0.0.1", "--drain-timeout", "60"]);
  const conn = await connect(server.port);
  await server.stdout.waitFor("connection from");
  server.child.kill("SIGTERM");
  // The end of stream shows the first signal was handled; this client then stays open.
  equal((await readToEnd(conn)).length, 0);
  // Shutting down means accepting no one new.
  await rejects(connect(server.port), Deno.errors.ConnectionRefused);
  const status = await server.stop("SIGTERM");
  conn.close();
  equal(status.code, 130);
  equal(server.stdout.lines.at(-1), "shut down: 1 connection, 0 bytes echoed");
});

Deno.test("SIGTERM right after the start-up line still ends with a summary and exit 0", async () => {
  await using server = await ServeProcess.start(["--quiet"]);
  const status = await server.stop("SIGTERM");
  equal(status.code, 0);
  equal(server.stdout.lines.at(-1), "shut down: 0 connections, 0 bytes echoed");
});
