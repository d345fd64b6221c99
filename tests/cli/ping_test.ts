import { equal, match } from "node:assert/strict";
import { runCli, ServeProcess, spawnCli } from "../helpers.ts";

const REPLY = /^91 bytes from 127\.0\.0\.1 port \d+: seq=(\d+) time=\d+\.\d{3} ms$/;
const RTT = /^rtt min\/avg\/max\/mdev = (\d+\.\d{3})\/(\d+\.\d{3})\/(\d+\.\d{3})\/\d+\.\d{3} ms$/;

Deno.test("send --count pings one message at a time and sums up like ping", async () => {
  await using server = await ServeProcess.start(["--host", "127.0.0.1", "--quiet"]);
  const result = await runCli([
    "send",
    "--host",
    "127.0.0.1",
    "--port",
    String(server.port),
    "--count",
    "3",
    "--interval",
    "0.01",
  ]);
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
  const status = await client.child.status;
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
  const result = await runCli([
    "send",
    "--host",
    "127.0.0.1",
    "--port",
    String(listener.addr.port),
    "--count",
    "5",
    "--interval",
    "0",
  ]);
  await serving;
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
  await serving;
  equal(result.code, 1);
  equal(result.stderr, "error: seq=1: the server sent 2 more bytes than it was sent\n");
  match(result.stdout, /\n1 message sent, 0 received, 100% loss, time \d+ms\n$/);
});
