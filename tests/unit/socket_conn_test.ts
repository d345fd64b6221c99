import { equal, ok, rejects, throws } from "node:assert/strict";
import { EchoServer, listenSockets, startEchoServer } from "../../lib/mod.ts";
import { pattern, readToEnd, sameBytes } from "../helpers.ts";
import { toDenoError } from "../../lib/net/socket_conn.ts";

Deno.test({
  name: "SocketConn: close sends everything still buffered, then FIN",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const listener = await listenSockets({ hostname: "127.0.0.1", port: 0 });
    try {
      const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
      const conn = await listener.accept();
      // More than the socket buffers take at once: most of it is still queued when close runs.
      const big = pattern(4 * 1024 * 1024);
      conn.write(big);
      conn.close();
      const received = await readToEnd(client);
      equal(received.length, big.length);
      equal(sameBytes(received, big), true);
      client.close();
    } finally {
      listener.close();
    }
  },
});

Deno.test("SocketConn: half-close reads the end of the stream, and the other way still sends", async () => {
  const listener = await listenSockets({ hostname: "127.0.0.1", port: 0 });
  try {
    const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const conn = await listener.accept();
    await client.write(new TextEncoder().encode("last words"));
    await client.closeWrite();
    const buffer = new Uint8Array(64);
    let text = "";
    for (let n; (n = await conn.read(buffer)) !== null;) {
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    equal(text, "last words");
    await conn.write(new TextEncoder().encode("answer"));
    await conn.closeWrite();
    equal(new TextDecoder().decode(await readToEnd(client)), "answer");
    client.close();
    conn.close();
  } finally {
    listener.close();
  }
});

Deno.test("SocketConn: reset ends the connection with a TCP reset, not a FIN", async () => {
  const listener = await listenSockets({ hostname: "127.0.0.1", port: 0 });
  try {
    const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const conn = await listener.accept();
    // Read once so that the connection is established on both ends before the reset.
    await client.write(new Uint8Array([1]));
    equal(await conn.read(new Uint8Array(1)), 1);
    conn.reset();
    await rejects(client.read(new Uint8Array(1)), Deno.errors.ConnectionReset);
    client.close();
  } finally {
    listener.close();
  }
});

Deno.test("SocketConn: errors of node:net come out as Deno's classes, one mapping for all", () => {
  const error = (code: string) => Object.assign(new Error(code), { code });
  ok(toDenoError(error("ECONNRESET")) instanceof Deno.errors.ConnectionReset);
  ok(toDenoError(error("EPIPE")) instanceof Deno.errors.BrokenPipe);
  ok(toDenoError(error("EADDRINUSE")) instanceof Deno.errors.AddrInUse);
  ok(toDenoError(error("EPERM")) instanceof Deno.errors.NotCapable);
  // A failed lookup keeps its code, from which the messages say "unknown host".
  equal((toDenoError(error("ENOTFOUND")) as Error & { code: string }).code, "ENOTFOUND");
});

Deno.test("the reset faults need a listener whose connections can be reset", async () => {
  const faults = { resetAfter: 1 };
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    throws(() => new EchoServer({ listener, faults }), {
      name: "UsageError",
      message: "the reset faults need a listener whose connections can be reset " +
        "(startEchoServer makes one over plain TCP)",
    });
  } finally {
    listener.close();
  }
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0, faults });
  equal(server.faults?.resetAfter, 1);
});
