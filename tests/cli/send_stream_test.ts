import { deepEqual, equal, ok } from "node:assert/strict";
import { cliCommand, LineCollector, residentBytes, ServeProcess, TcpFixture } from "../helpers.ts";

/** A guard against a client that never stops: the tests expect an end long before it. */
const GUARD_MS = 60_000;

/** Flags for many bytes: large reads, and one JSON summary instead of a line per read. */
const IN_BULK = ["--buffer-size", "64KiB", "--json"];

/** Starts `tcpecho send ARGS...` with its standard input open for the test to write. */
function spawnWithInput(args: string[]) {
  const child = cliCommand(["send", ...args], { killAfter: GUARD_MS }, "piped").spawn();
  return {
    child,
    input: child.stdin.getWriter(),
    stdout: new LineCollector(child.stdout),
    stderr: new LineCollector(child.stderr),
  };
}

/** Sends Ctrl-C to a `send` started by {@linkcode spawnWithInput}; resolves once it ended. */
async function interrupt(send: ReturnType<typeof spawnWithInput>): Promise<Deno.CommandStatus> {
  send.child.kill("SIGINT");
  const status = await send.child.status;
  await Promise.all([send.stdout.done, send.stderr.done]);
  await send.input.close().catch(() => {});
  return status;
}

Deno.test("send - echoes standard input as it comes, before the input ends", async () => {
  await using server = await ServeProcess.start(["--quiet"]);
  const send = spawnWithInput(["--port", String(server.port), "-"]);
  await send.input.write(new TextEncoder().encode("first\n"));
  // The input is still open: the echo of what was written so far must come back already.
  await send.stdout.waitFor("received b'first\\n'", 5000);
  await send.input.write(new TextEncoder().encode("second\n"));
  await send.stdout.waitFor("received b'second\\n'", 5000);
  await send.input.close();
  const status = await send.child.status;
  await Promise.all([send.stdout.done, send.stderr.done]);
  equal(status.code, 0, send.stderr.text);
  deepEqual(send.stdout.lines, [
    `connecting to localhost port ${server.port}`,
    "sending b'first\\n'",
    "received b'first\\n'",
    "sending b'second\\n'",
    "received b'second\\n'",
    "closing socket",
  ]);
});

Deno.test("send - streams 256 MiB in bounded memory and checks every byte", async () => {
  await using server = await ServeProcess.start(["--quiet", "--buffer-size", "64KiB"]);
  const send = spawnWithInput(["--port", String(server.port), ...IN_BULK, "-"]);
  const chunk = new Uint8Array(1024 * 1024);
  let peak = 0;
  for (let i = 0; i < 256; i++) {
    chunk.fill(i);
    await send.input.write(chunk);
    if (i % 16 === 15) peak = Math.max(peak, residentBytes(send.child.pid));
  }
  await send.input.close();
  const status = await send.child.status;
  await Promise.all([send.stdout.done, send.stderr.done]);
  equal(status.code, 0, send.stderr.text);
  const summary = JSON.parse(send.stdout.text);
  equal(summary.bytes_sent, 256 * 1024 * 1024);
  equal(summary.bytes_received, 256 * 1024 * 1024);
  equal(summary.matched, true);
  // Reading all of it first took over 256 MiB; streaming stays near the runtime's own size.
  ok(peak < 160 * 1024 * 1024, `resident memory peaked at ${peak} bytes`);
});

Deno.test("Ctrl-C ends send - cleanly with the verdict so far, exit 130", async () => {
  await using server = await ServeProcess.start(["--quiet"]);
  const send = spawnWithInput(["--port", String(server.port), "-"]);
  await send.input.write(new TextEncoder().encode("so far\n"));
  await send.stdout.waitFor("received b'so far\\n'", 5000);
  const status = await interrupt(send);
  equal(status.code, 130);
  equal(send.stdout.lines.at(-1), "closing socket");
  equal(send.stderr.text, "interrupted: 7 bytes sent, all came back unchanged");
});

Deno.test("Ctrl-C ends send --json - with a summary marked interrupted", async () => {
  await using server = await ServeProcess.start();
  const send = spawnWithInput(["--port", String(server.port), "--json", "-"]);
  await send.input.write(new TextEncoder().encode("so far\n"));
  // The server's log shows the echo went out; the summary must still wait for it to come back.
  await server.stdout.waitFor("sending data back to the client", 5000);
  const status = await interrupt(send);
  equal(status.code, 130);
  const summary = JSON.parse(send.stdout.text);
  equal(summary.bytes_sent, 7);
  equal(summary.bytes_received, 7);
  equal(summary.matched, true);
  equal(summary.interrupted, true);
});

Deno.test("send --file streams a file larger than the window, checking every byte", async () => {
  await using server = await ServeProcess.start(["--quiet", "--buffer-size", "64KiB"]);
  const path = await Deno.makeTempFile();
  try {
    const bytes = new Uint8Array(12 * 1024 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff;
    await Deno.writeFile(path, bytes);
    const send = spawnWithInput(["--port", String(server.port), ...IN_BULK, "--file", path]);
    await send.input.close();
    const status = await send.child.status;
    await Promise.all([send.stdout.done, send.stderr.done]);
    equal(status.code, 0, send.stderr.text);
    equal(JSON.parse(send.stdout.text).bytes_received, bytes.length);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("Ctrl-C while send - and bench wait for a TLS handshake ends them at once, exit 130", async () => {
  // A server that accepts and never answers: the TLS handshake waits until Ctrl-C.
  const accepted = { count: 0, next: Promise.withResolvers<void>() };
  await using silent = new TcpFixture(async (conn) => {
    accepted.count++;
    accepted.next.resolve();
    const sink = new Uint8Array(1024);
    while (await conn.read(sink) !== null);
  });
  const port = String(silent.port);
  for (const args of [["send", "--json", "-"], ["bench", "--json"]]) {
    accepted.next = Promise.withResolvers<void>();
    const child = cliCommand(
      [...args, "--tls", "--host", "127.0.0.1", "--port", port],
      { killAfter: GUARD_MS },
      "piped",
    ).spawn();
    await accepted.next.promise;
    child.kill("SIGINT");
    const { code, signal, stdout, stderr } = await child.output();
    equal(signal, null);
    equal(code, 130);
    const error = `interrupted while connecting to 127.0.0.1 port ${port}`;
    equal(new TextDecoder().decode(stderr), `error: ${error}\n`);
    equal(JSON.parse(new TextDecoder().decode(stdout)).error, error);
  }
});
