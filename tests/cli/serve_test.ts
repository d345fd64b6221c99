import { deepEqual, equal, ok } from "node:assert/strict";
import { sendAndVerify } from "../../lib/mod.ts";
import {
  connect,
  hasLoopback6,
  needs,
  normalisePeers,
  pattern,
  readExactly,
  readToEnd,
  runProgram,
  sameBytes,
  ServeProcess,
  skipUnless,
  writeAll,
} from "../helpers.ts";

const text = (s: string) => new TextEncoder().encode(s);

/** Sends `message` and reads its echo back on an open connection. */
async function exchange(conn: Deno.Conn, message: string): Promise<void> {
  await writeAll(conn, text(message));
  equal(new TextDecoder().decode(await readExactly(conn, message.length)), message);
}

/** Shuts down the sending side, then reads until the server closes too. */
async function hangUp(conn: Deno.Conn): Promise<void> {
  await conn.closeWrite();
  equal((await readToEnd(conn)).length, 0);
  conn.close();
}

Deno.test("serve tags lines with [#id] while several clients are connected, and an idle one blocks no one", async () => {
  await using server = await ServeProcess.start(["--host", "127.0.0.1"]);
  const first = await connect(server.port);
  await server.stdout.waitFor("connection from");
  const second = await connect(server.port);
  await server.stdout.waitFor("[#2] connection from");
  // The first client stays idle while the second one is served.
  await exchange(second, "two");
  await exchange(first, "one");
  await hangUp(second);
  await server.stdout.waitFor("[#2] Closing current connection");
  // Alone again, the first client's lines lose their tag.
  await exchange(first, "again");
  await hangUp(first);
  await server.stdout.waitForCount(/^waiting for a connection$/, 2);
  equal(
    normalisePeers(server.stdout.text),
    `Starting up on 127.0.0.1 port ${server.port}
waiting for a connection
connection from ('127.0.0.1', PORT)
[#2] connection from ('127.0.0.1', PORT)
[#2] received b'two'
[#2] sending data back to the client
[#1] received b'one'
[#1] sending data back to the client
[#2] received b''
[#2] no data from ('127.0.0.1', PORT)
[#2] Closing current connection
received b'again'
sending data back to the client
received b''
no data from ('127.0.0.1', PORT)
Closing current connection
waiting for a connection`,
  );
});

Deno.test("serve echoes 20 clients at once, each its own bytes", async () => {
  await using server = await ServeProcess.start(["--quiet", "--host", "127.0.0.1"]);
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      sendAndVerify({
        hostname: "127.0.0.1",
        port: server.port,
        message: pattern(1000 + i * 100).map((byte) => byte ^ i),
        timeout: 5000,
      })),
  );
  deepEqual(results.map((r) => r.bytesReceived), results.map((_, i) => 1000 + i * 100));
  equal((await server.stop()).code, 0);
  equal(server.stdout.lines.at(-1), "shut down: 20 connections, 39,000 bytes echoed");
});

for (
  const [label, size, flags] of [
    ["1 B", 1, []],
    ["1 MiB", 1024 ** 2, ["--quiet"]],
    ["64 MiB", 64 * 1024 ** 2, ["--quiet", "--buffer-size", "64KiB"]],
  ] as const
) {
  Deno.test(`serve echoes all of ${label} after the client half-closes, then closes`, async () => {
    await using server = await ServeProcess.start(["--host", "127.0.0.1", ...flags]);
    const conn = await connect(server.port);
    const sent = pattern(size);
    // Read while writing: a big message fills both directions' socket buffers.
    const echo = readToEnd(conn);
    await writeAll(conn, sent);
    await conn.closeWrite();
    const received = await echo;
    conn.close();
    equal(received.length, sent.length);
    ok(sameBytes(received, sent), "the echo differs from what was sent");
    equal((await server.stop()).code, 0);
    equal(
      server.stdout.lines.at(-1),
      `shut down: 1 connection, ${new Intl.NumberFormat("en-US").format(size)} bytes echoed`,
    );
  });
}

/** Connects, sends 16 bytes, reads their echo, then resets the connection (SO_LINGER 0). */
const RESET_CLIENT = `
import socket, struct, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.sendall(b"0123456789abcdef")
received = b""
while len(received) < 16:
    received += sock.recv(16)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
sock.close()
`;

Deno.test(
  needs("python3", "serve logs one line for a client that resets mid-stream, then serves the next"),
  async () => {
    await using server = await ServeProcess.start(["--host", "127.0.0.1"]);
    const reset = await runProgram("python3", ["-c", RESET_CLIENT, String(server.port)]);
    equal(reset.stderr, "");
    const lost = await server.stdout.waitFor("lost connection");
    equal(
      normalisePeers(lost),
      "lost connection from ('127.0.0.1', PORT): connection reset by peer",
    );
    await server.stdout.waitForCount(/^waiting for a connection$/, 2);

    const next = await connect(server.port);
    await exchange(next, "still here");
    await hangUp(next);
    await server.stdout.waitForCount(/^waiting for a connection$/, 3);
    equal(
      normalisePeers(server.stdout.text).split("\n").slice(1).join("\n"),
      `waiting for a connection
connection from ('127.0.0.1', PORT)
received b'0123456789abcdef'
sending data back to the client
lost connection from ('127.0.0.1', PORT): connection reset by peer
waiting for a connection
connection from ('127.0.0.1', PORT)
received b'still here'
sending data back to the client
received b''
no data from ('127.0.0.1', PORT)
Closing current connection
waiting for a connection`,
    );
    equal(server.stderr.text, "");
  },
);

Deno.test("serve --buffer-size sets how many bytes each read takes", async () => {
  await using server = await ServeProcess.start(["--host", "127.0.0.1", "--buffer-size", "4"]);
  const conn = await connect(server.port);
  await exchange(conn, "abcdefghij");
  await hangUp(conn);
  await server.stdout.waitForCount(/^waiting for a connection$/, 2);
  deepEqual(server.stdout.lines.filter((line) => line.startsWith("received")), [
    "received b'abcd'",
    "received b'efgh'",
    "received b'ij'",
    "received b''",
  ]);
});

Deno.test("serve --quiet prints only the start-up line and the summary", async () => {
  await using server = await ServeProcess.start(["--quiet", "--host", "127.0.0.1"]);
  const conn = await connect(server.port);
  await exchange(conn, "hush");
  await hangUp(conn);
  equal((await server.stop()).code, 0);
  deepEqual(server.stdout.lines, [
    `Starting up on 127.0.0.1 port ${server.port}`,
    "shut down: 1 connection, 4 bytes echoed",
  ]);
  equal(server.stderr.text, "");
});

Deno.test("serve --log json writes one JSON object per event", async () => {
  await using server = await ServeProcess.start(["--log", "json", "--host", "127.0.0.1"]);
  const conn = await connect(server.port);
  await exchange(conn, "it's\n");
  const port = (conn.localAddr as Deno.NetAddr).port;
  await hangUp(conn);
  await server.stdout.waitForCount(/"event":"waiting"/, 2);
  equal((await server.stop()).code, 0);
  const events = server.stdout.lines.map((line) => JSON.parse(line));
  for (const event of events) {
    ok(!Number.isNaN(Date.parse(event.time)), `no valid time in ${JSON.stringify(event)}`);
    delete event.time;
  }
  const peer = `127.0.0.1:${port}`;
  deepEqual(events, [
    { event: "listening", address: `127.0.0.1:${server.port}` },
    { event: "waiting" },
    { conn: 1, peer, event: "connected" },
    { conn: 1, peer, event: "received", bytes: 5, data: `b"it's\\n"` },
    { conn: 1, peer, event: "sending", bytes: 5 },
    { conn: 1, peer, event: "received", bytes: 0, data: "b''" },
    { conn: 1, peer, event: "closed", reason: "eof" },
    { event: "waiting" },
    {
      event: "shutdown",
      connections: 1,
      bytes_received: 5,
      bytes_echoed: 5,
      bytes_discarded: 0,
      rejected: 0,
      cut: 0,
    },
  ]);
});

Deno.test(
  skipUnless(hasLoopback6(), "no IPv6 loopback", "serve on ::1 prints IPv6 peers as Python does"),
  async () => {
    await using server = await ServeProcess.start(["--host", "::1"]);
    const conn = await connect(server.port, "::1");
    await exchange(conn, "six");
    await hangUp(conn);
    await server.stdout.waitForCount(/^waiting for a connection$/, 2);
    equal(server.stdout.lines[0], `Starting up on ::1 port ${server.port}`);
    equal(normalisePeers(server.stdout.lines[2]), "connection from ('::1', PORT, 0, 0)");
  },
);
