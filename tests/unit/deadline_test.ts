import { equal, match, ok, rejects } from "node:assert/strict";
import { DeadlineError } from "../deadline.ts";
import { connect, LineCollector, readExactly, runProgram, TcpFixture } from "../helpers.ts";

Deno.test("a read past its deadline fails naming the byte count awaited and the bytes read", async () => {
  const stalled = Promise.withResolvers<void>();
  // Sends 3 of the 4 bytes the test waits for, then nothing.
  await using server = new TcpFixture(async (conn) => {
    await conn.write(new TextEncoder().encode("abc"));
    await stalled.promise;
  });
  using conn = await connect(server.port);
  const err = await readExactly(conn, 4, 200).catch((err) => err);
  stalled.resolve();
  ok(err instanceof DeadlineError, String(err));
  equal(
    err.message,
    `timed out after 0.2 s waiting for 4 bytes from 127.0.0.1 port ${server.port}; seen so far:\n` +
      "3 bytes: b'abc'",
  );
});

Deno.test("a line awaited past its deadline fails naming the pattern and the output so far", async () => {
  const stream = new ReadableStream<Uint8Array>({
    start: (controller) => controller.enqueue(new TextEncoder().encode("one\ntwo\n")),
  });
  const lines = new LineCollector(stream, "the server's stdout", () => "stderr: (empty)");
  await rejects(lines.waitFor(/three/, 100), {
    name: "DeadlineError",
    message: "timed out after 0.1 s waiting for a line matching /three/ in the server's stdout; " +
      "seen so far:\none\ntwo\nstderr: (empty)",
  });
  await stream.cancel().catch(() => {});
});

const HANGING_TEST = `
Deno.test("hangs on a child process", async () => {
  const child = new Deno.Command("sleep", { args: ["600"] }).spawn();
  await Deno.writeTextFile(Deno.args[0], String(child.pid));
  await child.status;
});
Deno.test("runs after it", () => {});
`;

Deno.test("the backstop fails a hung test by name and kills the process it started", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/hang_test.ts`, HANGING_TEST);
    const backstop = new URL("../backstop.ts", import.meta.url).pathname;
    const run = await runProgram("env", [
      "NO_COLOR=1",
      "TCPECHO_TEST_MS=1000",
      Deno.execPath(),
      "test",
      "-A",
      "--no-check",
      "--preload",
      backstop,
      `${dir}/hang_test.ts`,
      "--",
      `${dir}/pid`,
    ]);
    equal(run.code, 1, run.stderr);
    match(run.stdout, /^hangs on a child process \.\.\. FAILED/m);
    match(run.stdout, /error: Test timed out after 1000ms/);
    match(run.stdout, /^runs after it \.\.\. ok/m);
    const pid = await Deno.readTextFile(`${dir}/pid`);
    equal(await Deno.stat(`/proc/${pid}`).then(() => "running", () => "gone"), "gone");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the backstop refuses a skipped test that does not say why", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/skip_test.ts`,
      'Deno.test({ name: "needs a thing", ignore: true, fn() {} });\n',
    );
    const backstop = new URL("../backstop.ts", import.meta.url).pathname;
    const run = await runProgram(Deno.execPath(), [
      "test",
      "--no-check",
      "--preload",
      backstop,
      `${dir}/skip_test.ts`,
    ]);
    equal(run.code, 1);
    match(run.stdout, /test 'needs a thing' is skipped without saying why/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
