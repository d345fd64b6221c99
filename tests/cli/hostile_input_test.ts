import { deepEqual, equal, ok } from "node:assert/strict";
import { connect, hasProgram, readExactly, ServeProcess, writeAll } from "../helpers.ts";

const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);
/** Invalid UTF-8: a lone continuation byte, a truncated sequence, an overlong slash, a surrogate. */
const INVALID_UTF8 = new Uint8Array([0x80, 0xc3, 0x28, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xfe, 0xff]);
const PRINTABLE_LINE = /^[\x20-\x7e]*$/;

/** Python's own `repr()` of `bytes`: the reference the log must match. */
async function pythonRepr(bytes: Uint8Array): Promise<string> {
  const output = await new Deno.Command("python3", {
    args: ["-c", "import sys; print(repr(sys.stdin.buffer.read()), end='')"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = output.stdin.getWriter();
  await writer.write(bytes);
  await writer.close();
  return new TextDecoder().decode((await output.output()).stdout);
}

/** Echoes `bytes` in one write through a connection and checks they come back. */
async function echo(port: number, bytes: Uint8Array): Promise<void> {
  using conn = await connect(port);
  const reading = readExactly(conn, bytes.length);
  await writeAll(conn, bytes);
  deepEqual(await reading, bytes);
}

/** A seeded stream of every byte value in no order (a 32-bit xorshift). */
function binary(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = 2463534242;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

Deno.test({
  name: "serve logs all 256 byte values and invalid UTF-8 as Python literals, never raw",
  ignore: !hasProgram("python3"),
  async fn() {
    await using server = await ServeProcess.start(["--buffer-size", "1KiB"]);
    for (const bytes of [ALL_BYTES, INVALID_UTF8]) {
      await echo(server.port, bytes);
      await server.stdout.waitFor(`received ${await pythonRepr(bytes)}`);
    }
    await server.stop();
    for (const line of server.stdout.lines) ok(PRINTABLE_LINE.test(line), line);
  },
});

Deno.test("serve --log json: every line is valid JSON, hostile bytes included", async () => {
  await using server = await ServeProcess.start(["--log", "json", "--buffer-size", "1KiB"]);
  for (const bytes of [ALL_BYTES, INVALID_UTF8, binary(256 * 1024)]) await echo(server.port, bytes);
  // Stopped once every connection has ended, so that no drain is announced on standard error.
  await server.stdout.waitForCount(/"event":"closed"/, 3);
  await server.stop();
  let received = 0;
  for (const line of server.stdout.lines) {
    ok(PRINTABLE_LINE.test(line), line);
    const event = JSON.parse(line);
    if (event.event === "received") received += event.bytes;
  }
  equal(received, 256 + INVALID_UTF8.length + 256 * 1024);
  equal(server.stderr.text, "");
});

Deno.test("serve survives a 1 MiB line and a binary flood, and its log stays whole", async () => {
  await using server = await ServeProcess.start(["--buffer-size", "1MiB"]);
  const longLine = new Uint8Array(1024 * 1024).fill(0x41);
  const flood = binary(4 * 1024 * 1024);
  await echo(server.port, longLine);
  await echo(server.port, flood);
  await echo(server.port, new TextEncoder().encode("still here\n"));
  const status = await server.stop();
  equal(status.code, 0);
  let logged = 0;
  let dropNotes = 0;
  for (const line of server.stdout.lines) {
    ok(PRINTABLE_LINE.test(line), `unprintable log line starting ${line.slice(0, 40)}`);
    if (/^\([\d,]+ log lines? dropped: the output was too slow\)$/.test(line)) dropNotes++;
    const literal = line.match(/^(?:\[#\d+\] )?received b(['"])(.*)\1$/)?.[2];
    // Each escape stands for one byte: count them back to the bytes received.
    if (literal !== undefined) logged += literal.replace(/\\x[0-9a-f]{2}|\\.|./g, "_").length;
  }
  // When this test reads the log slower than the flood fills it, the server drops lines rather
  // than queue them without bound, and says so where they were.
  const sent = longLine.length + flood.length + 11;
  if (dropNotes === 0) equal(logged, sent);
  else ok(logged < sent, "a drop note stands for lines really dropped");
  equal(server.stderr.text, "");
});
