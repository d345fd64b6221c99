import { equal } from "node:assert/strict";
import { listenSockets } from "../../lib/mod.ts";
import { pattern, readToEnd, sameBytes } from "../helpers.ts";

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
