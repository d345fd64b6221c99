import { deepEqual, equal, ok } from "node:assert/strict";
import {
  cliCommand,
  connect,
  exited,
  pattern,
  readExactly,
  residentBytes,
  within,
  writeAll,
} from "../helpers.ts";
import { TEST_MS } from "../backstop.ts";

const MiB = 1024 * 1024;
const FLOOD = 8 * MiB;

Deno.test("soak: a flood logged to a stalled stdout drops log lines instead of growing memory", async () => {
  // The log goes to a pipe this test stops reading after the first line, like a stuck terminal.
  const child = cliCommand(["serve", "--port", "0", "--log", "json"]).spawn();
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await within("the first line of tcpecho serve", reader.read());
    if (done) throw new Error("serve ended before its first line");
    text += decoder.decode(value, { stream: true });
  }
  const port = Number(JSON.parse(text.slice(0, text.indexOf("\n"))).address.split(":").pop());
  const baseline = residentBytes(child.pid);

  // Every 16-byte chunk makes two log lines: 8 MiB make over a million, some 100 MiB of JSON.
  const flood = pattern(FLOOD);
  let peak = baseline;
  {
    using conn = await connect(port);
    const echo = readExactly(conn, FLOOD, TEST_MS / 2);
    await writeAll(conn, flood);
    deepEqual(await echo, flood);
    peak = Math.max(peak, residentBytes(child.pid));
  }

  child.kill("SIGTERM");
  for (;;) {
    const { value, done } = await within("the rest of the log", reader.read(), { ms: TEST_MS / 4 });
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  const status = await exited(child, "tcpecho serve");
  await child.stderr.cancel();
  equal(status.code, 0);

  const events = text.trim().split("\n").map((line) => JSON.parse(line));
  const dropped = events.filter((event) => event.event === "dropped")
    .reduce((sum, event) => sum + event.lines, 0);
  const summary = events.at(-1);
  equal(summary.event, "shutdown");
  equal(summary.bytes_echoed, FLOOD);
  const growth = peak - baseline;
  console.log(
    `${FLOOD / MiB} MiB echoed to a client while stdout was stalled: ${events.length} log lines ` +
      `written, ${dropped} dropped; server RSS grew by ${(growth / MiB).toFixed(1)} MiB`,
  );
  ok(dropped > 0, "the stalled log dropped lines");
  // Unbounded, this flood grew the server by 410 MiB. Bounded, the growth measured 49-54 MiB, and
  // 66 MiB since main.ts loads bench's HdrHistogram module in every command (no per-chunk change).
  ok(growth <= 80 * MiB, `server RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
});
