import { equal, match } from "node:assert/strict";
import { pattern, readExactly, readToEnd, runCli, TcpFixture, writeAll } from "../helpers.ts";

/**
 * Runs `tcpecho send --timeout 1` against `port` and checks it failed with one clear line and exit
 * 1 on its own, long before the deadline of `runCli` that would kill a hung client.
 */
async function sendFails(port: number, message: string | Uint8Array, expected: RegExp) {
  const result = await runCli(
    ["send", "--quiet", "--host", "127.0.0.1", "--port", String(port), "--timeout", "1", "-"],
    { stdin: message },
  );
  equal(result.code, 1);
  equal(result.stdout, "");
  match(result.stderr, /^error: [^\n]+\n$/);
  match(result.stderr, expected);
}

Deno.test("send against a server that floods garbage: a clear mismatch, exit 1", async () => {
  await using server = new TcpFixture(async (conn) => {
    const garbage = new Uint8Array(64 * 1024).fill(0xaa);
    for (;;) await writeAll(conn, garbage);
  });
  await sendFails(server.port, "hello", /the echo differs from what was sent at byte 0/);
});

Deno.test("send against a server that sends more than it was given: exit 1", async () => {
  await using server = new TcpFixture(async (conn, closing) => {
    const echo = await readExactly(conn, 5);
    await writeAll(conn, echo);
    await writeAll(conn, new TextEncoder().encode("and more"));
    await closing;
  });
  await sendFails(server.port, "hello", /the server sent 8 more bytes than it was sent/);
});

Deno.test("send against a server that stalls mid-echo: times out, exit 1", async () => {
  await using server = new TcpFixture(async (conn, closing) => {
    const echo = await readExactly(conn, 10);
    await writeAll(conn, echo.subarray(0, 4));
    await closing;
  });
  await sendFails(
    server.port,
    "0123456789",
    /^error: timed out after 1 s waiting for the rest of the echo: 4 of 10 bytes came back$/m,
  );
});

Deno.test("send against a server that neither reads nor replies: times out while writing", async () => {
  // 32 MiB cannot fit in the socket buffers, so the client is stuck in a write when time runs out;
  // standard input is sent as it is read, so only what was read so far is owed.
  await using server = new TcpFixture((_conn, closing) => closing);
  await sendFails(
    server.port,
    pattern(32 * 1024 * 1024),
    /timed out after 1 s without a reply: 0 of \d+ bytes came back/,
  );
});

Deno.test("send against a server that resets mid-echo: a clear error, exit 1", async () => {
  await using server = new TcpFixture(async (conn) => {
    // Echo a little, then close with the rest unread: the kernel resets the connection.
    await writeAll(conn, await readExactly(conn, 100));
    conn.close();
  });
  await sendFails(
    server.port,
    pattern(1024 * 1024),
    /connection reset by peer|the peer closed the connection|the server closed the connection: \d+ of \d+ bytes came back/,
  );
});

Deno.test("send against a server that sends one byte more than it was given: exit 1", async () => {
  await using server = new TcpFixture(async (conn, closing) => {
    await writeAll(conn, await readExactly(conn, 5));
    await writeAll(conn, new TextEncoder().encode("!"));
    await closing;
  });
  await sendFails(server.port, "hello", /the server sent 1 more byte than it was sent$/m);
});

Deno.test("send --timeout counts from the last byte that came back, not from the start", async () => {
  // Ten bytes, one every 0.25 s: 2.5 s in all, never 1 s without progress.
  await using server = new TcpFixture(async (conn) => {
    const message = await readExactly(conn, 10);
    for (let i = 0; i < message.length; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      await writeAll(conn, message.subarray(i, i + 1));
    }
    await readToEnd(conn);
  });
  const result = await runCli(
    [
      "send",
      "--quiet",
      "--host",
      "127.0.0.1",
      "--port",
      String(server.port),
      "--timeout",
      "1",
      "-",
    ],
    { stdin: "0123456789" },
  );
  equal(result.stderr, "");
  equal(result.code, 0);
});
