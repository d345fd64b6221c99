import { equal, ok, rejects } from "node:assert/strict";
import { EchoError } from "../../lib/base/errors.ts";
import { Exchange } from "../../lib/client/_exchange.ts";
import { sendAndVerify, startEchoServer } from "../../lib/mod.ts";

/** A connected loopback pair: the exchange's side and the server's side, run by `serve`. */
async function pair(serve: (conn: Deno.TcpConn) => Promise<void>) {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  const serving = serve(server).catch(() => {}).finally(() => {
    try {
      server.close();
    } catch { /* closed by serve */ }
  });
  return { client, serving };
}

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("Exchange names a differing byte from the start of the current message", async () => {
  const { client, serving } = await pair(async (conn) => {
    const buffer = new Uint8Array(5);
    await conn.read(buffer);
    await conn.write(buffer);
    await conn.read(buffer);
    buffer[3] = 0x58;
    await conn.write(buffer);
  });
  const exchange = new Exchange(client, { timeout: 5000, bufferSize: 16 });
  await exchange.send(text("hello"));
  await exchange.echoed();
  exchange.mark();
  await exchange.send(text("world"));
  await rejects(exchange.echoed(), {
    message: "the echo differs from what was sent at byte 3 (sent 0x6c, got 0x58)",
  });
  exchange.close();
  await serving;
});

Deno.test("Exchange fails on bytes that follow a complete echo, before anything more is sent", async () => {
  const { client, serving } = await pair(async (conn) => {
    const buffer = new Uint8Array(5);
    await conn.read(buffer);
    await conn.write(buffer);
    await conn.write(text("XX"));
    await conn.read(buffer);
  });
  const exchange = new Exchange(client, { timeout: 5000, bufferSize: 16 });
  await exchange.send(text("hello"));
  await exchange.reading;
  ok(exchange.failure instanceof EchoError);
  equal(exchange.failure?.message, "the server sent 2 more bytes than it was sent");
  exchange.close();
  await serving;
});

Deno.test("Exchange times out only while an echo is owed, and says how far it got", async () => {
  const { client, serving } = await pair(async (conn) => {
    const buffer = new Uint8Array(10);
    await conn.read(buffer);
    await conn.write(buffer.subarray(0, 4));
    await conn.read(buffer);
  });
  const exchange = new Exchange(client, { timeout: 200, bufferSize: 16 });
  await exchange.send(text("0123456789"));
  await rejects(exchange.echoed(), {
    message: "timed out after 0.2 s waiting for the rest of the echo: 4 of 10 bytes came back",
  });
  exchange.close();
  await serving;
});

Deno.test("sendAndVerify streams more than its window and keeps at most the window owed", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0, bufferSize: 65536 });
  let sent = 0;
  let received = 0;
  let mostOwed = 0;
  async function* chunks() {
    for (let i = 0; i < 64; i++) yield new Uint8Array(256 * 1024).fill(i);
  }
  const result = await sendAndVerify({
    hostname: "127.0.0.1",
    port: server.addr.port,
    message: chunks(),
    bufferSize: 65536,
    onSent: (chunk) => {
      sent += chunk.length;
      mostOwed = Math.max(mostOwed, sent - received);
    },
    onReceived: (chunk) => {
      received += chunk.length;
    },
  });
  equal(result.bytesReceived, 16 * 1024 * 1024);
  equal(result.interrupted, false);
  ok(mostOwed <= 4 * 1024 * 1024 + 256 * 1024, `${mostOwed} bytes owed at most`);
});

Deno.test("sendAndVerify: endInput ends a stream, and what was sent is still checked", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const stop = new AbortController();
  async function* endless() {
    for (;;) {
      yield text("ping\n");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
  const result = await sendAndVerify({
    hostname: "127.0.0.1",
    port: server.addr.port,
    message: endless(),
    endInput: stop.signal,
    onReceived: () => stop.abort(),
  });
  equal(result.interrupted, true);
  equal(result.bytesReceived, result.bytesSent);
  ok(result.bytesSent >= 5);
});
