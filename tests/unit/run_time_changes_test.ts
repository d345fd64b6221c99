/**
 * `EchoServer`'s run-time changes from the library: the same checks as at start (a refused
 * change changes nothing), limits, and closing the connections of one peer.
 */

import { deepEqual, equal, throws } from "node:assert/strict";
import { startEchoServer, UsageError } from "../../lib/mod.ts";
import { connect, readExactly, within, writeAll } from "../helpers.ts";

Deno.test("a refused change of faults changes nothing", async () => {
  await using server = await startEchoServer({
    hostname: "127.0.0.1",
    port: 0,
    faults: { delay: 20, seed: 3 },
  });
  throws(() => server.updateFaults({ corruptRate: 2 }), UsageError);
  throws(() => server.setFaults({ delay: 5 }, { count: 0 }), /count must be a whole number/);
  // A plain Deno.listen socket cannot send a reset.
  throws(() => server.setFaults({ resetAfter: 10 }), /reset faults need a listener/);
  throws(() => server.closeConnections({ reset: true }), /a reset needs plain TCP/);
  deepEqual(server.faults, { delay: 20, seed: 3 });
});

Deno.test("faults set later without a seed run on the server's", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  server.setFaults({ delay: 1, seed: 11 });
  server.setFaults({ jitter: 1, delay: 1 });
  equal(server.faults?.seed, 11);
});

Deno.test("setLimits: max-connections turns the next connection away, and null lifts it", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  using first = await connect(server.addr.port);
  await writeAll(first, new Uint8Array([1]));
  await readExactly(first, 1);
  server.setLimits({ maxConnections: 1, idleTimeout: 60_000 });
  deepEqual(server.limits, { maxConnections: 1, idleTimeout: 60_000 });
  using second = await connect(server.addr.port);
  equal(await second.read(new Uint8Array(1)), null);
  equal(server.stats.rejected, 1);
  server.setLimits({ maxConnections: null });
  using third = await connect(server.addr.port);
  await writeAll(third, new Uint8Array([3]));
  deepEqual(await readExactly(third, 1), new Uint8Array([3]));
  throws(() => server.setLimits({ maxConnections: 0 }), /maxConnections must be/);
});

Deno.test("closeConnections with a peer closes only that client's connections", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  using mine = await connect(server.addr.port);
  using other = await connect(server.addr.port);
  for (const conn of [mine, other]) {
    await writeAll(conn, new Uint8Array([1]));
    await readExactly(conn, 1);
  }
  const { port } = mine.localAddr as Deno.NetAddr;
  equal(server.closeConnections({ peer: `127.0.0.1:${port}` }), 1);
  equal(await mine.read(new Uint8Array(1)), null);
  await writeAll(other, new Uint8Array([2]));
  deepEqual(await readExactly(other, 1), new Uint8Array([2]));
  deepEqual(server.connections().map((c) => (c.peer as Deno.NetAddr).port), [
    (other.localAddr as Deno.NetAddr).port,
  ]);
});

Deno.test("a change for open connections that misses one leaves its chunk in hand to the plain echo", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  using client = await connect(server.addr.port);
  await writeAll(client, new Uint8Array([1]));
  await readExactly(client, 1);
  // fault-rate 0: the change hits no connection, yet the waiting read hands its chunk over.
  server.setFaults({ delay: 10_000, faultRate: 0 }, { scope: "all" });
  await writeAll(client, new Uint8Array([2, 3]));
  deepEqual(await readExactly(client, 2), new Uint8Array([2, 3]));
  await writeAll(client, new Uint8Array([4]));
  deepEqual(await readExactly(client, 1), new Uint8Array([4]));
  deepEqual([server.stats.bytesReceived, server.stats.bytesEchoed], [4, 4]);
});

Deno.test("setLimits: a new idle timeout reaches the open connections too", async () => {
  const events: string[] = [];
  await using server = await startEchoServer({
    hostname: "127.0.0.1",
    port: 0,
    onEvent: (event) => {
      if (event.type === "closed") events.push(`${event.reason}: ${event.detail}`);
    },
  });
  using silent = await connect(server.addr.port);
  using busy = await connect(server.addr.port);
  for (const conn of [silent, busy]) {
    await writeAll(conn, new Uint8Array([1]));
    await readExactly(conn, 1);
  }
  server.setLimits({ idleTimeout: 200 });
  // The plain loop hands this chunk over to one that keeps the time of the last byte.
  await writeAll(busy, new Uint8Array([2]));
  deepEqual(await readExactly(busy, 1), new Uint8Array([2]));
  equal(await within("the idle cut", silent.read(new Uint8Array(1))), null);
  equal(await within("the idle cut", busy.read(new Uint8Array(1))), null);
  deepEqual(events, ["idle: no byte in or out for 0.2 s", "idle: no byte in or out for 0.2 s"]);
  server.setLimits({ idleTimeout: null });
  equal(server.limits.idleTimeout, undefined);
});
