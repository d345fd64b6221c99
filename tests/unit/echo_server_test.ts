import { deepEqual, equal, rejects } from "node:assert/strict";
import { EchoServer } from "../../lib/server/echo_server.ts";
import { addCounts, addStats, type EchoStats, noStats } from "../../lib/server/stats.ts";
import { startEchoServer } from "../../lib/server/start.ts";

/** A connection that records setNoDelay calls and ends at once. */
function fakeConn(noDelay: boolean[]): Deno.TcpConn {
  return {
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
    setNoDelay: (value = true) => noDelay.push(value),
    read: () => Promise.resolve(null),
    close: () => {},
  } as unknown as Deno.TcpConn;
}

/** A listener that fails its first accept, then hands out `conns`, then waits to be closed. */
function fakeListener(conns: Deno.TcpConn[]): Deno.TcpListener {
  let accepts = 0;
  let close = () => {};
  const closed = new Promise<never>((_, reject) =>
    close = () => reject(new Deno.errors.BadResource("closed"))
  );
  closed.catch(() => {});
  return {
    addr: { transport: "tcp", hostname: "127.0.0.1", port: 9 },
    accept: () => {
      accepts++;
      if (accepts === 1) {
        return Promise.reject(new Deno.errors.ConnectionReset("reset before accept"));
      }
      return conns.length > 0 ? Promise.resolve(conns.shift()!) : closed;
    },
    close: () => close(),
  } as unknown as Deno.TcpListener;
}

Deno.test("EchoServer sets TCP_NODELAY on every connection; a connection reset before its accept is a health check", async () => {
  const noDelay: boolean[] = [];
  const errors: string[] = [];
  let closed = 0;
  let bothServed = () => {};
  const served = new Promise<void>((resolve) => bothServed = resolve);
  const server = new EchoServer({
    listener: fakeListener([fakeConn(noDelay), fakeConn(noDelay)]),
    onEvent: (event) => {
      if (event.type === "closed" && ++closed === 2) bothServed();
    },
    onError: (message) => errors.push(message),
  });
  await served;
  await server.shutdown(100);
  deepEqual(noDelay, [true, true]);
  deepEqual(errors, []);
  // The reset before the accept, and both connections, which end before their first byte.
  equal(server.stats.closed["health-check"], 3);
  equal(server.stats.connections, 2);
  equal(server.stats.open, 0);
});

/** Stats whose every count, nested ones included, is `value`. */
function everyCount(value: number): EchoStats {
  const fill = (counts: object): object =>
    Object.fromEntries(
      Object.entries(counts).map(([key, count]) => [
        key,
        typeof count === "number" ? value : fill(count),
      ]),
    );
  return fill(noStats()) as EchoStats;
}

Deno.test("addStats adds every count, nested ones included", () => {
  deepEqual(addStats(everyCount(1), everyCount(2)), everyCount(3));
  deepEqual(addStats(noStats(), noStats()), noStats());
});

Deno.test("addCounts refuses at compile time a field that does not add up", () => {
  const named = { connections: 1, name: "w1" };
  // Only type-checked, never run: `name` is not a count, so the sum must not compile.
  // @ts-expect-error: Type 'string' is not assignable to type 'never'.
  const _wontCompile = () => addCounts(named, named);
  const nested = { connections: 1, closed: { eof: 1 } };
  deepEqual(addCounts(nested, nested), { connections: 2, closed: { eof: 2 } });
});

Deno.test("EchoServer.shutdown lets an open connection finish, and ends as soon as it does", async () => {
  const server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  const bytes = new TextEncoder().encode("before");
  await conn.write(bytes);
  await conn.read(new Uint8Array(bytes.length));
  equal(await server.stopAccepting(), 1);
  const draining = server.shutdown(60_000);
  await rejects(Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }));
  // Still echoed while draining: the client decides when the session ends.
  await conn.write(new TextEncoder().encode("after"));
  const echo = new Uint8Array(5);
  equal(await conn.read(echo), 5);
  equal(new TextDecoder().decode(echo), "after");
  await conn.closeWrite();
  equal(await conn.read(new Uint8Array(1)), null);
  conn.close();
  await draining;
  const { closed, bytesEchoed, open } = server.stats;
  deepEqual([closed.eof, closed.shutdown, bytesEchoed, open], [1, 0, 11, 0]);
});

Deno.test("EchoServer.shutdown cuts at the deadline: FIN after the echo, what follows dropped", async () => {
  const server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  await conn.write(new TextEncoder().encode("ping"));
  await conn.read(new Uint8Array(4));
  const draining = server.shutdown(50);
  // The FIN at the deadline: the client sees the end of the echo, then closes.
  equal(await conn.read(new Uint8Array(1)), null);
  conn.close();
  await draining;
  equal(server.stats.closed.shutdown, 1);
  equal(server.stats.bytesEchoed, 4);
});

/**
 * A connection whose reads the test completes by hand: `arrive(bytes)` completes the pending
 * read with `bytes`, `arrive(null)` with the end of the stream. Writes are recorded.
 */
function scriptedConn() {
  const written: number[] = [];
  let pending = Promise.withResolvers<Uint8Array | null>();
  /** `started[n]` resolves when read number n (from 1) begins. */
  const started = Array.from({ length: 8 }, () => Promise.withResolvers<void>());
  let reads = 0;
  const conn = {
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 2 },
    setNoDelay: () => {},
    read: async (buffer: Uint8Array) => {
      started[++reads]?.resolve();
      const bytes = await pending.promise;
      pending = Promise.withResolvers();
      if (bytes === null) return null;
      buffer.set(bytes);
      return bytes.length;
    },
    write: (bytes: Uint8Array) => {
      written.push(...bytes);
      return Promise.resolve(bytes.length);
    },
    closeWrite: () => Promise.resolve(),
    close: () => {},
  } as unknown as Deno.TcpConn;
  return {
    conn,
    written,
    readStarted: (n: number) => started[n].promise,
    arrive: (bytes: Uint8Array | null) => pending.resolve(bytes),
  };
}

for (const drainTimeout of [5000, 0]) {
  Deno.test(`EchoServer echoes a read that completes just after shutdown starts (drain timeout ${drainTimeout} ms)`, async () => {
    const client = scriptedConn();
    const server = new EchoServer({ listener: fakeListener([client.conn]) });
    await client.readStarted(1);
    const shutdown = server.shutdown(drainTimeout);
    // The bytes land a turn of the event loop later, as a real read's completion does. With no
    // drain time, the cut at the deadline starts on the next turn: they land on the one after, as
    // the cut begins, and are still echoed.
    const chunk = new TextEncoder().encode("just in time");
    const turn = (then: () => void) => setTimeout(then, 0);
    if (drainTimeout === 0) turn(() => turn(() => client.arrive(chunk)));
    else turn(() => client.arrive(chunk));
    // Then the client closes: the server's next read sees the end of the stream.
    await client.readStarted(2);
    client.arrive(null);
    await shutdown;
    deepEqual(client.written, [...chunk]);
    const { bytesReceived, bytesEchoed, bytesDiscarded } = server.stats;
    deepEqual({ bytesReceived, bytesEchoed, bytesDiscarded }, {
      bytesReceived: chunk.length,
      bytesEchoed: chunk.length,
      bytesDiscarded: 0,
    });
  });
}

Deno.test("EchoServer.shutdown lets a faulted connection finish, its delays still applied", async () => {
  const server = await startEchoServer({ hostname: "127.0.0.1", port: 0, faults: { delay: 30 } });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  const draining = server.shutdown(60_000);
  const started = performance.now();
  await conn.write(new TextEncoder().encode("after"));
  const echo = new Uint8Array(5);
  equal(await conn.read(echo), 5);
  equal(performance.now() - started >= 30, true);
  equal(new TextDecoder().decode(echo), "after");
  await conn.closeWrite();
  equal(await conn.read(new Uint8Array(1)), null);
  conn.close();
  await draining;
  const { closed, bytesEchoed, faults } = server.stats;
  deepEqual([closed.eof, closed.shutdown, bytesEchoed, faults.delay], [1, 0, 5, 1]);
});

Deno.test("EchoServer.shutdown cuts a faulted connection at the deadline: what it held back, then FIN", async () => {
  const received = Promise.withResolvers<void>();
  const server = await startEchoServer({
    hostname: "127.0.0.1",
    port: 0,
    faults: { delay: 60_000 },
    onEvent: (event) => event.type === "received" && received.resolve(),
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  await conn.write(new TextEncoder().encode("ping"));
  await received.promise;
  const draining = server.shutdown(50);
  // The echo held back for a minute goes out at the cut, then the FIN.
  const echo = new Uint8Array(4);
  equal(await conn.read(echo), 4);
  equal(new TextDecoder().decode(echo), "ping");
  equal(await conn.read(new Uint8Array(1)), null);
  conn.close();
  await draining;
  equal(server.stats.closed.shutdown, 1);
  equal(server.stats.bytesEchoed, 4);
});
