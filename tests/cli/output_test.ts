import { equal, match, ok } from "node:assert/strict";
import { cliCommand, LineCollector, runCli, ServeProcess } from "../helpers.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
/** A guard against a client that never stops: the tests expect an end long before it. */
const GUARD_MS = 20_000;

/** Runs `tcpecho ARGS...` with its standard output on /dev/full. */
async function runToFullDisk(args: string[]): Promise<{ code: number; stderr: string }> {
  const { code, stderr } = await new Deno.Command("sh", {
    args: ["-c", 'exec "$0" "$@" > /dev/full', Deno.execPath(), "run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(GUARD_MS),
  }).output();
  return { code, stderr: new TextDecoder().decode(stderr) };
}

/**
 * Starts `tcpecho ARGS...`, reads its first line of output, then closes the pipe as `head -1`
 * does; resolves with how the process ended and what it said on standard error.
 */
async function runUntilReaderLeaves(args: string[]) {
  const child = cliCommand(args, { killAfter: GUARD_MS }).spawn();
  const stderr = new LineCollector(child.stderr);
  const reader = child.stdout.getReader();
  const first = await reader.read();
  await reader.cancel();
  const status = await child.status;
  await stderr.done;
  return { status, first: new TextDecoder().decode(first.value), stderr: stderr.text };
}

Deno.test("ping mode stops at once, without a word, when the reader of its output goes away", async () => {
  await using server = await ServeProcess.start(["--quiet"]);
  const run = await runUntilReaderLeaves([
    "send",
    "--port",
    String(server.port),
    "--interval",
    "0.2",
  ]);
  match(run.first, /^ECHO localhost/);
  equal(run.status.signal, null, "ended by itself, not by the guard");
  equal(run.status.code, 1);
  equal(run.stderr, "");
});

Deno.test("send with a long transcript stops when the reader of its output goes away", async () => {
  await using server = await ServeProcess.start(["--quiet"]);
  const child = cliCommand(
    ["send", "--port", String(server.port), "--buffer-size", "1", "x".repeat(100_000)],
    { killAfter: GUARD_MS },
  ).spawn();
  const reader = child.stdout.getReader();
  await reader.read();
  await reader.cancel();
  const status = await child.status;
  await child.stderr.cancel();
  equal(status.signal, null, "ended by itself, not by the guard");
  equal(status.code, 1);
});

for (
  const [name, args] of [
    ["send", ["send"]],
    ["send --json", ["send", "--json"]],
    ["ping mode", ["send", "-c", "3", "-i", "0.05"]],
    ["ping mode --json", ["send", "-c", "2", "-i", "0", "--json"]],
    ["bench", ["bench", "-n", "10"]],
    ["bench --json", ["bench", "-n", "10", "--json"]],
  ] as const
) {
  Deno.test(`${name} fails, exit 1, when its output cannot be written (> /dev/full)`, async () => {
    await using server = await ServeProcess.start(["--quiet"]);
    const result = await runToFullDisk([...args, "--port", String(server.port)]);
    equal(result.stderr, "error: cannot write to standard output: no space left on device\n");
    equal(result.code, 1);
  });
}

Deno.test("serve keeps serving when its log output closes, and says so once on stderr", async () => {
  const child = cliCommand(["serve", "--port", "0"], { killAfter: GUARD_MS }).spawn();
  const stderr = new LineCollector(child.stderr);
  const reader = child.stdout.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  const port = Number(first.match(/port (\d+)/)?.[1]);
  // Close the log's pipe the way a reader that goes away does.
  await reader.cancel();
  for (let i = 0; i < 3; i++) {
    const result = await runCli(["send", "--quiet", "--port", String(port)]);
    equal(result.code, 0, result.stderr);
  }
  await stderr.waitFor("serving on without a log");
  child.kill("SIGTERM");
  const status = await child.status;
  await stderr.done;
  equal(status.code, 0);
  const warnings = stderr.lines.filter((line) => line.includes("without a log"));
  equal(warnings.length, 1, stderr.text);
  ok(warnings[0].startsWith("warning: standard output was closed by its reader"), warnings[0]);
});

Deno.test("send - stops at once when the reader of its transcript goes away", async () => {
  await using server = await ServeProcess.start(["--quiet"]);
  const child = cliCommand(["send", "--port", String(server.port), "-"], {
    killAfter: GUARD_MS,
  }, "piped").spawn();
  const input = child.stdin.getWriter();
  // Far more than the echo window, read 16 bytes at a time: minutes of transcript.
  const feeding = (async () => {
    for (let i = 0; i < 64; i++) await input.write(new Uint8Array(1024 * 1024).fill(0x61));
    await input.close();
  })().catch(() => {/* the child stopped reading */});
  const reader = child.stdout.getReader();
  await reader.read();
  await reader.cancel();
  const started = Date.now();
  const status = await child.status;
  await feeding;
  await child.stderr.cancel();
  equal(status.signal, null, "ended by itself, not by the guard");
  equal(status.code, 1);
  ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms to stop`);
});
