import { deepEqual, equal, match, ok } from "node:assert/strict";
import { runLoad, startEchoServer } from "../../lib/mod.ts";
import {
  benchJson,
  cliCommand,
  exited,
  freePort,
  LineCollector,
  needs,
  NO_BENCH_ERRORS,
  readExactly,
  runCli,
  TcpFixture,
  within,
  writeAll,
} from "../helpers.ts";

/** Echoes everything, calling `change(chunk, offset)` on each chunk before sending it back. */
function echoWith(change: (chunk: Uint8Array, offset: number) => Promise<boolean | void>) {
  return async (conn: Deno.TcpConn) => {
    const buffer = new Uint8Array(4096);
    let offset = 0;
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) return;
      const chunk = buffer.subarray(0, n);
      if (await change(chunk, offset) === false) return;
      offset += n;
      await writeAll(conn, chunk);
    }
  };
}

Deno.test("bench --json reports one object with throughput, latency and errors", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const { code, stderr, report } = await benchJson(
    server.addr.port,
    "-c",
    "3",
    "-s",
    "100",
    "-w",
    "4",
    "--duration",
    "0.3",
  );
  equal(stderr, "");
  equal(code, 0);
  deepEqual(Object.keys(report), [
    "target",
    "connections",
    "size",
    "window",
    "seconds",
    "messages",
    "bytes",
    "msgs_per_s",
    "mib_per_s",
    "latency_us",
    "connects",
    "generator",
    "errors",
    "ok",
  ]);
  equal(report.connects.made, 3);
  deepEqual(Object.keys(report.connects), ["made", "attempted", "connect_us", "first_byte_us"]);
  equal(report.target, `127.0.0.1:${server.addr.port}`);
  deepEqual([report.connections, report.size, report.window], [3, 100, 4]);
  ok(report.seconds >= 0.29 && report.seconds < 1, `seconds: ${report.seconds}`);
  ok(report.messages > 0);
  equal(report.bytes, report.messages * 100);
  equal(server.stats.bytesEchoed, report.bytes);
  deepEqual(Object.keys(report.latency_us), ["min", "mean", "p50", "p90", "p99", "p99_9", "max"]);
  const { min, p50, p90, p99, p99_9, max } = report.latency_us;
  ok(min <= p50 && p50 <= p90 && p90 <= p99 && p99 <= p99_9 && p99_9 <= max);
  deepEqual(report.errors, NO_BENCH_ERRORS);
  equal(report.ok, true);
});

Deno.test("bench --count sends exactly that many messages per connection", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const { code, report } = await benchJson(server.addr.port, "-c", "2", "-w", "3", "-n", "250");
  equal(code, 0);
  equal(report.messages, 500);
  equal(server.stats.bytesEchoed, 500 * 16);
});

Deno.test("bench catches a server that corrupts one byte", async () => {
  await using server = new TcpFixture(echoWith((chunk, offset) => {
    const at = 1000 - offset;
    if (at >= 0 && at < chunk.length) chunk[at] ^= 0x01;
    return Promise.resolve();
  }));
  const { code, stderr, report } = await benchJson(server.port, "-n", "100");
  equal(code, 1);
  equal(report.messages, 100);
  deepEqual(report.errors, {
    mismatches: 1,
    early_closes: 0,
    resets: 0,
    timeouts: 0,
    refused: 0,
    connect_timeouts: 0,
  });
  equal(report.ok, false);
  equal(stderr, "error: the echo check failed: 1 mismatch\n");
});

Deno.test("bench catches a server that sends a byte it was never sent", async () => {
  // Echoes the one message with an extra byte in the same write; a window of 2 makes bench read
  // up to 32 bytes at a time, so the extra byte arrives with the echo.
  await using server = new TcpFixture(async (conn, closing) => {
    const message = await readExactly(conn, 16);
    await writeAll(conn, new Uint8Array([...message, 0x21]));
    await closing;
  });
  const { code, stderr, report } = await benchJson(server.port, "-n", "1", "-w", "2");
  equal(code, 1);
  deepEqual(report.errors, { ...NO_BENCH_ERRORS, mismatches: 1 });
  equal(stderr, "error: the echo check failed: 1 mismatch\n");
});

Deno.test("bench catches a server that drops the connection", async () => {
  await using server = new TcpFixture(echoWith((_chunk, offset) => {
    return Promise.resolve(offset < 160 ? undefined : false);
  }));
  const { code, stderr, report } = await benchJson(server.port, "-n", "100");
  equal(code, 1);
  equal(report.messages, 10);
  deepEqual(report.errors, {
    mismatches: 0,
    early_closes: 1,
    resets: 0,
    timeouts: 0,
    refused: 0,
    connect_timeouts: 0,
  });
  equal(stderr, "error: the echo check failed: 1 early close\n");
});

const RESETTING_SERVER = `
import socket, struct, sys
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
conn.recv(1)
conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
conn.close()
`;

Deno.test({
  // Deno cannot set SO_LINGER, which is how a server sends a reset on purpose.
  ...needs("python3", "bench catches a server that resets the connection"),
  async fn() {
    const python = new Deno.Command("python3", {
      args: ["-c", RESETTING_SERVER],
      stdout: "piped",
    }).spawn();
    const lines = new LineCollector(python.stdout, "the resetting Python server: stdout");
    const port = Number(await lines.waitFor(/^\d+$/));
    const { code, stderr, report } = await benchJson(port, "-n", "100");
    await exited(python, "the resetting Python server");
    await lines.done;
    equal(code, 1);
    equal(report.messages, 0);
    deepEqual(report.errors, {
      mismatches: 0,
      early_closes: 0,
      resets: 1,
      timeouts: 0,
      refused: 0,
      connect_timeouts: 0,
    });
    equal(stderr, "error: the echo check failed: 1 reset\n");
  },
});

Deno.test("bench measures a server that answers late, and times out on one too late", async () => {
  const delay = (ms: number) => echoWith(() => new Promise((resolve) => setTimeout(resolve, ms)));
  {
    await using server = new TcpFixture(delay(100));
    const { code, report } = await benchJson(server.port, "-n", "3");
    equal(code, 0);
    ok(report.latency_us.p50 >= 100_000, `p50 ${report.latency_us.p50} µs`);
    ok(report.latency_us.max < 2_000_000, `max ${report.latency_us.max} µs`);
  }
  {
    await using server = new TcpFixture(delay(1000));
    const { code, stderr, report } = await benchJson(server.port, "-n", "3", "--timeout", "0.1");
    equal(code, 1);
    equal(report.messages, 0);
    deepEqual(report.errors, {
      mismatches: 0,
      early_closes: 0,
      resets: 0,
      timeouts: 1,
      refused: 0,
      connect_timeouts: 0,
    });
    equal(stderr, "error: the echo check failed: 1 timeout\n");
  }
});

Deno.test("bench prints a table, and warns when the target is not loopback", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const port = String(server.addr.port);
  const quiet = await runCli(["bench", "--host", "127.0.0.1", "-p", port, "-n", "10"]);
  equal(quiet.code, 0);
  equal(quiet.stderr, "");
  match(
    quiet.stdout,
    new RegExp(`^bench 127\\.0\\.0\\.1:${port}: 1 connection x 16 B, 1 in flight`),
  );
  // p50 reads in ms from 10 ms on, which a busy machine reaches.
  match(quiet.stdout, /\n\| 10 \| [\d,]+ \| [\d.]+ \| [\d,.]+ (µs|ms) \|.* \| none \|\n/);
  // 0.0.0.0 as a destination reaches this machine, but bench cannot know that from the name.
  const wide = await runCli(["bench", "--host", "0.0.0.0", "-p", port, "-n", "10"]);
  equal(wide.code, 0);
  equal(
    wide.stderr,
    "warning: 0.0.0.0 is not a loopback address: this load goes over a real network\n",
  );
});

Deno.test("bench rejects bad flags with exit 2 and an unreachable server with exit 1", async () => {
  const both = await runCli(["bench", "--duration", "1", "--count", "5"]);
  equal(both.code, 2);
  match(both.stderr, /^error: give either --duration or --count, not both/);
  const zero = await runCli(["bench", "--window", "0"]);
  equal(zero.code, 2);
  equal(zero.stderr, "error: --window must be a whole number from 1 to 1024, not '0'\n");
  const udp = await runCli(["bench", "--udp", "--reconnect", "1"]);
  equal(udp.code, 2);
  equal(
    udp.stderr,
    "error: --reconnect works over streams only, not with --udp (see 'tcpecho bench --help')\n",
  );
  const insecure = await runCli(["bench", "--insecure"]);
  equal(insecure.code, 2);
  equal(insecure.stderr, "error: --insecure needs --tls (see 'tcpecho bench --help')\n");
  const port = freePort();
  const refused = await runCli(["bench", "--host", "127.0.0.1", "-p", String(port), "-n", "1"]);
  equal(refused.code, 1);
  equal(refused.stderr, `error: cannot connect to 127.0.0.1 port ${port}: connection refused\n`);
});

Deno.test({
  name: "runLoad stops by itself and leaves no socket or timer behind",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
    const port = server.addr.port;
    const timed = await runLoad({ hostname: "127.0.0.1", port, connections: 5, duration: 150 });
    equal(timed.ok, true);
    ok(timed.seconds >= 0.14 && timed.seconds < 1, `ran ${timed.seconds} s`);
    // Reads everything, answers nothing.
    await using silent = new TcpFixture(async (conn) => {
      while (await conn.read(new Uint8Array(64)) !== null);
    });
    const late = await runLoad({ hostname: "127.0.0.1", port: silent.port, count: 1, timeout: 50 });
    deepEqual(late.errors, {
      mismatches: 0,
      earlyCloses: 0,
      resets: 0,
      timeouts: 1,
      refused: 0,
      connectTimeouts: 0,
    });
  },
});

Deno.test("Ctrl-C during bench prints the report of what was measured, marked interrupted", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  for (const json of [false, true]) {
    const child = cliCommand([
      "bench",
      "--host",
      "127.0.0.1",
      "-p",
      String(server.addr.port),
      "--duration",
      "30",
      ...(json ? ["--json"] : []),
    ], { killAfter: 20_000 }).spawn();
    // Interrupt once messages are flowing: the server has echoed bytes of this run.
    const before = server.stats.bytesEchoed;
    await within(
      "bench's first echoed bytes",
      (async () => {
        while (server.stats.bytesEchoed === before) await new Promise((r) => setTimeout(r, 20));
      })(),
    );
    child.kill("SIGINT");
    const { code, signal, stdout } = await child.output();
    const text = new TextDecoder().decode(stdout);
    equal(signal, null, "ended by itself, long before its 30 s");
    equal(code, 130);
    if (json) {
      const report = JSON.parse(text);
      equal(report.interrupted, true);
      equal(report.ok, true);
      ok(report.messages > 0 && report.seconds < 20, text);
    } else {
      match(
        text,
        /^bench 127\.0\.0\.1:\d+: 1 connection x 16 B, 1 in flight each, [\d.,]+ m?s \(interrupted\)\n/,
      );
      match(text, /\| none \|\n/);
    }
  }
});

Deno.test("a second Ctrl-C ends bench at once, while echoes are still owed", async () => {
  // A server that reads and never answers: the first Ctrl-C waits for the echo in flight.
  const loaded = Promise.withResolvers<void>();
  await using server = new TcpFixture(async (conn) => {
    const sink = new Uint8Array(1024);
    while (await conn.read(sink) !== null) loaded.resolve();
  });
  const child = cliCommand(
    ["bench", "--host", "127.0.0.1", "-p", String(server.port), "--timeout", "60"],
    { killAfter: 20_000 },
  ).spawn();
  const stdout = child.stdout.getReader();
  await within("bench's first bytes at the server", loaded.promise);
  const started = Date.now();
  // Signal until it ends: the first one only stops the run, a later one exits.
  const signals = setInterval(() => {
    try {
      child.kill("SIGINT");
    } catch { /* ended */ }
  }, 300);
  const status = await child.status;
  clearInterval(signals);
  await stdout.cancel();
  await child.stderr.cancel();
  equal(status.signal, null);
  equal(status.code, 130);
  ok(Date.now() - started < 10_000, "exited long before the echo timeout");
});

Deno.test("bench --json reports a server that cannot be reached as one JSON object, exit 1", async () => {
  const port = freePort();
  const result = await runCli(["bench", "--host", "127.0.0.1", "-p", String(port), "--json"]);
  equal(result.code, 1);
  equal(result.stderr, `error: cannot connect to 127.0.0.1 port ${port}: connection refused\n`);
  deepEqual(JSON.parse(result.stdout), {
    target: `127.0.0.1:${port}`,
    ok: false,
    error: `cannot connect to 127.0.0.1 port ${port}: connection refused`,
  });
});

Deno.test("bench --count runs shorter than a second show their time in ms, not 0 s", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const result = await runCli([
    "bench",
    "--host",
    "127.0.0.1",
    "-p",
    String(server.addr.port),
    "-n",
    "5",
  ]);
  equal(result.code, 0);
  match(result.stdout, /^bench [^\n]*, [\d.,]+ ms\n/);
});
