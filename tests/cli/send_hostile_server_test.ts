import { equal, match } from "node:assert/strict";
import { pattern, readExactly, runCli, writeAll } from "../helpers.ts";

/** A loopback server that treats every connection with `behave`; disposing closes them all. */
function hostileServer(behave: (conn: Deno.TcpConn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections = new Set<Deno.TcpConn>();
  const accepting = (async () => {
    for await (const conn of listener) {
      connections.add(conn);
      behave(conn).catch(() => {});
    }
  })();
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting.catch(() => {});
      for (const conn of connections) {
        try {
          conn.close();
        } catch { /* closed already */ }
      }
    },
  };
}

/**
 * Runs `tcpecho send --timeout 1` against `port` and checks it failed with one clear line and exit
 * 1 on its own, long before the guard that would kill a hung client.
 */
async function sendFails(port: number, message: string | Uint8Array, expected: RegExp) {
  const result = await runCli(
    ["send", "--quiet", "--host", "127.0.0.1", "--port", String(port), "--timeout", "1", "-"],
    { stdin: message, killAfter: 20_000 },
  );
  equal(result.signal, null, "send ended by itself");
  equal(result.code, 1);
  equal(result.stdout, "");
  match(result.stderr, /^error: [^\n]+\n$/);
  match(result.stderr, expected);
}

Deno.test("send against a server that floods garbage: a clear mismatch, exit 1", async () => {
  await using server = hostileServer(async (conn) => {
    const garbage = new Uint8Array(64 * 1024).fill(0xaa);
    for (;;) await writeAll(conn, garbage);
  });
  await sendFails(server.port, "hello", /the echo differs from what was sent at byte 0/);
});

Deno.test("send against a server that sends more than it was given: exit 1", async () => {
  await using server = hostileServer(async (conn) => {
    const echo = await readExactly(conn, 5);
    await writeAll(conn, echo);
    await writeAll(conn, new TextEncoder().encode("and more"));
  });
  await sendFails(server.port, "hello", /the server sent 8 more bytes than it was sent/);
});

Deno.test("send against a server that stalls mid-echo: times out, exit 1", async () => {
  await using server = hostileServer(async (conn) => {
    const echo = await readExactly(conn, 10);
    await writeAll(conn, echo.subarray(0, 4));
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
  await using server = hostileServer(() => new Promise(() => {}));
  await sendFails(
    server.port,
    pattern(32 * 1024 * 1024),
    /timed out after 1 s without a reply: 0 of \d+ bytes came back/,
  );
});

Deno.test("send against a server that resets mid-echo: a clear error, exit 1", async () => {
  await using server = hostileServer(async (conn) => {
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
