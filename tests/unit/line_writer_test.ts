import { deepEqual, equal } from "node:assert/strict";
import { LineWriter } from "../../cli/line_writer.ts";

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

/** A sink that accepts at most `chunk` bytes per write and records what it got. */
function recordingSink(chunk = Infinity) {
  const bytes: number[] = [];
  let writes = 0;
  return {
    write(data: Uint8Array): Promise<number> {
      writes++;
      const n = Math.min(chunk, data.length);
      bytes.push(...data.subarray(0, n));
      return Promise.resolve(n);
    },
    get text() {
      return new TextDecoder().decode(new Uint8Array(bytes));
    },
    get writes() {
      return writes;
    },
  };
}

Deno.test("LineWriter writes lines in order, batching those queued together", async () => {
  const sink = recordingSink();
  const out = new LineWriter(sink);
  for (let i = 0; i < 100; i++) out.line(`line ${i}`);
  equal(sink.writes, 0, "line() must not write synchronously");
  await out.flush();
  equal(sink.text, Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(""));
  equal(sink.writes, 1);
});

Deno.test("LineWriter finishes short writes", async () => {
  const sink = recordingSink(3);
  const out = new LineWriter(sink);
  out.line("hello");
  out.line("world");
  await out.flush();
  equal(sink.text, "hello\nworld\n");
});

Deno.test("LineWriter goes quiet when its sink fails, and flush still resolves", async () => {
  let writes = 0;
  const out = new LineWriter({
    write: () => {
      writes++;
      return Promise.reject(new Deno.errors.BrokenPipe("closed"));
    },
  });
  out.line("lost");
  await out.flush();
  out.line("dropped");
  await out.flush();
  equal(writes, 1);
});
