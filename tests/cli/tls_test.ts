import { deepEqual, doesNotMatch, equal, match } from "node:assert/strict";
import { sendAndVerify, startEchoServer } from "../../lib/mod.ts";
import { makeCertificates } from "../certificates.ts";
import {
  exited,
  LineCollector,
  needs,
  NO_BENCH_ERRORS,
  normalisePeers,
  runCli,
  ServeProcess,
  within,
} from "../helpers.ts";

/** Sends `text` through `openssl s_client`, keeping its input open until the echo is back. */
async function sClientRoundTrip(port: number, ca: string, text: string): Promise<string> {
  const child = new Deno.Command("openssl", {
    args: [
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      "-CAfile",
      ca,
      "-verify_return_error",
      "-quiet",
      "-no_ign_eof",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(10_000),
  }).spawn();
  const stdout = new LineCollector(child.stdout);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(`${text}\n`));
  const echoed = await stdout.waitFor(text);
  await writer.close();
  await exited(child, "openssl s_client");
  await stdout.done;
  return echoed;
}

Deno.test({
  ...needs(
    "openssl",
    "serve over TLS echoes to our client and to openssl s_client, and survives a failed handshake",
  ),
  async fn() {
    await using certificates = await makeCertificates();
    const { ca, otherCa, cert, key } = certificates;
    await using server = await ServeProcess.start(["--tls-cert", cert, "--tls-key", key]);
    const port = String(server.port);
    await server.stdout.waitFor(`Starting up on localhost port ${port} (TLS)`);

    const ours = await runCli(["send", "--port", port, "--tls", "--ca", ca, "over TLS"]);
    equal(ours.stderr, "");
    equal(
      ours.stdout,
      `connecting to localhost port ${port} (TLS)\nsending b'over TLS'\n` +
        "received b'over TLS'\nclosing socket\n",
    );
    equal(ours.code, 0);

    equal(await sClientRoundTrip(server.port, ca, "hello from s_client"), "hello from s_client");

    // Trusting the wrong CA, or none, fails the handshake in one line; the server carries on.
    for (const trust of [["--ca", otherCa], []]) {
      const refused = await runCli(["send", "--port", port, "--tls", ...trust, "x"]);
      equal(refused.code, 1);
      equal(
        refused.stderr,
        `error: cannot connect to localhost port ${port}: TLS handshake failed: ` +
          "the server's certificate is not signed by a CA this client trusts (UnknownIssuer): " +
          "pass the CA certificate that signed it with --ca FILE\n",
      );
    }
    await server.stdout.waitForCount(/TLS handshake failed: received fatal alert: UnknownCA/, 2);

    // --insecure really skips verification: no CA given, and still a verified echo.
    const insecure = await runCli(["send", "--port", port, "--tls", "--insecure", "--json", "x"]);
    equal(insecure.code, 0);
    equal(insecure.stderr, "warning: --insecure: the server's certificate is not checked\n");
    match(insecure.stdout, /"transport":"tls".*"bytes_received":1,"matched":true/);

    // A plain TCP client gets a TLS alert, not an echo, and the server still serves.
    const plain = await runCli(["send", "--port", port, "--quiet", "plain"]);
    equal(plain.code, 1);
    const again = await runCli(["send", "--port", port, "--tls", "--ca", ca, "--quiet", "again"]);
    equal(again.code, 0);

    equal((await server.stop()).code, 0);
    equal(server.stdout.lines.at(-1), "shut down: 7 connections, 34 bytes echoed");
    match(
      normalisePeers(server.stdout.text),
      /\('127\.0\.0\.1', PORT\)\nTLS TLSv1\.3 TLS_\w+, SNI [^,]+, handshake [\d.]+ ms\nreceived b'hello from s_cli'\n.*\nreceived b'ent\\n'\n/,
    );
    equal(server.stderr.text, "");
  },
});

Deno.test({
  ...needs(
    "openssl",
    "TLS setup mistakes are one-line errors: missing, unreadable or bad files, bad flag mixes",
  ),
  async fn() {
    await using certificates = await makeCertificates();
    const { dir, ca, cert, key } = certificates;
    const cases: [string[], number, string][] = [
      [
        ["serve", "--tls-cert", `${dir}/missing.pem`, "--tls-key", key],
        1,
        `cannot read TLS certificate '${dir}/missing.pem': no such file or directory`,
      ],
      [
        ["serve", "--port", "0", "--tls-cert", key, "--tls-key", key],
        1,
        `${key} (--tls-cert) holds a private key, not a certificate`,
      ],
      [
        ["serve", "--port", "0", "--tls-cert", ca, "--tls-key", key],
        1,
        `the key in ${key} (--tls-key) does not match the certificate in ${ca} (--tls-cert)`,
      ],
      [
        ["serve", "--tls-cert", cert],
        2,
        "--tls-cert and --tls-key go together: give both (see 'tcpecho serve --help')",
      ],
      [
        ["send", "--tls", "--ca", `${dir}/missing.pem`],
        1,
        `cannot read CA certificate '${dir}/missing.pem': no such file or directory`,
      ],
      [
        ["send", "--tls", "--ca", "README.md"],
        1,
        "README.md (--ca) holds no PEM certificate (no '-----BEGIN CERTIFICATE-----' line)",
      ],
      [
        ["send", "--tls", "--ca", key],
        1,
        `${key} (--ca) holds a private key, not a certificate`,
      ],
      [
        ["send", "--tls", "--tls-cert", cert, "--tls-key", `${dir}/other-ca.key`],
        1,
        `the key in ${dir}/other-ca.key (--tls-key) does not match the certificate in ${cert} ` +
        "(--tls-cert)",
      ],
      [
        ["serve", "--port", "0", "--tls-self-signed", "--tls-cert", cert, "--tls-key", key],
        2,
        "give either --tls-self-signed or --tls-cert and --tls-key, not both " +
        "(see 'tcpecho serve --help')",
      ],
      [
        ["serve", "--alpn", "echo"],
        2,
        "--alpn needs TLS: add --tls-cert and --tls-key, or --tls-self-signed " +
        "(see 'tcpecho serve --help')",
      ],
      [
        ["serve", "--tls-self-signed", "--tls-client-ca", cert, "--alpn", ",x"],
        2,
        "--alpn takes protocol names of 1 to 255 bytes separated by commas, such as h2,http/1.1, " +
        "not ',x'",
      ],
      [["send", "--tls-cert", cert], 2, "--tls-cert needs --tls (see 'tcpecho send --help')"],
      [["send", "--insecure"], 2, "--insecure needs --tls (see 'tcpecho send --help')"],
      [
        ["send", "--tls", "--udp"],
        2,
        "--tls works over TCP only, not with --udp (see 'tcpecho send --help')",
      ],
    ];
    for (const [args, code, message] of cases) {
      const result = await runCli(args);
      equal(result.stderr, `error: ${message}\n`, args.join(" "));
      equal(result.code, code, args.join(" "));
    }
  },
});

Deno.test({
  ...needs(
    "openssl",
    "library: startEchoServer speaks TLS to sendAndVerify with a CA or without checks",
  ),
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using certificates = await makeCertificates();
    const { ca, cert, key } = certificates;
    const tls = { cert: await Deno.readTextFile(cert), key: await Deno.readTextFile(key) };
    await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0, tls });
    const message = new TextEncoder().encode("x".repeat(100_000));
    for (const clientTls of [{ caCerts: [await Deno.readTextFile(ca)] }, { insecure: true }]) {
      const result = await sendAndVerify({
        hostname: "127.0.0.1",
        port: server.addr.port,
        tls: clientTls,
        message,
        bufferSize: 64 * 1024,
      });
      equal(result.bytesReceived, message.length);
    }
  },
});

Deno.test({
  ...needs(
    "openssl",
    "library: shutdown does not wait the drain timeout for a client stuck in its TLS handshake",
  ),
  async fn() {
    await using certificates = await makeCertificates();
    const tls = {
      cert: await Deno.readTextFile(certificates.cert),
      key: await Deno.readTextFile(certificates.key),
    };
    const connected = Promise.withResolvers<void>();
    const server = await startEchoServer({
      hostname: "127.0.0.1",
      port: 0,
      tls,
      onEvent: (event) => event.type === "connected" && connected.resolve(),
    });
    // Plain TCP that never sends a ClientHello: the server waits in the handshake.
    using _silent = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    await connected.promise;
    await within(
      "shutdown to close a connection still in its TLS handshake",
      server.shutdown(3_600_000),
    );
    equal(server.stats.open, 0);
  },
});

Deno.test("send --tls gives up on a server that never answers the handshake", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  const result = await runCli(
    ["send", "--host", "127.0.0.1", "--port", String(listener.addr.port), "--tls", "-t", "0.3"],
  );
  equal(
    result.stderr,
    `error: cannot connect to 127.0.0.1 port ${listener.addr.port}: timed out after 0.3 s\n`,
  );
  equal(result.code, 1);
  listener.close();
  await accepting.catch(() => {});
  for (const conn of held) conn.close();
});

Deno.test({
  ...needs("openssl", "bench --tls and send --tls --count load and ping serve over TLS"),
  async fn() {
    await using certificates = await makeCertificates();
    const { ca, cert, key } = certificates;
    await using server = await ServeProcess.start(
      ["--host", "127.0.0.1", "--quiet", "--tls-cert", cert, "--tls-key", key],
    );
    const port = String(server.port);
    const client = ["--host", "127.0.0.1", "--port", port, "--tls", "--ca", ca];

    const bench = await runCli(
      ["bench", ...client, "-c", "4", "-s", "100", "-w", "2", "--count", "50", "--json"],
    );
    equal(bench.stderr, "");
    equal(bench.code, 0);
    const report = JSON.parse(bench.stdout);
    deepEqual(
      [report.target, report.messages, report.bytes, report.errors, report.ok],
      [
        `127.0.0.1:${port}`,
        200,
        20_000,
        NO_BENCH_ERRORS,
        true,
      ],
    );

    const ping = await runCli(["send", ...client, "--count", "3", "--interval", "0"]);
    equal(ping.stderr, "");
    equal(ping.code, 0);
    const lines = ping.stdout.trimEnd().split("\n");
    equal(lines.length, 7, ping.stdout);
    equal(lines[0], `ECHO 127.0.0.1 (127.0.0.1) port ${port} (TLS): 91 bytes per message`);
    for (const [index, line] of lines.slice(1, 4).entries()) {
      match(line, new RegExp(`^91 bytes from 127\\.0\\.0\\.1 port ${port}: seq=${index + 1} `));
    }
    equal(lines[4], `--- 127.0.0.1 port ${port} echo statistics ---`);
    match(lines[5], /^3 messages sent, 3 received, 0% loss, time \d+ms$/);

    // The server saw every byte of both: four bench connections and one ping connection.
    equal((await server.stop()).code, 0);
    equal(server.stdout.lines.at(-1), "shut down: 5 connections, 20,273 bytes echoed");
    // No warning and no error; a `draining` line may appear if the last client's close raced the
    // signal.
    doesNotMatch(server.stderr.text, /warning|error/);
  },
});
