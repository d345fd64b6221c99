import { deepEqual } from "node:assert/strict";
import { LineWriter } from "../lib/line_writer.ts";

Deno.test("LineWriter drops lines beyond maxQueued while its sink stalls, and says how many", async () => {
  const written: string[] = [];
  const stalled = Promise.withResolvers<void>();
  const out = new LineWriter({
    async write(bytes) {
      await stalled.promise;
      written.push(new TextDecoder().decode(bytes));
      return bytes.length;
    },
  }, { maxQueued: 20 });
  out.line("first"); // taken by the write loop at once, then stuck in the sink
  await null;
  await null;
  for (let i = 0; i < 10; i++) out.line(`line ${i}`); // 7 characters each, with the newline
  stalled.resolve();
  await out.flush();
  out.line("after");
  await out.flush();
  deepEqual(written.join("").split("\n"), [
    "first",
    "line 0",
    "line 1",
    "(8 lines dropped: the output was too slow)",
    "after",
    "",
  ]);
});
