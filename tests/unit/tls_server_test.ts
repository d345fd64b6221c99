import { deepEqual, equal, match, ok } from "node:assert/strict";
import {
  connect,
  listenSockets,
  makeSelfSignedCertificates,
  type SocketListener,
  TlsServer,
  type TlsSession,
} from "../../lib/mod.ts";
import { needs, runProgram } from "../helpers.ts";

const server = await makeSelfSignedCertificates({ names: ["localhost", "127.0.0.1"] });
const clients = await makeSelfSignedCertificates({ names: ["alice"] });
const strangers = await makeSelfSignedCertificates({ names: ["mallory"] });

/** Runs `openssl s_client` against `port` with `args`, sending `input`; resolves with its output. */
async function sClient(port: number, args: string[], input: string, files: Record<string, string>) {
  const dir = await Deno.makeTempDir();
  try {
    const paths: Record<string, string> = {};
    for (const [name, text] of Object.entries(files)) {
      paths[name] = `${dir}/${name}.pem`;
      await Deno.writeTextFile(paths[name], text);
    }
    // s_client -quiet keeps reading after end of input: the server's close ends it.
    return await runProgram("openssl", [
      ...["s_client", "-connect", `127.0.0.1:${port}`, "-quiet", "-verify_return_error"],
      ...args.map((arg) => paths[arg] ?? arg),
    ], input);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Accepts one connection, shakes hands, echoes one read and closes. */
async function serveOnce(listener: SocketListener, tls: TlsServer): Promise<TlsSession> {
  const session = await tls.handshake(await listener.accept());
  const buffer = new Uint8Array(1024);
  const n = await session.conn.read(buffer);
  if (n !== null) await session.conn.write(buffer.subarray(0, n));
  await session.conn.closeWrite();
  session.conn.close();
  return session;
}

Deno.test({
  ...needs("openssl", "TlsServer: openssl s_client verifies the chain and sees SNI and ALPN"),
  async fn() {
    const tls = new TlsServer({ cert: server.cert, key: server.key, alpn: ["h2", "echo"] });
    const listener = await listenSockets({ hostname: "127.0.0.1", port: 0 });
    try {
      const served = serveOnce(listener, tls);
      const client = await sClient(
        listener.addr.port,
        ["-CAfile", "ca", "-servername", "localhost", "-alpn", "echo"],
        "hello",
        { ca: server.caCert },
      );
      equal(client.stdout, "hello");
      equal(client.code, 0);
      const { details } = await served;
      equal(details.version, "TLSv1.3");
      match(details.cipher, /^TLS_/);
      equal(details.serverName, "localhost");
      equal(details.alpn, "echo");
      equal(details.clientSubject, undefined);
      ok(details.handshakeMs > 0);
    } finally {
      listener.close();
    }
  },
});

Deno.test({
  ...needs("openssl", "TlsServer: mutual TLS takes a certificate from the client CA only"),
  async fn() {
    const tls = new TlsServer({ cert: server.cert, key: server.key, clientCa: clients.caCert });
    const listener = await listenSockets({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = listener.addr.port;
      const files = { ca: server.caCert, cert: clients.cert, key: clients.key };
      const served = serveOnce(listener, tls);
      const alice = await sClient(
        port,
        ["-CAfile", "ca", "-cert", "cert", "-key", "key"],
        "hi",
        files,
      );
      equal(alice.stdout, "hi");
      equal((await served).details.clientSubject, "CN=alice");

      const refused = serveOnce(listener, tls).then(() => "accepted", (err) => err.message);
      const mallory = await sClient(port, ["-CAfile", "ca", "-cert", "cert", "-key", "key"], "hi", {
        ...files,
        cert: strangers.cert,
        key: strangers.key,
      });
      equal(mallory.stdout, "");
      equal(
        await refused,
        "TLS handshake failed: client certificate refused: CN=mallory is not signed " +
          "by a CA of the client CA file",
      );

      const none = serveOnce(listener, tls).then(() => "accepted", (err) => err.message);
      await sClient(port, ["-CAfile", "ca"], "hi", files);
      equal(
        await none,
        "TLS handshake failed: the client sent no certificate, and one is required",
      );
    } finally {
      listener.close();
    }
  },
});

Deno.test("TlsServer: bytes read before the handshake are replayed into it", async () => {
  const tls = new TlsServer({ cert: server.cert, key: server.key });
  const listener = await listenSockets({ hostname: "127.0.0.1", port: 0 });
  try {
    const raw = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    // A header some earlier stage reads, sent in the same segment as the ClientHello.
    raw.setNoDelay(false);
    await raw.write(new TextEncoder().encode("HEADER\r\n"));
    const clientConn = Deno.startTls(raw, { hostname: "localhost", caCerts: [server.caCert] });
    const conn = await listener.accept();
    // The earlier stage reads more than its header: what follows goes back in front.
    const buffer = new Uint8Array(64);
    let got = 0;
    while (got < 8) got += (await conn.read(buffer.subarray(got)))!;
    equal(new TextDecoder().decode(buffer.subarray(0, 8)), "HEADER\r\n");
    const session = await tls.handshake(conn, buffer.subarray(8, got));
    const client = await clientConn;
    await client.write(new TextEncoder().encode("after the header"));
    const n = await session.conn.read(buffer);
    equal(new TextDecoder().decode(buffer.subarray(0, n!)), "after the header");
    client.close();
    session.conn.close();
  } finally {
    listener.close();
  }
});

Deno.test("TlsServer and connect: a client certificate and ALPN through the library", async () => {
  const tls = new TlsServer({
    cert: server.cert,
    key: server.key,
    clientCa: clients.caCert,
    alpn: ["echo"],
  });
  const listener = await listenSockets({ hostname: "127.0.0.1", port: 0 });
  try {
    const client = connect({
      hostname: "127.0.0.1",
      port: listener.addr.port,
      tls: { caCerts: [server.caCert], alpn: ["echo"], cert: clients.cert, key: clients.key },
    });
    const session = await tls.handshake(await listener.accept());
    const conn = await client;
    deepEqual(
      [session.details.alpn, session.details.clientSubject, conn.tls?.alpn],
      ["echo", "CN=alice", "echo"],
    );
    ok(conn.tls!.handshakeMs > 0);
    conn.close();
    session.conn.close();
  } finally {
    listener.close();
  }
});
