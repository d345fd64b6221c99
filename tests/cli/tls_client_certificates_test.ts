import { doesNotMatch, equal, match } from "node:assert/strict";
import { needs, runCli, runProgram, ServeProcess } from "../helpers.ts";

/** Runs openssl in `dir`; fails the test with what it said if it fails. */
async function openssl(dir: string, ...args: string[]): Promise<void> {
  const result = await runProgram("sh", ["-c", `cd "$0" && openssl "$@"`, dir, ...args]);
  equal(result.code, 0, result.stderr);
}

const P256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
const P384 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1", "-nodes"];

/** A self-signed CA `name` with `subject`, its key made with `key`. */
function makeCa(dir: string, name: string, subject: string, key: string[]): Promise<void> {
  return openssl(
    dir,
    ...["req", "-x509", ...key, "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2"],
    ...["-subj", subject, "-addext", "basicConstraints=critical,CA:TRUE"],
    ...["-addext", "keyUsage=critical,keyCertSign"],
  );
}

/** A client certificate `name` with `subject`, signed by the CA `ca`. */
async function makeClient(dir: string, name: string, subject: string, ca: string): Promise<void> {
  await openssl(
    dir,
    "req",
    ...P256,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    subject,
  );
  await Deno.writeTextFile(
    `${dir}/${name}.ext`,
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
  );
  await openssl(
    dir,
    ...["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`],
    ...["-out", `${name}.pem`, "-days", "1", "-extfile", `${name}.ext`],
  );
}

Deno.test({
  ...needs(
    "openssl",
    "serve --tls-client-ca: a certificate signed on another curve in the CA's name is refused " +
      "without a crash, and a subject's control characters reach the log escaped",
  ),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "tcpecho-client-certs-" });
    try {
      await makeCa(dir, "ca", "/CN=tcpecho client CA", P256);
      // The same name on a P-384 key: a signature the real CA's key cannot even check.
      await makeCa(dir, "impostor", "/CN=tcpecho client CA", P384);
      await makeClient(dir, "alice", "/CN=alice", "ca");
      await makeClient(dir, "mallory", "/CN=mallory", "impostor");
      await makeClient(dir, "evil", `/CN=evil\r\x1b[31mred`, "impostor");
      await using server = await ServeProcess.start([
        ...["--host", "127.0.0.1", "--tls-self-signed", "--tls-ca-out", `${dir}/server-ca.pem`],
        ...["--tls-client-ca", `${dir}/ca.pem`],
      ]);
      const send = (name: string) =>
        runCli([
          ...["send", "--host", "127.0.0.1", "-p", String(server.port), "--tls"],
          ...["--ca", `${dir}/server-ca.pem`, "--tls-cert", `${dir}/${name}.pem`],
          ...["--tls-key", `${dir}/${name}.key`, "-q", "mutual"],
        ]);
      for (const name of ["mallory", "evil"]) {
        const refused = await send(name);
        equal(refused.code, 1, refused.stderr);
      }
      await server.stdout.waitForCount(/client certificate refused/, 2);
      const good = await send("alice");
      equal(good.stderr, "");
      equal(good.code, 0);
      await server.stdout.waitFor(/client CN=alice, handshake/);
      equal((await server.stop()).code, 0);
      const log = server.stdout.text;
      match(log, /client certificate refused: .*CN=evil\\x0d\\x1b\[31mred/);
      // The control characters themselves must not reach the log.
      // deno-lint-ignore no-control-regex
      doesNotMatch(log, /[\r\x1b]/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
