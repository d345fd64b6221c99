import { deepEqual, equal, match, ok } from "node:assert/strict";
import { receiveGreeting } from "../../lib/mod.ts";
import { connect, readExactly, runCli, ServeProcess } from "../helpers.ts";

Deno.test("serve --greeting sends its line first, placeholders filled in, then echoes", async () => {
  await using server = await ServeProcess.start([
    "--host",
    "127.0.0.1",
    "--quiet",
    "--greeting",
    "hello from {host}:{port} worker {worker} conn {conn} {unknown-ish}",
  ]);
  for (const conn of [1, 2]) {
    using client = await connect(server.port);
    const expected = `hello from 127.0.0.1:${server.port} worker 1 conn ${conn} {unknown-ish}\n`;
    deepEqual(
      new TextDecoder().decode(await readExactly(client, expected.length)),
      expected,
    );
    await client.write(new TextEncoder().encode("ping"));
    equal(new TextDecoder().decode(await readExactly(client, 4)), "ping");
  }
  equal((await server.stop()).code, 0);
  // The greeting is not an echo: only the 2 x 4 bytes sent are counted.
  equal(server.stdout.lines.at(-1), "shut down: 2 connections, 8 bytes echoed");
});

Deno.test("serve --greeting on --workers names the worker that accepted", {
  ignore: Deno.build.os !== "linux",
}, async () => {
  await using server = await ServeProcess.start(
    ["--host", "127.0.0.1", "--quiet", "--workers", "2", "--greeting", "worker {worker}"],
    { permissions: ["-A", "--unstable-net"] },
  );
  const seen = new Set<string>();
  for (let i = 0; i < 40 && seen.size < 2; i++) {
    using client = await connect(server.port);
    seen.add(await receiveGreeting(client, 5000));
  }
  for (const line of seen) match(line, /^worker [12]$/);
  // The kernel spreads connections over both workers; 40 all landing on one is not credible.
  equal(seen.size, 2, [...seen].join(", "));
});

Deno.test("serve --greeting refuses a bad template or UDP with exit 2", async () => {
  for (
    const [args, message] of [
      [
        ["--greeting", "{hostname}"],
        "--greeting: unknown greeting placeholder {hostname}: use {host}, {port}, {worker} or {conn}",
      ],
      [
        ["--greeting", "a\nb"],
        "--greeting: a greeting is one line: it cannot contain a line break",
      ],
      [
        ["--udp", "--greeting", "x"],
        "--greeting needs a stream transport: TCP, TLS or --unix, not --udp",
      ],
    ] as const
  ) {
    const result = await runCli(["serve", "--port", "0", ...args]);
    equal(result.code, 2, args.join(" "));
    ok(result.stderr.startsWith(`error: ${message}`), result.stderr);
  }
});

/** Runs `tcpecho send` against 127.0.0.1 `port` with `args`. */
function sendTo(port: string, ...args: string[]) {
  return runCli(["send", "--port", port, "--host", "127.0.0.1", ...args]);
}

Deno.test("send --expect-greeting prints the greeting and keeps it out of the check", async () => {
  await using server = await ServeProcess.start([
    "--host",
    "127.0.0.1",
    "--quiet",
    "--greeting",
    "backend {port}",
  ]);
  const port = String(server.port);
  const transcript = await sendTo(port, "--expect-greeting", "hi");
  equal(transcript.code, 0, transcript.stderr);
  equal(
    transcript.stdout,
    `connecting to 127.0.0.1 port ${port}\ngreeting: backend ${port}\nsending b'hi'\n` +
      "received b'hi'\nclosing socket\n",
  );
  const json = await sendTo(port, "--expect-greeting", "--json", "hi");
  equal(json.code, 0, json.stderr);
  const summary = JSON.parse(json.stdout);
  equal(summary.greeting, `backend ${port}`);
  equal(summary.matched, true);
  const ping = await sendTo(port, "--expect-greeting", "-c", "2", "-i", "0", "hi");
  equal(ping.code, 0, ping.stderr);
  match(ping.stdout, new RegExp(`^greeting: backend ${port}\nECHO `));
  // Without --expect-greeting the greeting is where the echo should be: a mismatch.
  const plain = await sendTo(port, "hi");
  equal(plain.code, 1);
  match(plain.stderr, /^error: the echo differs from what was sent at byte 0/);
});

Deno.test("send and bench --expect-greeting fail in one line when no greeting comes", async () => {
  await using server = await ServeProcess.start(["--host", "127.0.0.1", "--quiet"]);
  const port = String(server.port);
  const send = await sendTo(port, "--expect-greeting", "-t", "0.3");
  equal(send.code, 1);
  equal(send.stderr, "error: no greeting: no greeting line within 300 ms\n");
  const bench = await runCli([
    "bench",
    "--port",
    port,
    "--host",
    "127.0.0.1",
    "--expect-greeting",
    "-t",
    "0.3",
    "-n",
    "1",
  ]);
  equal(bench.code, 1);
  equal(
    bench.stderr,
    `error: cannot connect to 127.0.0.1 port ${port}: no greeting: no greeting line within 300 ms\n`,
  );
  const udp = await runCli(["send", "--udp", "--expect-greeting", "--port", port]);
  equal(udp.code, 2);
  match(udp.stderr, /^error: --expect-greeting works over streams only, not with --udp/);
});
