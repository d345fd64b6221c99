import { deepEqual, equal, match, notDeepEqual, ok } from "node:assert/strict";
import { EchoError, sendAndVerify } from "../../lib/mod.ts";
import { pattern, runCli, ServeProcess } from "../helpers.ts";

const LOOPBACK = ["--host", "127.0.0.1"];

/** `tcpecho send` of `size` pattern bytes (from standard input) to `server`. */
function send(server: ServeProcess, size: number, ...args: string[]) {
  return runCli(["send", ...LOOPBACK, "--port", String(server.port), ...args, "-"], {
    stdin: pattern(size),
  });
}

/** `tcpecho bench --json` against `server`. */
async function bench(server: ServeProcess, ...args: string[]) {
  const result = await runCli([
    "bench",
    ...LOOPBACK,
    "--port",
    String(server.port),
    "--json",
    ...args,
  ]);
  equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

Deno.test("--delay 50 moves bench's median round trip to between 50 and 70 ms", async () => {
  await using server = await ServeProcess.start([...LOOPBACK, "--quiet", "--delay", "50"]);
  const report = await bench(server, "--duration", "2");
  const p50 = report.latency_us.p50 / 1000;
  ok(p50 >= 50 && p50 <= 70, `p50 ${p50} ms`);
  ok(report.latency_us.min >= 50_000, `min ${report.latency_us.min} µs`);
});

Deno.test("--bandwidth 1MiB holds bench -s 64KiB to 0.8-1.1 MiB/s over 3 s", async () => {
  // Read in 64 KiB chunks: 16-byte ones would cap the echo below 1 MiB/s on a busy machine.
  await using server = await ServeProcess.start([
    ...LOOPBACK,
    "--quiet",
    "--buffer-size",
    "64KiB",
    "--bandwidth",
    "1MiB",
  ]);
  const report = await bench(server, "--size", "64KiB", "--duration", "3");
  const mibPerSecond = report.bytes / report.seconds / 1024 ** 2;
  ok(mibPerSecond >= 0.8 && mibPerSecond <= 1.1, `${mibPerSecond} MiB/s`);
});

Deno.test("--slice 1 delivers the echo byte by byte, unchanged", async () => {
  await using server = await ServeProcess.start([
    ...LOOPBACK,
    "--quiet",
    "--buffer-size",
    "1KiB",
    "--slice",
    "1",
    "--slice-delay",
    "2",
  ]);
  const result = await send(server, 200, "--buffer-size", "1KiB");
  // Exit 0: every byte came back unchanged.
  equal(result.code, 0, result.stderr);
  const reads = result.stdout.split("\n").filter((line) => line.startsWith("received "));
  // Unsliced, 200 bytes come back in one or two reads of up to 1 KiB.
  ok(reads.length >= 100, `${reads.length} reads`);
});

Deno.test("--reset-after 1000: send sees a reset after exactly 1,000 bytes, logged and counted", async () => {
  await using server = await ServeProcess.start([
    ...LOOPBACK,
    "--log",
    "json",
    "--reset-after",
    "1000",
    "--seed",
    "1",
  ]);
  const started = JSON.parse(server.stdout.lines[0]);
  deepEqual(started.faults, { resetAfter: 1000, seed: 1 });
  const result = await send(server, 2000);
  equal(result.code, 1);
  match(result.stderr, /^error: connection reset by peer after 1000 of 2000 bytes came back$/m);
  const fault = JSON.parse(await server.stdout.waitFor('"event":"fault"'));
  equal(fault.fault, "reset");
  equal(fault.detail, "reset after 1,000 bytes echoed");
  const closed = JSON.parse(await server.stdout.waitFor('"event":"closed"'));
  equal(closed.reason, "fault");
  equal((await server.stop()).code, 0);
  const summary = JSON.parse(server.stdout.lines.at(-1)!);
  equal(summary.bytes_echoed, 1000);
  deepEqual(summary.faults, { reset: 1 });
});

Deno.test("--reset-after-time: the reset comes on time, even to a silent client", async () => {
  await using server = await ServeProcess.start([...LOOPBACK, "--reset-after-time", "0.3"]);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const started = performance.now();
  const error = await conn.read(new Uint8Array(16)).then(() => undefined, (err) => err);
  conn.close();
  ok(error instanceof Deno.errors.ConnectionReset, String(error));
  ok(performance.now() - started >= 250, `${performance.now() - started} ms`);
  await server.stdout.waitFor("fault: reset after 300 ms");
});

Deno.test("--close-after 1000: send sees a clean early close after 1,000 bytes", async () => {
  await using server = await ServeProcess.start([...LOOPBACK, "--close-after", "1000"]);
  const result = await send(server, 100_000);
  equal(result.code, 1);
  match(result.stderr, /^error: the server closed the connection: 1000 of 100000 bytes came back/m);
  await server.stdout.waitFor("fault: closed after 1,000 bytes echoed");
});

Deno.test("--corrupt-rate 1: send exits 1 and names the mismatch", async () => {
  await using server = await ServeProcess.start([...LOOPBACK, "--corrupt-rate", "1"]);
  const result = await send(server, 1000);
  equal(result.code, 1);
  match(result.stderr, /^error: .*(differ|mismatch)/im);
  await server.stdout.waitFor(/^(\[#\d+\] )?fault: flipped bit \d of byte \d/);
});

Deno.test("--blackhole and --no-read make send time out without a reply", async () => {
  for (const fault of ["--blackhole", "--no-read"]) {
    await using server = await ServeProcess.start([...LOOPBACK, fault]);
    const result = await send(server, 1000, "--timeout", "0.5");
    equal(result.code, 1, fault);
    match(result.stderr, /^error: timed out after 0\.5 s without a reply/m, fault);
    await server.stdout.waitFor(
      fault === "--blackhole" ? "fault: reading and echoing nothing" : "fault: not reading",
    );
  }
});

Deno.test("--stall-every and --stall-for pause the echo and log each pause", async () => {
  await using server = await ServeProcess.start([
    ...LOOPBACK,
    "--quiet",
    "--stall-every",
    "0.2",
    "--stall-for",
    "0.3",
  ]);
  const report = await bench(server, "--duration", "1");
  // One pause of 0.3 s in every 0.5 s: the slowest round trips wait out a pause.
  ok(report.latency_us.max >= 100_000, `max ${report.latency_us.max} µs`);
});

/** Which of `count` connections, one after the other, the server resets. */
async function resetPattern(seed: string, count = 12): Promise<boolean[]> {
  await using server = await ServeProcess.start([
    ...LOOPBACK,
    "--quiet",
    "--reset-after",
    "10",
    "--fault-rate",
    "0.5",
    "--seed",
    seed,
  ]);
  const resets: boolean[] = [];
  for (let i = 0; i < count; i++) {
    const outcome = await sendAndVerify({
      hostname: "127.0.0.1",
      port: server.port,
      message: pattern(100),
    }).then(() => false, (err) => err instanceof EchoError && /reset/.test(err.message));
    resets.push(outcome);
  }
  return resets;
}

Deno.test("the same --seed faults the same connections on every run", async () => {
  const first = await resetPattern("11");
  deepEqual(await resetPattern("11"), first);
  ok(first.includes(true) && first.includes(false), `${first}`);
  notDeepEqual(await resetPattern("12"), first);
});

/** The numbers of the datagrams, of `count` sent one at a time, that came back. */
async function echoedDatagrams(seed: string, count = 20): Promise<number[]> {
  await using server = await ServeProcess.start([
    ...LOOPBACK,
    "--udp",
    "--log",
    "json",
    "--drop-rate",
    "0.5",
    "--seed",
    seed,
  ]);
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const target = { transport: "udp" as const, hostname: "127.0.0.1", port: server.port };
  const echoed: number[] = [];
  let echo = socket.receive();
  try {
    for (let id = 1; id <= count; id++) {
      await socket.send(new TextEncoder().encode(`datagram ${id}`), target);
      // Either the echo comes back or the server logs the drop: the test never waits for a loss.
      const dropped = server.stdout.waitFor(new RegExp(`"datagram":${id},.*"event":"fault"`))
        .then(() => "dropped", () => "silent");
      const outcome = await Promise.race([echo.then(() => "echoed"), dropped]);
      if (outcome === "dropped") continue;
      equal(outcome, "echoed");
      equal(new TextDecoder().decode((await echo)[0]), `datagram ${id}`);
      echoed.push(id);
      echo = socket.receive();
    }
  } finally {
    socket.close();
    await echo.catch(() => {});
  }
  return echoed;
}

Deno.test("--drop-rate 0.5 with --seed drops the same datagrams on every run", async () => {
  const first = await echoedDatagrams("5");
  ok(first.length >= 3 && first.length <= 17, `${first}`);
  deepEqual(await echoedDatagrams("5"), first);
});

Deno.test("fault flags that do not fit the transport or each other are usage errors", async () => {
  const cases: [string[], RegExp][] = [
    [["--drop-rate", "0.5"], /--drop-rate needs --udp/],
    [["--udp", "--slice", "4"], /--slice works on streams, not with --udp/],
    [["--udp", "--reset-after", "5"], /--reset-after works on streams, not with --udp/],
    [["--workers", "2", "--reset-after-time", "1"], /--reset-after-time needs plain TCP/],
    [["--stall-every", "1"], /--stall-every and --stall-for go together/],
    [["--slice-delay", "5"], /--slice-delay needs --slice/],
    [["--blackhole", "--no-read"], /give one of them/],
    [["--seed", "3"], /--seed needs a fault to act on/],
    [["--corrupt-rate", "2"], /--corrupt-rate must be a probability from 0 to 1, not '2'/],
    [["--delay", "-5"], /--delay/],
    [["--bandwidth", "fast"], /--bandwidth must be a rate from 1 B\/s/],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(["serve", "--port", "0", ...args]);
    equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    match(result.stderr, message);
    equal(result.stderr.trim().split("\n").length, 1, result.stderr);
  }
});

Deno.test("a dropped datagram's log says it was dropped and not that it was sent back", async () => {
  await using server = await ServeProcess.start([...LOOPBACK, "--udp", "--drop-rate", "1"]);
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const target = { transport: "udp" as const, hostname: "127.0.0.1", port: server.port };
  try {
    await socket.send(new TextEncoder().encode("lost"), target);
    await server.stdout.waitFor(/^fault: /);
  } finally {
    socket.close();
  }
  const lines = server.stdout.lines;
  deepEqual(lines.slice(lines.indexOf("waiting for a datagram") + 1), [
    `datagram from ('127.0.0.1', ${(socket.addr as Deno.NetAddr).port})`,
    "received b'lost'",
    "fault: datagram 1 dropped",
  ]);
});
