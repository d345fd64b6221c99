import { equal, match, ok } from "node:assert/strict";
import {
  exited,
  readExactly,
  readToEnd,
  runCli,
  ServeProcess,
  spawnCli,
  TcpFixture,
  within,
  writeAll,
} from "../helpers.ts";

const REPLY = /^91 bytes from 127\.0\.0\.1 port \d+: seq=(\d+) time=\d+\.\d{3} ms$/;
const RTT = /^rtt min\/avg\/max\/mdev = (\d+\.\d{3})\/(\d+\.\d{3})\/(\d+\.\d{3})\/\d+\.\d{3} ms$/;

/** Runs `tcpecho send` in ping mode: `count` messages to 127.0.0.1 `port`, `interval` s apart. */
function ping(port: number, count: number, interval: number, ...more: string[]) {
  return runCli([
    "send",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--count",
    String(count),
    "--interval",
    String(interval),
    ...more,
  ]);
}

Deno.test("send --count pings one message at a time and sums up like ping", async () => {
  await using server = await ServeProcess.start(["--host", "127.0.0.1", "--quiet"]);
  const result = await ping(server.port, 3, 0.01);
  equal(result.stderr, "");
  equal(result.code, 0);
  const lines = result.stdout.trimEnd().split("\n");
  equal(lines.length, 7, result.stdout);
  equal(lines[0], `ECHO 127.0.0.1 (127.0.0.1) port ${server.port}: 91 bytes per message`);
  for (const [index, line] of lines.slice(1, 4).entries()) {
    equal(line.match(REPLY)?.[1], String(index + 1), line);
  }
  equal(lines[4], `--- 127.0.0.1 port ${server.port} echo statistics ---`);
  match(lines[5], /^3 messages sent, 3 received, 0% loss, time \d+ms$/);
  const [min, avg, max] = lines[6].match(RTT)!.slice(1).map(Number);
  equal(min <= avg && avg <= max, true, lines[6]);
  // One connection for all three messages, every byte echoed.
  await server.stop();
  match(server.stdout.text, /shut down: 1 connection, 273 bytes echoed/);
});

Deno.test("Ctrl-C in ping mode prints the summary so far", async () => {
  await using server = await ServeProcess.start(["--host", "127.0.0.1", "--quiet"]);
  // A long interval: the signal arrives while the client waits to send the second message.
  const client = spawnCli([
    "send",
    "--host",
    "127.0.0.1",
    "--port",
    String(server.port),
    "--interval",
    "60",
  ]);
  await client.stdout.waitFor(REPLY);
  client.child.kill("SIGINT");
  const status = await exited(client.child, "send --interval after SIGINT");
  await Promise.all([client.stdout.done, client.stderr.done]);
  equal(client.stderr.text, "");
  equal(status.code, 0);
  const lines = client.stdout.lines;
  equal(lines.length, 5, client.stdout.text);
  match(lines[1], REPLY);
  equal(lines[2], `--- 127.0.0.1 port ${server.port} echo statistics ---`);
  match(lines[3], /^1 message sent, 1 received, 0% loss, time \d+ms$/);
  match(lines[4], RTT);
});

Deno.test("ping mode --fail-fast stops at the first reply that differs and still sums up", async () => {
  // A server that echoes the first message faithfully and corrupts the second one.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    using conn = await listener.accept();
    const buffer = new Uint8Array(91);
    for (let round = 1; round <= 2; round++) {
      let got = 0;
      while (got < buffer.length) {
        const n = await conn.read(buffer.subarray(got));
        if (n === null) return;
        got += n;
      }
      if (round === 2) buffer[40] ^= 0xff;
      await conn.write(buffer);
    }
    await conn.read(buffer);
  })();
  const result = await ping(listener.addr.port, 5, 0, "--fail-fast");
  await within("the corrupting server to finish", serving);
  equal(result.code, 1);
  equal(
    result.stderr,
    "error: seq=2: the echo differs from what was sent at byte 40 (sent 0x20, got 0xdf)\n",
  );
  const lines = result.stdout.trimEnd().split("\n");
  equal(lines.length, 5, result.stdout);
  match(lines[3], /^2 messages sent, 1 received, 1 failed, 50% loss, time \d+ms$/);
});

Deno.test("ping mode --fail-fast checks each reply as strictly as a single send: extra bytes fail that seq", async () => {
  // A server that answers each message with the message and two bytes more.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    using conn = await listener.accept();
    const buffer = new Uint8Array(5);
    for (;;) {
      let got = 0;
      while (got < buffer.length) {
        const n = await conn.read(buffer.subarray(got));
        if (n === null) return;
        got += n;
      }
      await conn.write(new Uint8Array([...buffer, ...new TextEncoder().encode("XX")]));
    }
  })().catch(() => {});
  const port = String(listener.addr.port);
  const result = await runCli([
    "send",
    "--host",
    "127.0.0.1",
    "--port",
    port,
    "--count",
    "3",
    "--interval",
    "0.1",
    "--fail-fast",
    "hello",
  ]);
  await within("the server that adds bytes to finish", serving);
  equal(result.code, 1);
  equal(result.stderr, "error: seq=1: the server sent 2 more bytes than it was sent\n");
  match(result.stdout, /\n1 message sent, 0 received, 1 failed, 100% loss, time \d+ms\n$/);
});

Deno.test("ping mode's min/avg/max/mdev are exactly those of the round trips it printed", async () => {
  // The first reply is not the fastest: a min taken from the first one would show.
  const delays = [40, 0, 80];
  await using server = new TcpFixture(async (conn) => {
    for (const delay of delays) {
      const message = await readExactly(conn, 91);
      await new Promise((resolve) => setTimeout(resolve, delay));
      await writeAll(conn, message);
    }
    await readToEnd(conn);
  });
  const result = await ping(server.port, 3, 0);
  equal(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split("\n");
  const times = lines.slice(1, 4).map((line) => Number(line.match(/time=(\d+\.\d{3}) ms$/)![1]));
  const [min, avg, max, mdev] = lines[6].match(/= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms$/)!
    .slice(1).map(Number);
  const mean = times.reduce((sum, time) => sum + time, 0) / times.length;
  const deviation = Math.sqrt(
    times.reduce((sum, time) => sum + (time - mean) ** 2, 0) / times.length,
  );
  // The summary is computed from unrounded times: equal to the printed ones within rounding.
  const close = (actual: number, expected: number, what: string) =>
    ok(Math.abs(actual - expected) < 0.005, `${what} ${actual}, from the replies ${expected}`);
  close(min, Math.min(...times), "min");
  close(max, Math.max(...times), "max");
  close(avg, mean, "avg");
  close(mdev, deviation, "mdev");
  ok(max >= delays[2], `max ${max} ms`);
});

/** Reads one whole message of `length` bytes, or undefined when the connection ends first. */
async function readMessage(conn: Deno.Conn, length: number): Promise<Uint8Array | undefined> {
  const buffer = new Uint8Array(length);
  for (let got = 0; got < length;) {
    const n = await conn.read(buffer.subarray(got)).catch(() => null);
    if (n === null) return undefined;
    got += n;
  }
  return buffer;
}

Deno.test("ping mode counts a failed round trip and carries on over a new connection", async () => {
  // A server whose every connection echoes its first message, corrupts its second and closes.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const serving = (async () => {
    for await (const conn of listener) {
      connections++;
      for (let round = 1; round <= 2; round++) {
        const message = await readMessage(conn, 91);
        if (message === undefined) break;
        if (round === 2) message[40] ^= 0xff;
        await conn.write(message).catch(() => {});
      }
      conn.close();
      if (connections === 2) return;
    }
  })();
  const result = await ping(listener.addr.port, 4, 0);
  await within("the corrupting server to finish", serving);
  equal(result.stderr, "");
  equal(result.code, 0, "some replies came back: exit 0, as ping");
  const lines = result.stdout.trimEnd().split("\n");
  equal(lines.length, 8, result.stdout);
  equal(lines[1].match(REPLY)?.[1], "1", lines[1]);
  equal(
    lines[2],
    "seq=2 failed: the echo differs from what was sent at byte 40 (sent 0x20, got 0xdf)",
  );
  equal(lines[3].match(REPLY)?.[1], "3", lines[3]);
  match(lines[4], /^seq=4 failed: the echo differs from what was sent at byte 40/);
  match(lines[6], /^4 messages sent, 2 received, 2 failed, 50% loss, time \d+ms$/);
  equal(connections, 2);
});

Deno.test("ping mode counts a late reply as lost, and exits 1 when no reply came back", async () => {
  // --blackhole reads and never echoes: every round trip is lost.
  await using server = await ServeProcess.start(["--host", "127.0.0.1", "--quiet", "--blackhole"]);
  const result = await ping(server.port, 2, 0, "--timeout", "200ms");
  equal(result.stderr, "error: no reply came back\n");
  equal(result.code, 1);
  const lines = result.stdout.trimEnd().split("\n");
  equal(lines.length, 5, result.stdout);
  equal(lines[1], "seq=1 lost: timed out after 0.2 s without a reply: 0 of 91 bytes came back");
  equal(lines[2], "seq=2 lost: timed out after 0.2 s without a reply: 0 of 91 bytes came back");
  match(lines[4], /^2 messages sent, 0 received, 2 lost, 100% loss, time \d+ms$/);
});

Deno.test("ping mode reconnects when the server closes the connection between messages", async () => {
  // A server that closes each connection once it has echoed one message.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const serving = (async () => {
    for await (const conn of listener) {
      connections++;
      const message = await readMessage(conn, 91);
      if (message) await conn.write(message).catch(() => {});
      conn.close();
      if (connections === 4) return;
    }
  })();
  const result = await ping(listener.addr.port, 3, 0.05);
  equal(result.stderr, "");
  equal(result.code, 0);
  const lines = result.stdout.trimEnd().split("\n");
  equal(lines.length, 9, result.stdout);
  equal(lines.filter((line) => REPLY.test(line)).length, 3, result.stdout);
  equal(lines[2], "connection ended after seq=1: the server closed the connection; reconnecting");
  equal(lines[4], "connection ended after seq=2: the server closed the connection; reconnecting");
  match(lines[7], /^3 messages sent, 3 received, 0% loss, time \d+ms$/);
  equal(connections, 3);
  // --fail-fast keeps the old way: the message after the close fails and ends the run.
  const fastFail = await ping(listener.addr.port, 3, 0.05, "--fail-fast");
  await within("the closing server to finish", serving);
  equal(fastFail.code, 1);
  match(fastFail.stderr, /^error: seq=2: /);
});
