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
function ping(port: number, count: number, interval: number) {
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

Deno.test("ping mode stops at the first reply that differs and still sums up", async () => {
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
  const result = await ping(listener.addr.port, 5, 0);
  await within("the corrupting server to finish", serving);
  equal(result.code, 1);
  equal(
    result.stderr,
    "error: seq=2: the echo differs from what was sent at byte 40 (sent 0x20, got 0xdf)\n",
  );
  const lines = result.stdout.trimEnd().split("\n");
  equal(lines.length, 5, result.stdout);
  match(lines[3], /^2 messages sent, 1 received, 50% loss, time \d+ms$/);
});

Deno.test("ping mode checks each reply as strictly as a single send: extra bytes fail that seq", async () => {
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
    "hello",
  ]);
  await within("the server that adds bytes to finish", serving);
  equal(result.code, 1);
  equal(result.stderr, "error: seq=1: the server sent 2 more bytes than it was sent\n");
  match(result.stdout, /\n1 message sent, 0 received, 100% loss, time \d+ms\n$/);
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
