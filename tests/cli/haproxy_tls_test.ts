import { equal, match } from "node:assert/strict";
import { makeSelfSignedCertificates } from "../../lib/mod.ts";
import { freePort, needs, runCli, ServeProcess, startHaproxy } from "../helpers.ts";

const DEFAULTS = `global
  maxconn 64
defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s
`;

Deno.test({
  ...needs("haproxy", "TLS through HAProxy, passed through in TCP mode and terminated by it"),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const made = await makeSelfSignedCertificates();
      const ca = `${dir}/ca.pem`;
      await Deno.writeTextFile(ca, made.caCert);
      // HAProxy takes the chain and its key in one file.
      await Deno.writeTextFile(`${dir}/haproxy.pem`, made.cert + made.key);
      await Deno.writeTextFile(`${dir}/cert.pem`, made.cert);
      await Deno.writeTextFile(`${dir}/key.pem`, made.key);

      await using tls = await ServeProcess.start([
        ...["--host", "127.0.0.1", "--tls-cert", `${dir}/cert.pem`, "--tls-key", `${dir}/key.pem`],
      ]);
      await using plain = await ServeProcess.start(["--host", "127.0.0.1"]);
      const [passThrough, terminator] = [freePort(), freePort()];
      await using _haproxy = await startHaproxy(`${DEFAULTS}
frontend pass_through
  bind 127.0.0.1:${passThrough}
  default_backend tcpecho_tls
backend tcpecho_tls
  server tls 127.0.0.1:${tls.port}
frontend terminator
  bind 127.0.0.1:${terminator} ssl crt ${dir}/haproxy.pem
  default_backend tcpecho_plain
backend tcpecho_plain
  server plain 127.0.0.1:${plain.port}
`);

      // Passed through: the handshake is ours end to end, and our log sees the client's SNI.
      const through = await runCli([
        "send",
        "-p",
        `${passThrough}`,
        "--tls",
        "--ca",
        ca,
        "-q",
        "through",
      ]);
      equal(through.stderr, "");
      equal(through.code, 0);
      match(
        await tls.stdout.waitFor(/^TLS /),
        /^TLS TLSv1\.3 TLS_\w+, SNI localhost, handshake [\d.]+ ms$/,
      );
      await tls.stdout.waitFor("received b'through'");

      // Terminated by HAProxy: the client checks HAProxy's certificate, our server sees plain TCP.
      const ended = await runCli([
        "send",
        "-p",
        `${terminator}`,
        "--tls",
        "--ca",
        ca,
        "-q",
        "ended",
      ]);
      equal(ended.stderr, "");
      equal(ended.code, 0);
      await plain.stdout.waitFor("received b'ended'");
      equal(plain.stdout.lines.some((line) => line.startsWith("TLS ")), false);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
