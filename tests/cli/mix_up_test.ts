/**
 * Protocol mix-ups get a hint saying which: plain text to a TLS port, TLS to a plain port, a
 * PROXY header the server does not expect, an HTTP server on the port; in send and in bench.
 */

import { equal } from "node:assert/strict";
import { runCli, ServeProcess, TcpFixture, writeAll } from "../helpers.ts";

Deno.test("plain text to a TLS port: send and bench say to add --tls", async () => {
  await using server = await ServeProcess.start([
    "--host",
    "127.0.0.1",
    "--quiet",
    "--tls-self-signed",
  ]);
  const port = String(server.port);
  const send = await runCli(["send", "--host", "127.0.0.1", "--port", port, "-q"]);
  equal(
    send.stderr,
    "error: the echo differs from what was sent at byte 0 (sent 0x54, got 0x15): the server " +
      "speaks TLS: add --tls\n",
  );
  equal(send.code, 1);
  const bench = await runCli(["bench", "--host", "127.0.0.1", "--port", port, "-n", "1"]);
  equal(
    bench.stderr.split("\n").at(-2)?.endsWith(": the server speaks TLS: add --tls"),
    true,
    bench.stderr,
  );
  equal(bench.code, 1);
});

Deno.test("TLS to a plain echo port: send says the server does not speak TLS", async () => {
  await using server = await ServeProcess.start(["--host", "127.0.0.1", "--quiet"]);
  const result = await runCli([
    "send",
    "--host",
    "127.0.0.1",
    "--port",
    String(server.port),
    "--tls",
  ]);
  equal(
    result.stderr,
    `error: cannot connect to 127.0.0.1 port ${server.port}: TLS handshake failed: the server ` +
      "does not speak TLS (it sent the client's hello back, as an echo server does): leave out --tls\n",
  );
  equal(result.code, 1);
});

Deno.test("a PROXY header echoed back: the server does not expect --send-proxy", async () => {
  await using server = await ServeProcess.start(["--host", "127.0.0.1", "--quiet"]);
  const port = String(server.port);
  for (const version of ["v1", "v2"]) {
    const result = await runCli([
      "send",
      "--host",
      "127.0.0.1",
      "--port",
      port,
      "-q",
      "--send-proxy",
      version,
    ]);
    equal(
      result.stderr.endsWith(
        ": the server echoed the PROXY header back: it does not expect --send-proxy (leave it " +
          "out, or run the server with --proxy-protocol)\n",
      ),
      true,
      result.stderr,
    );
    equal(result.code, 1);
  }
});

Deno.test("an HTTP server on the port: send says so", async () => {
  await using http = new TcpFixture(async (conn) => {
    await conn.read(new Uint8Array(1024));
    await writeAll(conn, new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"));
    conn.close();
  });
  const port = String(http.listener.addr.port);
  const result = await runCli(["send", "--host", "127.0.0.1", "--port", port, "-q", "hello"]);
  equal(
    result.stderr,
    "error: the echo differs from what was sent at byte 0 (sent 0x68, got 0x48): the server " +
      "speaks HTTP, not echo: check the port\n",
  );
  equal(result.code, 1);
});
