import { deepEqual, equal, match, ok } from "node:assert/strict";
import { exited, runCli, ServeProcess, spawnCli } from "../helpers.ts";

/** Runs `tcpecho send --udp` in ping mode: `count` datagrams to 127.0.0.1 `port`, back to back. */
function pingUdp(port: number, count: number, ...more: string[]) {
  return runCli(
    ["send", "--udp", "--host", "127.0.0.1", "--port", String(port), "--count", String(count)]
      .concat(["--interval", "0", ...more]),
  );
}

Deno.test("send --udp --count pings serve --udp one datagram at a time and sums up like ping", async () => {
  await using server = await ServeProcess.start(["--udp", "--host", "127.0.0.1", "--quiet"]);
  const text = await pingUdp(server.port, 3, "ping");
  equal(text.stderr, "");
  equal(text.code, 0);
  const lines = text.stdout.trimEnd().split("\n");
  equal(lines[0], `ECHO 127.0.0.1 port ${server.port} (UDP): 4 bytes per message`);
  for (const seq of [1, 2, 3]) {
    // The 4 bytes after an 8-byte header of run id and sequence number.
    match(lines[seq], new RegExp(`^12 bytes from 127\\.0\\.0\\.1 port \\d+: seq=${seq} time=`));
  }
  equal(lines[4], `--- 127.0.0.1 port ${server.port} echo statistics ---`);
  match(lines[5], /^3 messages sent, 3 received, 0% loss, time \d+ms$/);
  match(lines[6], /^rtt min\/avg\/max\/mdev = [\d.]+\/[\d.]+\/[\d.]+\/[\d.]+ ms$/);
  equal(lines[7], "datagrams: 0 late, 0 duplicates, 0 reordered, 0 mismatched");
  match(lines[8], /^rtt p50\/p90\/p99 = \d+\.\d{3}\/\d+\.\d{3}\/\d+\.\d{3} ms$/);
  equal(lines.length, 9);

  const json = await pingUdp(server.port, 3, "--json", "ping");
  equal(json.code, 0, json.stderr);
  const summary = JSON.parse(json.stdout);
  equal(summary.transport, "udp");
  equal(summary.received, 3);
  ok(summary.rtt_p50_ms > 0 && summary.rtt_p99_ms >= summary.rtt_p50_ms, json.stdout);
  deepEqual(summary.datagrams, {
    sent: 3,
    lost: 0,
    late: 0,
    duplicates: 0,
    reordered: 0,
    mismatches: 0,
  });
});

Deno.test("send --udp --count counts serve --udp's seeded drops and duplicates; all dropped is 100% loss and exit 1", async () => {
  await using dropping = await ServeProcess.start(
    ["--udp", "--host", "127.0.0.1", "--quiet", "--drop-rate", "1"],
  );
  const none = await pingUdp(dropping.port, 3, "--timeout", "0.1");
  equal(none.code, 1);
  equal(none.stderr, "error: no reply came back\n");
  match(none.stdout, /^seq=1 lost: no echo within 0\.1 s$/m);
  match(none.stdout, /^3 messages sent, 0 received, 3 lost, 100% loss, time \d+ms$/m);

  await using faulty = await ServeProcess.start([
    "--udp",
    "--host",
    "127.0.0.1",
    "--quiet",
    "--drop-rate",
    "0.3",
    "--duplicate-rate",
    "1",
    "--seed",
    "7",
  ]);
  const text = await pingUdp(faulty.port, 20, "--timeout", "0.2", "--json");
  equal(text.code, 0, text.stderr);
  const { sent, received, lost, datagrams } = JSON.parse(text.stdout);
  equal(sent, 20);
  ok(lost > 0 && received > 0, text.stdout);
  equal(received + lost, 20);
  // Each echo is doubled; the copy of every echo but the last comes before the next echo.
  ok(datagrams.duplicates >= received - 1 && datagrams.duplicates <= received, text.stdout);
  equal(datagrams.mismatches, 0);
});

Deno.test("send --udp --count never takes a late echo for the next one's, and counts copies and strangers", async () => {
  // A peer that holds the first datagram back until the second comes, so that its echo is late
  // for certain; then echoes the second twice and sends a changed copy before the third.
  const peer = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (peer.addr as Deno.NetAddr).port;
  const serving = (async () => {
    const [first] = await peer.receive();
    const [second, client] = await peer.receive();
    for (const datagram of [first, second, second]) await peer.send(datagram, client);
    const [third] = await peer.receive();
    const changed = third.slice();
    changed[changed.length - 1] ^= 1;
    for (const datagram of [changed, third]) await peer.send(datagram, client);
  })();
  try {
    const text = await pingUdp(port, 3, "--timeout", "0.2", "--json", "ping");
    equal(text.code, 0, text.stderr);
    const summary = JSON.parse(text.stdout);
    equal(summary.received, 2);
    equal(summary.lost, 1);
    deepEqual(summary.datagrams, {
      sent: 3,
      lost: 1,
      late: 1,
      duplicates: 1,
      reordered: 0,
      mismatches: 1,
    });
  } finally {
    peer.close();
    await serving.catch(() => {});
  }
});

Deno.test("Ctrl-C in ping mode over UDP prints the summary so far", async () => {
  await using server = await ServeProcess.start(["--udp", "--host", "127.0.0.1", "--quiet"]);
  // A long interval: the signal arrives while the client waits to send the second datagram.
  const client = spawnCli(
    ["send", "--udp", "--host", "127.0.0.1", "--port", String(server.port), "--interval", "60"],
  );
  await client.stdout.waitFor(/ seq=1 time=/);
  client.child.kill("SIGINT");
  const status = await exited(client.child, "send --udp --interval after SIGINT");
  await Promise.all([client.stdout.done, client.stderr.done]);
  equal(client.stderr.text, "");
  equal(status.code, 0);
  const lines = client.stdout.lines;
  equal(lines.length, 7, client.stdout.text);
  match(lines[3], /^1 message sent, 1 received, 0% loss, time \d+ms$/);
  equal(lines[5], "datagrams: 0 late, 0 duplicates, 0 reordered, 0 mismatched");
});
