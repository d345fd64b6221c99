// The README's library example: tcpecho's server as a fixture in another program's tests.
import { equal } from "node:assert/strict";
import { ping, sendAndVerify, startEchoServer } from "../../lib/mod.ts";

Deno.test("a client under test talks to a real echo server on a free port", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const { port } = server.addr;
  const message = new TextEncoder().encode("hello, fixture");

  const result = await sendAndVerify({ hostname: "127.0.0.1", port, message });
  equal(result.bytesReceived, message.length);

  const pings = await ping({ hostname: "127.0.0.1", port, message, count: 3, interval: 0 });
  equal(pings.received, 3);

  equal(server.stats.connections, 2);
  equal(server.stats.bytesEchoed, 4 * message.length);
});
