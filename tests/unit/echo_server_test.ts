import { deepEqual, equal } from "node:assert/strict";
import { EchoServer } from "../../lib/echo_server.ts";

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

Deno.test("EchoServer sets TCP_NODELAY on every connection and survives a failed accept", async () => {
  const noDelay: boolean[] = [];
  const errors: string[] = [];
  let idle = 0;
  let bothServed = () => {};
  const served = new Promise<void>((resolve) => bothServed = resolve);
  const server = new EchoServer({
    listener: fakeListener([fakeConn(noDelay), fakeConn(noDelay)]),
    onEvent: (event) => {
      if (event.type === "idle" && ++idle === 2) bothServed();
    },
    onError: (message) => errors.push(message),
  });
  await served;
  await server.shutdown(100);
  deepEqual(noDelay, [true, true]);
  deepEqual(errors, ["accept failed: connection reset by peer"]);
  equal(server.stats.connections, 2);
  equal(server.stats.open, 0);
});
