import { equal, rejects } from "node:assert/strict";
import {
  connect,
  normalisePeers,
  readExactly,
  readToEnd,
  ServeProcess,
  writeAll,
} from "../helpers.ts";

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`${signal} stops serve once its open client closes: a summary, exit 0`, async () => {
    await using server = await ServeProcess.start(["--host", "127.0.0.1"]);
    const conn = await connect(server.port);
    await writeAll(conn, new TextEncoder().encode("hi"));
    equal((await readExactly(conn, 2)).length, 2);
    server.child.kill(signal);
    await server.stderr.waitFor("draining 1 connection");
    conn.close();
    const status = await server.exited();
    equal(status.code, 0);
    equal(
      server.stderr.text,
      "draining 1 connection (up to 5 s; send the signal again to stop now)",
    );
    equal(
      normalisePeers(server.stdout.lines.slice(-4).join("\n")),
      "received b''\nno data from ('127.0.0.1', PORT)\nClosing current connection\n" +
        "shut down: 1 connection, 2 bytes echoed",
    );
  });
}

Deno.test("after a signal serve accepts no one; a second signal ends it at once, exit 130", async () => {
  await using server = await ServeProcess.start(["--host", "127.0.0.1", "--drain-timeout", "60"]);
  const conn = await connect(server.port);
  await server.stdout.waitFor("connection from");
  server.child.kill("SIGTERM");
  await server.stderr.waitFor(
    "draining 1 connection (up to 60 s; send the signal again to stop now)",
  );
  // Shutting down means accepting no one new.
  await rejects(connect(server.port), Deno.errors.ConnectionRefused);
  const status = await server.stop("SIGTERM");
  equal(status.code, 130);
  // The client sees its connection end; it was owed no echo.
  equal((await readToEnd(conn).catch(() => new Uint8Array())).length, 0);
  conn.close();
  equal(
    server.stdout.lines.at(-1),
    "shut down: 1 connection, 0 bytes echoed, 1 cut by the second signal",
  );
});

Deno.test("SIGTERM right after the start-up line still ends with a summary and exit 0", async () => {
  await using server = await ServeProcess.start(["--quiet"]);
  const status = await server.stop("SIGTERM");
  equal(status.code, 0);
  equal(server.stderr.text, "");
  equal(server.stdout.lines.at(-1), "shut down: 0 connections, 0 bytes echoed");
});
