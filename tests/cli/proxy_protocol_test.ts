import { deepEqual, equal, match } from "node:assert/strict";
import { encodeProxyHeader, parseProxyHeader } from "../../lib/proxy/header.ts";
import { makeCertificates } from "../certificates.ts";
import {
  connect,
  normalisePeers,
  readExactly,
  readToEnd,
  runCli,
  sendTo,
  ServeProcess,
  writeAll,
} from "../helpers.ts";

const text = (s: string) => new TextEncoder().encode(s);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Sends `bytes` on a fresh connection, half-closes, and returns all that came back. */
async function roundTrip(port: number, bytes: Uint8Array): Promise<string> {
  using conn = await connect(port);
  await writeAll(conn, bytes);
  await conn.closeWrite();
  return decode(await readToEnd(conn));
}

Deno.test("serve --proxy-protocol v1 names the client the header claims and the proxy, and echoes only the data", async () => {
  await using server = await ServeProcess.start(["--host", "127.0.0.1", "--proxy-protocol", "v1"]);
  const echo = await roundTrip(
    server.port,
    text("PROXY TCP4 203.0.113.7 192.0.2.1 4242 443\r\nThis is our message"),
  );
  equal(echo, "This is our message");
  await server.stdout.waitForCount(/^waiting for a connection$/, 2);
  equal((await server.stop()).code, 0);
  match(
    server.stdout.text,
    /^connection from \('203\.0\.113\.7', 4242\) via \('127\.0\.0\.1', \d+\)$/m,
  );
  equal(
    normalisePeers(server.stdout.text),
    `Starting up on 127.0.0.1 port ${server.port}
waiting for a connection
connection from ('203.0.113.7', PORT) via ('127.0.0.1', PORT)
received b'This is our mess'
sending data back to the client
received b'age'
sending data back to the client
received b''
no data from ('203.0.113.7', PORT)
Closing current connection
waiting for a connection
shut down: 1 connection, 19 bytes echoed`,
  );
});

Deno.test("send --send-proxy v2 into serve --proxy-protocol any: the JSON log has the claimed client, the proxy and the TLVs", async () => {
  await using server = await ServeProcess.start([
    "--host",
    "127.0.0.1",
    "--proxy-protocol",
    "any",
    "--log",
    "json",
  ]);
  const sent = await sendTo(server.port, [
    "--send-proxy",
    "v2",
    "--proxy-source",
    "[2001:db8::7]:4242",
    "--proxy-dest",
    "[2001:db8::1]:443",
    "--proxy-tlv",
    "crc32c=,alpn=6832,authority=612e74657374,0xea=01767065,0x7f=00",
    "hello",
  ]);
  equal(sent.code, 0, sent.stderr);
  equal(sent.stdout.includes("received b'hello'"), true);
  const line = await server.stdout.waitFor('"event":"connected"');
  const { time: _, proxy, ...event } = JSON.parse(line);
  match(proxy, /^127\.0\.0\.1:\d+$/);
  deepEqual(event, {
    conn: 1,
    peer: "[2001:db8::7]:4242",
    event: "connected",
    proxied_peer: "[2001:db8::7]:4242",
    proxy_version: 2,
    proxy_command: "PROXY",
    tlvs: { crc32c: event.tlvs.crc32c, alpn: "h2", authority: "a.test", "0xea": "01767065" },
  });
  await server.stdout.waitFor('"event":"waiting"');
  equal((await server.stop()).code, 0);
  const summary = JSON.parse(server.stdout.lines.at(-1)!);
  equal(summary.proxy_refused, 0);
});

Deno.test("serve drops a bad, a cut-short and a late PROXY header with one line each, and carries on", async () => {
  await using server = await ServeProcess.start([
    "--host",
    "127.0.0.1",
    "--proxy-protocol",
    "any",
    "--proxy-timeout",
    "0.3",
  ]);
  equal(await roundTrip(server.port, text("GET / HTTP/1.1\r\n\r\n")), "");
  equal(await roundTrip(server.port, text("PROXY TCP4 1.2.3.4")), "");
  {
    using late = await connect(server.port);
    await writeAll(late, text("PROXY"));
    equal((await readToEnd(late)).length, 0);
  }
  // A LOCAL health check is served with the connection's own address.
  const local = await sendTo(server.port, [
    "--send-proxy",
    "v2",
    "--proxy-local",
    "still here",
  ]);
  equal(local.code, 0, local.stderr);
  await server.stdout.waitFor("Closing current connection");
  equal((await server.stop()).code, 0);
  const lines = normalisePeers(server.stdout.text).split("\n");
  deepEqual(lines.filter((line) => line.startsWith("dropped")), [
    `dropped connection from ('127.0.0.1', PORT): no PROXY header: the connection starts with ` +
    `"GET / HTTP/1.1\\r"`,
    "dropped connection from ('127.0.0.1', PORT): connection closed after 18 bytes of its " +
    "PROXY header",
    "dropped connection from ('127.0.0.1', PORT): no complete PROXY header within 0.3 s " +
    "(5 bytes received)",
  ]);
  equal(
    lines.includes("connection from ('127.0.0.1', PORT), the proxy itself (PROXY LOCAL)"),
    true,
  );
  equal(
    lines.at(-1),
    "shut down: 4 connections, 10 bytes echoed, 3 dropped for a bad or missing PROXY header",
  );
});

Deno.test("serve --tls-cert --proxy-protocol v2 reads the header, then the handshake, from send --tls --send-proxy v2", async () => {
  await using certs = await makeCertificates();
  await using server = await ServeProcess.start([
    ...["--host", "127.0.0.1", "--tls-cert", certs.cert, "--tls-key", certs.key],
    ...["--proxy-protocol", "v2"],
  ]);
  // Deno's TLS client with --ca, node:tls with --insecure: both send the header first.
  for (
    const [trust, claimed] of [[["--ca", certs.ca], "198.51.100.9"], [
      ["--insecure"],
      "198.51.100.10",
    ]]
  ) {
    const sent = await sendTo(server.port, [
      "--tls",
      ...trust,
      "--send-proxy",
      "v2",
      "--proxy-source",
      `${claimed}:1000`,
      "over TLS",
    ]);
    equal(sent.code, 0, sent.stderr);
    await server.stdout.waitFor(new RegExp(`^connection from \\('${claimed}', 1000\\) via`));
  }
  await server.stdout.waitForCount(/received b'over TLS'/, 2);
  await server.stdout.waitFor(/^TLS TLSv1\.3 /);
});

Deno.test("bench --send-proxy v2: every connection's header arrives, every byte is checked", async () => {
  await using server = await ServeProcess.start([
    "--host",
    "127.0.0.1",
    "--proxy-protocol",
    "v2",
    "--log",
    "json",
  ]);
  const result = await runCli([
    "bench",
    "--host",
    "127.0.0.1",
    "--port",
    String(server.port),
    "--send-proxy",
    "v2",
    "--proxy-source",
    "203.0.113.7:4242",
    "-c",
    "4",
    "--count",
    "50",
    "--json",
  ]);
  equal(result.code, 0, result.stderr);
  equal(JSON.parse(result.stdout).messages, 200);
  await server.stdout.waitForCount(/"event":"closed"/, 4);
  const connected = server.stdout.lines.filter((line) => line.includes('"event":"connected"'));
  equal(connected.length, 4);
  for (const line of connected) equal(JSON.parse(line).peer, "203.0.113.7:4242");
});

Deno.test("serve --proxy-protocol over a Unix socket, and on several workers", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/echo.sock`;
    await using unix = await ServeProcess.start(["--unix", path, "--proxy-protocol", "v2"]);
    const sent = await runCli(["send", "--unix", path, "--send-proxy", "v2", "hi"]);
    equal(sent.code, 0, sent.stderr);
    await unix.stdout.waitFor("connection from '', a client the PROXY header does not name");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await using workers = await ServeProcess.start([
    "--host",
    "127.0.0.1",
    "--workers",
    "2",
    "--proxy-protocol",
    "v1",
  ]);
  const echo = await roundTrip(workers.port, text("PROXY TCP6 2001:db8::7 ::1 7 7\r\nhi"));
  equal(echo, "hi");
  await workers.stdout.waitFor(/^\[w\d #1\] connection from \('2001:db8::7', 7, 0, 0\) via/);
});

Deno.test("the PROXY flags refuse what makes no sense, with exit code 2", async () => {
  const cases: [string[], string][] = [
    [["serve", "--proxy-protocol", "v3"], "--proxy-protocol must be v1, v2 or any, not 'v3'"],
    [["serve", "--proxy-timeout", "0"], "--proxy-timeout must be a duration from 1ms"],
    [["serve", "--udp", "--proxy-protocol", "v1"], "--proxy-protocol works over TCP and Unix"],
    [["send", "--proxy-source", "1.2.3.4:5"], "--proxy-source needs --send-proxy"],
    [["send", "--send-proxy", "v1", "--proxy-tlv", "alpn=00"], "--proxy-tlv needs --send-proxy v2"],
    [["bench", "--send-proxy", "v1", "--proxy-local"], "--proxy-local needs --send-proxy v2"],
    [
      ["send", "--send-proxy", "v2", "--proxy-local", "--proxy-dest", "1.2.3.4:5"],
      "--proxy-local sends no client address: drop --proxy-dest",
    ],
    [["send", "--send-proxy", "v2", "--udp"], "--send-proxy works over streams only"],
    [["send", "--send-proxy", "v2", "--proxy-source", "example.com:80"], "IP address and port"],
    [["send", "--send-proxy", "v2", "--proxy-tlv", "0x1ff=00"], "takes TYPE=HEX pairs"],
    [["send", "--send-proxy", "v2", "--proxy-tlv", "alpn=abc"], "hex digits in pairs"],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(args);
    equal(result.code, 2, args.join(" "));
    equal(result.stderr.includes(message), true, result.stderr);
  }
});

Deno.test("what send --send-proxy writes first: the claimed client and the connection's other end, or LOCAL", async () => {
  const cases: [string[], (port: number) => Uint8Array][] = [
    [
      ["--send-proxy", "v1", "--proxy-source", "203.0.113.7:4242"],
      (port) => text(`PROXY TCP4 203.0.113.7 127.0.0.1 4242 ${port}\r\n`),
    ],
    [
      ["--send-proxy", "v2", "--proxy-local"],
      () => encodeProxyHeader({ version: 2, command: "LOCAL" }),
    ],
  ];
  for (const [args, expected] of cases) {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const sending = sendTo(listener.addr.port, [...args, "ping"]);
    using conn = await listener.accept();
    const header = expected(listener.addr.port);
    const bytes = await readExactly(conn, header.length + 4);
    deepEqual(bytes.subarray(0, header.length), header);
    equal(parseProxyHeader(bytes).length, header.length);
    equal(decode(bytes.subarray(header.length)), "ping");
    await writeAll(conn, text("ping"));
    conn.close();
    equal((await sending).code, 0);
  }
});

Deno.test("serve --proxy-trust honours PROXY headers from its networks only, and refuses the rest with one line", async () => {
  const header = text("PROXY TCP4 203.0.113.7 192.0.2.1 4242 443\r\nhi");
  for (
    const [trust, served] of [["10.0.0.0/8,2001:db8::/32", false], ["127.0.0.1", true]] as const
  ) {
    await using server = await ServeProcess.start(
      ["--host", "127.0.0.1", "--proxy-protocol", "v1", "--proxy-trust", trust],
    );
    equal(await roundTrip(server.port, header), served ? "hi" : "");
    await server.stdout.waitForCount(/^waiting for a connection$/, 2);
    equal((await server.stop()).code, 0);
    if (served) match(server.stdout.text, /^connection from \('203\.0\.113\.7', 4242\) via /m);
    else {
      match(
        server.stdout.text,
        /^dropped connection from \('127\.0\.0\.1', \d+\): PROXY header from 127\.0\.0\.1, which is not in a trusted network$/m,
      );
    }
  }
  const bad = await runCli(["serve", "--proxy-protocol", "v1", "--proxy-trust", "10.0.0.0/33"]);
  equal(
    bad.stderr,
    "error: --proxy-trust takes networks in CIDR notation separated by commas, such as " +
      "10.0.0.0/8,2001:db8::/32, not '10.0.0.0/33'\n",
  );
  equal(bad.code, 2);
});
