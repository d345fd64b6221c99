import { deepEqual } from "node:assert/strict";
import { pattern, readToEnd, ServeProcess, writeAll } from "../helpers.ts";

Deno.test("a reset fault keeps half-close: below its byte count the echo comes back whole", async () => {
  await using server = await ServeProcess.start(
    ["--host", "127.0.0.1", "--quiet", "--reset-after", "100000"],
  );
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const bytes = pattern(20_000);
  // Written and half-closed at once, as `nc -N` does, while the echo is still on its way.
  await writeAll(conn, bytes);
  await conn.closeWrite();
  deepEqual(await readToEnd(conn), bytes);
});
