import { deepEqual, equal, rejects } from "node:assert/strict";
import { ProxyHeaderError } from "../../lib/base/errors.ts";
import { encodeProxyHeader } from "../../lib/proxy/header.ts";
import { readProxyHeader } from "../../lib/proxy/reader.ts";
import { makeSelfSignedCertificates } from "../../lib/net/self_signed.ts";
import { TlsServer } from "../../lib/net/tls_server.ts";
import { listenTcp } from "../../lib/net/transport.ts";

const text = new TextEncoder();

/** A loopback connection: the proxy's end and the server's accepted end. */
async function connectionPair(): Promise<{ proxy: Deno.TcpConn; server: Deno.TcpConn }> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const proxy = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  proxy.setNoDelay(true);
  const server = await listener.accept();
  return { proxy, server };
}

async function readExactly(conn: Deno.Conn, size: number): Promise<string> {
  const buffer = new Uint8Array(size);
  for (let got = 0; got < size;) {
    const n = await conn.read(buffer.subarray(got));
    if (n === null) throw new Error(`closed after ${got} of ${size} bytes`);
    got += n;
  }
  return new TextDecoder().decode(buffer);
}

const V2 = encodeProxyHeader({
  version: 2,
  source: { transport: "tcp", hostname: "2001:db8::7", port: 4242 },
  destination: { transport: "tcp", hostname: "2001:db8::1", port: 443 },
  tlvs: [{ type: 0x03, value: new Uint8Array(4) }, { type: 0x02, value: text.encode("a.test") }],
});
const V1 = text.encode("PROXY TCP4 203.0.113.7 192.0.2.1 4242 443\r\n");

for (const [name, header] of [["v1", V1], ["v2", V2]] as const) {
  Deno.test(`proxy reader: a ${name} header and data in one write, no byte of the data taken`, async () => {
    const { proxy, server } = await connectionPair();
    using _proxy = proxy;
    using _server = server;
    await proxy.write(new Uint8Array([...header, ...text.encode("after the header")]));
    const info = await readProxyHeader(server, { mode: "any", timeout: 5000 });
    equal(info.length, header.length);
    equal(info.header.version, name === "v1" ? 1 : 2);
    deepEqual(info.proxy, server.remoteAddr);
    equal((info.peer as Deno.NetAddr).port, 4242);
    equal(await readExactly(server, 16), "after the header");
  });

  Deno.test(`proxy reader: a ${name} header one byte per write`, async () => {
    const { proxy, server } = await connectionPair();
    using _proxy = proxy;
    using _server = server;
    const reading = readProxyHeader(server, { mode: name, timeout: 5000 });
    for (const byte of [...header, ...text.encode("!")]) await proxy.write(Uint8Array.of(byte));
    equal((await reading).length, header.length);
    equal(await readExactly(server, 1), "!");
  });
}

Deno.test("proxy reader: a LOCAL health check names the connection's own peer", async () => {
  const { proxy, server } = await connectionPair();
  using _proxy = proxy;
  using _server = server;
  await proxy.write(encodeProxyHeader({ version: 2, command: "LOCAL" }));
  const info = await readProxyHeader(server);
  deepEqual(info.peer, server.remoteAddr);
  equal(info.header.command, "LOCAL");
});

Deno.test("proxy reader: a header still incomplete at the deadline closes the connection", async () => {
  const { proxy, server } = await connectionPair();
  using _proxy = proxy;
  await proxy.write(V1.subarray(0, 5));
  await rejects(
    readProxyHeader(server, { timeout: 200 }),
    new ProxyHeaderError("no complete PROXY header within 0.2 s (5 bytes received)"),
  );
  // The proxy sees the server hang up.
  equal(await proxy.read(new Uint8Array(1)), null);
});

Deno.test("proxy reader: a client that closes early is told apart from one that never began", async () => {
  for (const sent of [0, 20]) {
    const { proxy, server } = await connectionPair();
    using _server = server;
    await proxy.write(V1.subarray(0, sent));
    proxy.close();
    await rejects(
      readProxyHeader(server, { timeout: 5000 }),
      sent === 0
        // Nothing sent at all: a health check, not a malformed header.
        ? new ProxyHeaderError("connection closed before sending its PROXY header", {
          beforeFirstByte: true,
        })
        : new ProxyHeaderError("connection closed after 20 bytes of its PROXY header"),
    );
  }
});

Deno.test("proxy reader: a bad header is refused at once, not at the deadline", async () => {
  const { proxy, server } = await connectionPair();
  using _proxy = proxy;
  using _server = server;
  await proxy.write(text.encode("GET / HTTP/1.1\r\n"));
  // A refusal only at the deadline would fail with the deadline's message instead.
  await rejects(readProxyHeader(server, { timeout: 60_000 }), /no PROXY header: .* "GET/);
});

Deno.test("proxy reader: a reset passes through as the runtime's error", async () => {
  const reset = new Deno.errors.ConnectionReset("connection reset by peer");
  const source = {
    read: () => Promise.reject(reset),
    close() {},
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 } as Deno.NetAddr,
  };
  await rejects(readProxyHeader(source, { timeout: 5000 }), reset);
});

Deno.test("proxy reader: on a socket the server owns, the TLS stage after the header gets every byte", async () => {
  const made = await makeSelfSignedCertificates({ names: ["127.0.0.1"] });
  const tls = new TlsServer({ cert: made.cert, key: made.key });
  const listener = await listenTcp({ hostname: "127.0.0.1", port: 0 });
  try {
    const tcp = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    // The header and the ClientHello leave together, as a proxy in pass-through sends them.
    await tcp.write(V2);
    const client = Deno.startTls(tcp, { hostname: "127.0.0.1", caCerts: [made.caCert] });

    const accepted = await listener.accept();
    const info = await readProxyHeader(accepted, { mode: "v2", timeout: 5000 });
    deepEqual(info.proxy, { transport: "tcp", hostname: "127.0.0.1", port: tcp.localAddr.port });
    equal((info.peer as Deno.NetAddr).hostname, "2001:db8::7");
    const session = await tls.handshake(accepted);
    using conn = await client;
    await conn.write(text.encode("over TLS"));
    const echo = new Uint8Array(8);
    equal(await session.conn.read(echo), 8);
    await session.conn.write(echo);
    equal(await readExactly(conn, 8), "over TLS");
    session.conn.close();
  } finally {
    listener.close();
  }
});
