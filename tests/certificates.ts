/**
 * Throw-away TLS certificates for the tests, made with `openssl`: a CA, a leaf it signs for
 * 127.0.0.1, ::1 and localhost, and a second CA that signed nothing (for the wrong-CA case).
 *
 * @module
 */

/** Paths of the PEM files, all inside `dir`, which disposing removes. */
export interface TestCertificates extends AsyncDisposable {
  dir: string;
  /** The CA that signed the leaf. */
  ca: string;
  /** A CA that did not sign the leaf. */
  otherCa: string;
  /** The server's leaf certificate. */
  cert: string;
  /** The leaf's private key. */
  key: string;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const { success, stderr } = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(stderr)}`);
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function makeCa(dir: string, name: string): Promise<void> {
  return openssl(dir, [
    "req",
    "-x509",
    ...EC_KEY,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-subj",
    `/CN=tcpecho test ${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign",
  ]);
}

/**
 * Makes the certificates in a new temporary directory. Deno accepts the leaf only because it says
 * `basicConstraints=CA:FALSE` and names the addresses in subjectAltName.
 */
export async function makeCertificates(): Promise<TestCertificates> {
  const dir = await Deno.makeTempDir({ prefix: "tcpecho-tls-" });
  await Promise.all([makeCa(dir, "ca"), makeCa(dir, "other-ca")]);
  await openssl(dir, [
    "req",
    ...EC_KEY,
    "-keyout",
    "key.pem",
    "-out",
    "leaf.csr",
    "-subj",
    "/CN=localhost",
  ]);
  await Deno.writeTextFile(
    `${dir}/leaf.ext`,
    "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n" +
      "extendedKeyUsage=serverAuth\n",
  );
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "cert.pem",
    "-days",
    "2",
    "-extfile",
    "leaf.ext",
  ]);
  return {
    dir,
    ca: `${dir}/ca.pem`,
    otherCa: `${dir}/other-ca.pem`,
    cert: `${dir}/cert.pem`,
    key: `${dir}/key.pem`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}
