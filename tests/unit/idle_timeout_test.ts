import { deepEqual, equal, ok } from "node:assert/strict";
import { type CloseReason, startEchoServer } from "../../lib/mod.ts";
import { within } from "../deadline.ts";
import { connect, readExactly, writeAll } from "../helpers.ts";

const IDLE_MS = 1000;
/**
 * The client's silence between round trips: well inside the idle timeout even on a busy machine,
 * and long enough that a timer checking at any fraction of the timeout (a first check after one
 * timeout finds 0.2 of it silent) closes the connection.
 */
const PAUSE_MS = 400;

Deno.test("EchoServer keeps a connection active within its idle timeout, then closes it idle", async () => {
  const closed: CloseReason[] = [];
  const firstClose = Promise.withResolvers<void>();
  await using server = await startEchoServer({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: IDLE_MS,
    onEvent: (event) => {
      if (event.type !== "closed") return;
      closed.push(event.reason);
      firstClose.resolve();
    },
  });
  using conn = await connect(server.addr.port);
  // Three idle timeouts' worth of traffic, one byte every PAUSE_MS: never silent that long.
  const started = performance.now();
  let lastEcho = started;
  for (let i = 0; performance.now() - started < 3 * IDLE_MS; i++) {
    const byte = new Uint8Array([i & 0xff]);
    await writeAll(conn, byte);
    deepEqual(
      await readExactly(conn, 1),
      byte,
      `echo ${i} after ${performance.now() - started} ms`,
    );
    lastEcho = performance.now();
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  }
  deepEqual(closed, [], "the server closed an active connection");
  // Now silent: the server closes it, and not before the timeout.
  equal(await within("the idle connection to close", conn.read(new Uint8Array(1))), null);
  const silentFor = performance.now() - lastEcho;
  ok(silentFor >= IDLE_MS - PAUSE_MS, `closed after ${silentFor.toFixed(0)} ms of silence`);
  await within("the server's close event", firstClose.promise);
  deepEqual(closed, ["idle"]);
});
