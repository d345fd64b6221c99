import { equal, match, ok } from "node:assert/strict";
import { makeSelfSignedCertificates } from "../../lib/mod.ts";
import { makeCertificates } from "../certificates.ts";
import { needs, runCli, runProgram, ServeProcess } from "../helpers.ts";

/** Runs openssl with `args`, feeding `input`; its exit code and everything it printed. */
async function openssl(args: string[], input = ""): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await runProgram("openssl", args, input);
  return { code, output: stdout + stderr };
}

Deno.test({
  ...needs("openssl", "serve --tls-self-signed: openssl and send trust the CA it writes out"),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const caFile = `${dir}/ca.pem`;
      await using server = await ServeProcess.start([
        ...["--host", "127.0.0.1", "--tls-self-signed", "--tls-ca-out", caFile],
        ...["--alpn", "echo,h2", "--log", "json"],
      ]);
      const listening = JSON.parse(server.stdout.lines[0]);
      equal(listening.transport, "tls");
      equal(listening.ca_file, caFile);
      const port = String(server.port);

      const sent = await runCli([
        "send",
        "--host",
        "127.0.0.1",
        "-p",
        port,
        "--tls",
        "--ca",
        caFile,
        "--alpn",
        "h2",
        "--json",
        "hi",
      ]);
      equal(sent.stderr, "");
      equal(sent.code, 0);
      const reply = JSON.parse(sent.stdout);
      equal(reply.alpn, "h2");
      ok(reply.tls_handshake_ms > 0);
      const tls = JSON.parse(await server.stdout.waitFor(/"event":"tls"/));
      equal(tls.version, "TLSv1.3");
      equal(tls.alpn, "h2");
      equal(tls.sni, undefined); // an address, so no SNI
      ok(tls.handshake_ms > 0);

      // The chain the server sends verifies with openssl, strictly (-no_ign_eof: it hangs up at
      // the end of its input, without waiting for an echo).
      const client = await openssl([
        ...["s_client", "-connect", `127.0.0.1:${port}`, "-CAfile", caFile],
        ...["-verify_return_error", "-servername", "localhost", "-no_ign_eof"],
      ], "openssl\n");
      equal(client.code, 0, client.output);
      match(client.output, /Verify return code: 0 \(ok\)/);
      const served = JSON.parse(await server.stdout.waitFor(/"event":"tls".*"sni":"localhost"/));
      equal(served.alpn, undefined);

      const text = await runCli(["send", "-p", port, "--tls", "--ca", caFile, "--quiet", "x"]);
      equal(text.code, 0, text.stderr);
      equal((await server.stop()).code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("serve --tls-self-signed writes its CA to a temporary file and removes it at shutdown", async () => {
  const server = await ServeProcess.start(["--tls-self-signed"]);
  const caFile = server.stdout.lines[0].match(/CA certificate in (\S+)\)$/)?.[1] ?? "";
  match(server.stdout.lines[0], /^Starting up on localhost port \d+ \(TLS, CA certificate in /);
  const sent = await runCli([
    "send",
    "-p",
    String(server.port),
    "--tls",
    "--ca",
    caFile,
    "-q",
    "x",
  ]);
  equal(sent.code, 0, sent.stderr);
  equal((await server.stop()).code, 0);
  equal(await Deno.stat(caFile).then(() => "kept", () => "removed"), "removed");
});

Deno.test({
  ...needs(
    "openssl",
    "serve --tls-client-ca: a client without a certificate from that CA fails, one line each side",
  ),
  async fn() {
    await using certificates = await makeCertificates();
    const { dir, ca, cert, key } = certificates;
    const alice = await makeSelfSignedCertificates({ names: ["alice"] });
    const mallory = await makeSelfSignedCertificates({ names: ["mallory"] });
    for (const [name, made] of Object.entries({ alice, mallory })) {
      await Deno.writeTextFile(`${dir}/${name}.pem`, made.cert);
      await Deno.writeTextFile(`${dir}/${name}.key`, made.key);
      await Deno.writeTextFile(`${dir}/${name}-ca.pem`, made.caCert);
    }
    await using server = await ServeProcess.start([
      ...["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", `${dir}/alice-ca.pem`],
    ]);
    const port = String(server.port);
    const send = (...args: string[]) =>
      runCli(["send", "-p", port, "--tls", "--ca", ca, ...args, "-q", "mutual"]);

    const good = await send("--tls-cert", `${dir}/alice.pem`, "--tls-key", `${dir}/alice.key`);
    equal(good.stderr, "");
    equal(good.code, 0);
    await server.stdout.waitFor(/^TLS TLSv1\.3 \S+, SNI localhost, client CN=alice, handshake/);

    // No certificate, or one from another CA: one error line on each side.
    const refusals: [string[], string, string][] = [
      [
        [],
        "the server requires a client certificate (CertificateRequired): pass one with " +
        "--tls-cert FILE --tls-key FILE after 0 of 6 bytes came back",
        "the client sent no certificate, and one is required",
      ],
      [
        ["--tls-cert", `${dir}/mallory.pem`, "--tls-key", `${dir}/mallory.key`],
        "the server closed the connection (right after the TLS handshake: did it refuse " +
        "the client certificate?): 0 of 6 bytes came back",
        "client certificate refused: CN=mallory is not signed by a CA of the client CA file",
      ],
    ];
    // node:tls in Deno 2.9.6 sometimes closes before its certificate_required alert leaves (about
    // 1 in 15 on a busy machine): the client then sees the end without the alert. That is the one
    // other line allowed.
    const noAlert = "peer closed connection without sending TLS close_notify after 0 of 6 bytes " +
      "came back";
    for (const [args, clientError, serverReason] of refusals) {
      const refused = await send(...args);
      const alertLost = args.length === 0 && refused.stderr === `error: ${noAlert}\n`;
      if (!alertLost) equal(refused.stderr, `error: ${clientError}\n`);
      equal(refused.code, 1);
      const line = await server.stdout.waitFor(`TLS handshake failed: ${serverReason}`);
      match(line, /^lost connection from \('127\.0\.0\.1', \d+\): TLS handshake failed: /);
    }
    equal((await server.stop()).code, 0);
    equal(server.stderr.text, "");
  },
});

Deno.test({
  ...needs("openssl", "a CA certificate as the server's: serve warns, send says what to do"),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      // The certificate almost everyone makes first: openssl req -x509 says CA:TRUE.
      const made = await openssl([
        ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
        ...["-keyout", `${dir}/key.pem`, "-out", `${dir}/cert.pem`, "-subj", "/CN=localhost"],
        ...["-days", "2"],
      ]);
      equal(made.code, 0, made.output);
      await using server = await ServeProcess.start([
        ...["--tls-cert", `${dir}/cert.pem`, "--tls-key", `${dir}/key.pem`],
      ]);
      const warning = await server.stderr.waitFor(/^warning: /);
      ok(
        warning.startsWith(
          `warning: ${dir}/cert.pem is a CA certificate (basicConstraints CA:TRUE`,
        ),
      );
      const sent = await runCli([
        "send",
        "-p",
        String(server.port),
        "--tls",
        "--ca",
        `${dir}/cert.pem`,
        "x",
      ]);
      equal(sent.code, 1);
      match(
        sent.stderr,
        /^error: cannot connect to localhost port \d+: TLS handshake failed: the server's certificate is a CA certificate used as a server certificate \(CaUsedAsEndEntity\), which rustls refuses: give the server a leaf certificate with basicConstraints CA:FALSE, e\.g\. openssl req .*, or run it with --tls-self-signed\n$/,
      );

      // The recipe the message gives makes a certificate that works.
      const recipe = sent.stderr.match(/e\.g\. (openssl req .*), or run it/)![1].split(" ");
      const remade = await new Deno.Command(recipe[0], {
        args: recipe.slice(1),
        cwd: dir,
        stderr: "null",
      }).output();
      equal(remade.code, 0);
      await using fixed = await ServeProcess.start([
        ...["--tls-cert", `${dir}/cert.pem`, "--tls-key", `${dir}/key.pem`],
      ]);
      const ok2 = await runCli([
        "send",
        "-p",
        String(fixed.port),
        "--tls",
        "--ca",
        `${dir}/cert.pem`,
        "-q",
        "x",
      ]);
      equal(ok2.stderr, "");
      equal(ok2.code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("bench --tls reports the handshake times, in text and JSON", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using server = await ServeProcess.start([
      "-q",
      "--tls-self-signed",
      "--tls-ca-out",
      `${dir}/ca.pem`,
    ]);
    const args = [
      "bench",
      "-p",
      String(server.port),
      "--tls",
      "--ca",
      `${dir}/ca.pem`,
      "-c",
      "2",
      "-n",
      "5",
    ];
    const text = await runCli(args);
    equal(text.code, 0, text.stderr);
    match(
      text.stdout,
      /\nTLS handshakes: p50 [\d,.]+ (µs|ms), p99 [\d,.]+ (µs|ms), max [\d,.]+ (µs|ms)\n/,
    );
    const json = JSON.parse((await runCli([...args, "--json"])).stdout);
    ok(json.handshake_us.p50 > 0 && json.handshake_us.max >= json.handshake_us.p50);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("send --tls through node:tls (--insecure) says unknown host and missing permission like plain TCP", async () => {
  const unknown = await runCli([
    "send",
    "--tls",
    "--insecure",
    "-q",
    "--host",
    "nonexistent.invalid",
    "x",
  ]);
  equal(unknown.stderr, "error: cannot connect to nonexistent.invalid port 10000: unknown host\n");
  equal(unknown.code, 1);
  const denied = await runCli(["send", "--tls", "--insecure", "-q", "-p", "9", "x"], {
    permissions: ["--allow-read"],
  });
  equal(
    denied.stderr,
    "error: cannot connect to localhost port 9: missing permission, run deno with " +
      "--allow-net=localhost:9\n",
  );
  equal(denied.code, 1);
});
