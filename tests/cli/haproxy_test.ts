/**
 * The PROXY protocol against the real thing: HAProxy (Debian's package) sending headers to
 * `serve --proxy-protocol`, and parsing the headers `send --send-proxy` sends.
 *
 * @module
 */

import { deepEqual, doesNotMatch, equal, match } from "node:assert/strict";
import { makeCertificates, type TestCertificates } from "../certificates.ts";
import {
  connect,
  freePort,
  hasProgram,
  readToEnd,
  sendTo,
  ServeProcess,
  skipUnless,
  startHaproxy,
  writeAll,
} from "../helpers.ts";

const HAPROXY = hasProgram("haproxy");

/** The start of every configuration: TCP mode, short timeouts, HAProxy's log on its stderr. */
const DEFAULTS = `global
  log stderr format raw local0 info
  maxconn 256
defaults
  mode tcp
  log global
  timeout connect 2s
  timeout client 10s
  timeout server 10s
`;

/** A test that runs only where HAProxy is installed, and says so in its name otherwise. */
function haproxyTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ ...skipUnless(HAPROXY, "haproxy is not installed", name), fn });
}

const text = (s: string) => new TextEncoder().encode(s);

/** `serve --proxy-protocol VERSION --log json` on a free loopback port. */
function serveProxied(version: string): Promise<ServeProcess> {
  return ServeProcess.start(["--host", "127.0.0.1", "--proxy-protocol", version, "--log", "json"]);
}

/** The JSON log's `connected` events, without their times. */
function connectedEvents(server: ServeProcess): Record<string, unknown>[] {
  return server.stdout.lines.filter((line) => line.includes('"event":"connected"'))
    .map((line) => JSON.parse(line)).map(({ time: _, ...event }) => event);
}

/** Sends `message` through `port`, half-closes, and checks that all of it came back. */
async function echoThrough(port: number, message: string): Promise<Deno.NetAddr> {
  using conn = await connect(port);
  await writeAll(conn, text(message));
  await conn.closeWrite();
  equal(new TextDecoder().decode(await readToEnd(conn)), message);
  return conn.localAddr;
}

haproxyTest(
  "HAProxy send-proxy (v1): serve logs the real client and HAProxy as the proxy",
  async () => {
    await using server = await serveProxied("v1");
    const port = freePort();
    await using _haproxy = await startHaproxy(`${DEFAULTS}
frontend clients
  bind 127.0.0.1:${port}
  default_backend echo
backend echo
  server tcpecho 127.0.0.1:${server.port} send-proxy
`);
    const client = await echoThrough(port, "through HAProxy");
    await server.stdout.waitFor('"event":"closed"');
    const [event] = connectedEvents(server);
    match(String(event.proxy), /^127\.0\.0\.1:\d+$/);
    deepEqual({ ...event, proxy: "HAPROXY" }, {
      conn: 1,
      peer: `127.0.0.1:${client.port}`,
      event: "connected",
      proxied_peer: `127.0.0.1:${client.port}`,
      proxy: "HAPROXY",
      proxy_version: 1,
      proxy_command: "PROXY",
    });
  },
);

haproxyTest(
  "HAProxy send-proxy-v2 with a CRC32C and a unique id: both TLVs logged, the CRC checked",
  async () => {
    await using server = await serveProxied("v2");
    const port = freePort();
    await using _haproxy = await startHaproxy(`${DEFAULTS}
frontend clients
  bind 127.0.0.1:${port}
  unique-id-format req-%{+X}o%ci:%cp
  default_backend echo
backend echo
  server tcpecho 127.0.0.1:${server.port} send-proxy-v2 proxy-v2-options crc32c,unique-id
`);
    const client = await echoThrough(port, "with TLVs");
    await server.stdout.waitFor('"event":"closed"');
    const [event] = connectedEvents(server);
    equal(event.peer, `127.0.0.1:${client.port}`);
    equal(event.proxy_version, 2);
    const tlvs = event.tlvs as Record<string, string>;
    match(tlvs.crc32c, /^[\da-f]{8}$/);
    const uniqueId = new TextDecoder().decode(
      Uint8Array.from(tlvs.unique_id.match(/../g)!, (byte) => parseInt(byte, 16)),
    );
    equal(uniqueId, `req-7F000001:${client.port.toString(16).toUpperCase().padStart(4, "0")}`);
  },
);

/** A client certificate for `cn`, signed by the test CA, and HAProxy's certificate file. */
async function clientCertificate(certs: TestCertificates, cn: string) {
  const run = async (args: string[]) => {
    const { success, stderr } = await new Deno.Command("openssl", {
      args,
      cwd: certs.dir,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!success) throw new Error(new TextDecoder().decode(stderr));
  };
  await run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    .concat(["-keyout", "client.key", "-out", "client.csr", "-subj", `/CN=${cn}`]));
  await Deno.writeTextFile(
    `${certs.dir}/client.ext`,
    "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
  );
  await run(["x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key"]
    .concat(["-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "client.ext"]));
  // HAProxy reads the server's certificate and key from one file.
  const bundle = `${certs.dir}/haproxy.pem`;
  await Deno.writeTextFile(
    bundle,
    (await Deno.readTextFile(certs.cert)) + (await Deno.readTextFile(certs.key)),
  );
  return {
    cert: await Deno.readTextFile(`${certs.dir}/client.pem`),
    key: await Deno.readTextFile(`${certs.dir}/client.key`),
    bundle,
  };
}

haproxyTest(
  "HAProxy as the TLS terminator with send-proxy-v2-ssl and -ssl-cn: serve logs ALPN, SNI, TLS version and the client's CN",
  async () => {
    await using certs = await makeCertificates();
    const client = await clientCertificate(certs, "alice.example");
    await using server = await serveProxied("v2");
    const [plain, mutual] = [freePort(), freePort()];
    await using _haproxy = await startHaproxy(`${DEFAULTS}
frontend tls
  bind 127.0.0.1:${plain} ssl crt ${client.bundle} alpn h2,http/1.1
  default_backend ssl
frontend mtls
  bind 127.0.0.1:${mutual} ssl crt ${client.bundle} ca-file ${certs.ca} verify required
  default_backend ssl_cn
backend ssl
  server tcpecho 127.0.0.1:${server.port} send-proxy-v2-ssl proxy-v2-options authority
backend ssl_cn
  server tcpecho 127.0.0.1:${server.port} send-proxy-v2-ssl-cn
`);
    const caCerts = [await Deno.readTextFile(certs.ca)];
    for (
      const [port, identity] of [[plain, {}], [mutual, { cert: client.cert, key: client.key }]]
    ) {
      using conn = await Deno.connectTls({
        hostname: "localhost",
        port: port as number,
        caCerts,
        alpnProtocols: ["h2"],
        ...identity as object,
      });
      await writeAll(conn, text("over TLS"));
      await conn.closeWrite();
      equal(new TextDecoder().decode(await readToEnd(conn)), "over TLS");
    }
    await server.stdout.waitForCount(/"event":"closed"/, 2);
    const [first, second] = connectedEvents(server).map((event) => event.tlvs);
    deepEqual(first, {
      alpn: "h2",
      authority: "localhost",
      ssl: { client: ["ssl"], verify: 0, version: "TLSv1.3" },
    });
    deepEqual(second, {
      ssl: {
        client: ["ssl", "cert-conn", "cert-sess"],
        verify: 0,
        version: "TLSv1.3",
        cn: "alice.example",
      },
    });
  },
);

haproxyTest(
  "HAProxy check-send-proxy health checks arrive as PROXY v2 LOCAL and are served",
  async () => {
    await using server = await serveProxied("v2");
    await using _haproxy = await startHaproxy(`${DEFAULTS}
backend echo
  server tcpecho 127.0.0.1:${server.port} check send-proxy-v2 check-send-proxy inter 100ms
`);
    // HAProxy starts a server as up: a check shows only as the connection it makes.
    await server.stdout.waitFor('"event":"closed"');
    const [check] = connectedEvents(server);
    match(String(check.peer), /^127\.0\.0\.1:\d+$/);
    deepEqual({ ...check, peer: "P", proxy: "P" }, {
      conn: 1,
      peer: "P",
      event: "connected",
      proxy: "P",
      proxy_version: 2,
      proxy_command: "LOCAL",
      tlvs: {},
    });
    equal(check.peer, check.proxy);
  },
);

haproxyTest(
  "send --send-proxy v1 and v2 into HAProxy's accept-proxy: the claimed client reaches serve through HAProxy's parser",
  async () => {
    await using server = await serveProxied("v2");
    const port = freePort();
    await using haproxy = await startHaproxy(`${DEFAULTS}
frontend relay
  bind 127.0.0.1:${port} accept-proxy
  default_backend echo
backend echo
  server tcpecho 127.0.0.1:${server.port} send-proxy-v2
`);
    const claims = [
      ["v1", "203.0.113.7:4242", "192.0.2.1:443", "203.0.113.7:4242", "192.0.2.1:443"],
      ["v2", "[2001:db8::7]:4242", "[2001:db8::1]:443", "2001:db8::7:4242", "2001:db8::1:443"],
    ];
    for (const [version, source, dest] of claims) {
      const sent = await sendTo(port, [
        "--send-proxy",
        version,
        "--proxy-source",
        source,
        "--proxy-dest",
        dest,
        "relayed",
      ]);
      equal(sent.code, 0, sent.stderr);
    }
    await server.stdout.waitForCount(/"event":"closed"/, 2);
    deepEqual(connectedEvents(server).map((event) => event.peer), [
      "203.0.113.7:4242",
      "[2001:db8::7]:4242",
    ]);
    // HAProxy's own log says it read the same addresses.
    for (const [, , , from, to] of claims) {
      await haproxy.log.waitFor(`Connect from ${from} to ${to} (relay/TCP)`);
    }
  },
);

haproxyTest(
  "HAProxy passing TLS through with send-proxy-v2: serve reads the header, then runs the handshake itself",
  async () => {
    await using certs = await makeCertificates();
    await using server = await ServeProcess.start([
      ...["--host", "127.0.0.1", "--tls-cert", certs.cert, "--tls-key", certs.key],
      ...["--proxy-protocol", "v2", "--log", "json"],
    ]);
    const port = freePort();
    await using _haproxy = await startHaproxy(`${DEFAULTS}
frontend pass_through
  bind 127.0.0.1:${port}
  default_backend tls
backend tls
  server tcpecho 127.0.0.1:${server.port} send-proxy-v2
`);
    using conn = await Deno.connectTls({
      hostname: "localhost",
      port,
      caCerts: [await Deno.readTextFile(certs.ca)],
    });
    await writeAll(conn, text("passed through"));
    await conn.closeWrite();
    equal(new TextDecoder().decode(await readToEnd(conn)), "passed through");
    await server.stdout.waitFor('"event":"closed"');
    const [event] = connectedEvents(server);
    equal(event.peer, `127.0.0.1:${conn.localAddr.port}`);
    equal(event.proxy_version, 2);
    const tls = JSON.parse(await server.stdout.waitFor('"event":"tls"'));
    equal(tls.version, "TLSv1.3");
    equal(tls.sni, "localhost");
  },
);

haproxyTest(
  "HAProxy's health checks, plain and with send-proxy-v2, are counted as health checks, never as errors",
  async () => {
    const start = (...args: string[]) =>
      ServeProcess.start(["--host", "127.0.0.1", ...args, "--metrics", "127.0.0.1:0"]);
    await using plain = await start();
    await using proxied = await start("--proxy-protocol", "v2");
    const metricsOf = async (server: ServeProcess) => {
      const base = (await server.stdout.waitFor(/^metrics at /)).match(/(http:\/\/[^/]+)/)![1];
      return await (await fetch(`${base}/metrics`)).text();
    };
    const port = freePort();
    await using _haproxy = await startHaproxy(`${DEFAULTS}
frontend relay
  bind 127.0.0.1:${port}
  default_backend proxied
backend plain
  server tcpecho 127.0.0.1:${plain.port} check inter 200ms
backend proxied
  server tcpecho 127.0.0.1:${proxied.port} check send-proxy-v2 check-send-proxy inter 200ms
`);
    // A LOCAL header, then the end: the proxy itself, checking. Three of them take two intervals,
    // in which the plain server got its checks too. On a busy machine a check may end before the
    // server accepts it: a health check all the same, logged without its peer.
    await proxied.stdout.waitForCount(
      /^health check (from \('127\.0\.0\.1', \d+\)|\(ended before its accept\))$/,
      3,
    );
    const checks = (await metricsOf(proxied)).match(/reason="health_check"\} (\d+)/)?.[1];
    equal(Number(checks) >= 3, true, `health checks counted: ${checks}`);
    for (const server of [plain, proxied]) {
      const body = await metricsOf(server);
      for (const reason of ["reset", "error", "eof", "proxy"]) {
        match(body, new RegExp(`tcpecho_connections_closed_total\\{reason="${reason}"\\} 0\n`));
      }
      equal((await server.stop()).code, 0);
      equal(server.stderr.text, "");
      doesNotMatch(server.stdout.text, /no data from|lost connection|dropped connection|error/);
    }
  },
);
