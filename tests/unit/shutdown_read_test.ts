import { deepEqual } from "node:assert/strict";
import { startEchoServer } from "../../lib/mod.ts";
import { within } from "../deadline.ts";
import { connect, readExactly, readToEnd, writeAll } from "../helpers.ts";

const CHUNK = new TextEncoder().encode("read at shutdown");

Deno.test("a read that completes as shutdown starts is echoed and counted as echoed", async () => {
  let shutdown: Promise<void> | undefined;
  const server = await startEchoServer({
    hostname: "127.0.0.1",
    port: 0,
    // Shutdown starts the moment the read completes, before its echo is written.
    onEvent: (event) => {
      if (event.type === "received" && event.data.length > 0) shutdown ??= server.shutdown(5000);
    },
  });
  using conn = await connect(server.addr.port);
  await writeAll(conn, CHUNK);
  deepEqual(await readExactly(conn, CHUNK.length), CHUNK);
  // The client ends the connection cleanly: nothing else comes back.
  await conn.closeWrite();
  deepEqual(await readToEnd(conn), new Uint8Array(0));
  await within("the shutdown to finish", shutdown ?? Promise.reject(new Error("no read seen")));
  const { bytesReceived, bytesEchoed, bytesDiscarded } = server.stats;
  deepEqual({ bytesReceived, bytesEchoed, bytesDiscarded }, {
    bytesReceived: CHUNK.length,
    bytesEchoed: CHUNK.length,
    bytesDiscarded: 0,
  });
});
