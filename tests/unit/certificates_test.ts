import { equal, ok, throws } from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import {
  checkCertifiedKey,
  explainCertificateError,
  makeSelfSignedCertificates,
  parseCertificates,
  parsePrivateKey,
  RuntimeError,
  serverCertificateProblem,
} from "../../lib/mod.ts";

const made = await makeSelfSignedCertificates();
const other = await makeSelfSignedCertificates();

Deno.test("parseCertificates reads a chain and names the file when it holds no certificate", () => {
  equal(parseCertificates(made.cert, "cert.pem").length, 2);
  throws(() => parseCertificates("", "empty.pem"), {
    message: "empty.pem holds no PEM certificate (no '-----BEGIN CERTIFICATE-----' line)",
  });
  throws(() => parseCertificates(made.key, "key.pem"), {
    message: "key.pem holds a private key, not a certificate",
  });
  const broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  throws(() => parseCertificates(broken, "broken.pem"), {
    message: "broken.pem: its certificate is not a valid X.509 certificate",
  });
});

Deno.test("parsePrivateKey reads a key and names the file when it holds something else", () => {
  equal(parsePrivateKey(made.key, "key.pem").asymmetricKeyType, "ec");
  throws(() => parsePrivateKey(made.cert, "cert.pem"), {
    message: "cert.pem holds a certificate, not a private key",
  });
  throws(() => parsePrivateKey("hello\n", "notes.txt"), {
    message: "notes.txt holds no PEM private key (no '-----BEGIN PRIVATE KEY-----' line)",
  });
  const encrypted =
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n-----END ENCRYPTED PRIVATE KEY-----\n";
  throws(
    () => parsePrivateKey(encrypted, "locked.pem"),
    /locked\.pem holds an encrypted private key/,
  );
  // The command it suggests can be pasted as it is: the flag's name stays outside it.
  throws(() => parsePrivateKey(encrypted, "keys/locked.pem (--tls-key)"), {
    message: "keys/locked.pem (--tls-key) holds an encrypted private key: decrypt it first with " +
      "openssl pkey -in keys/locked.pem -out decrypted-locked.pem",
  });
});

Deno.test("checkCertifiedKey refuses a key that is not the certificate's", () => {
  equal(checkCertifiedKey(made).subject, "CN=localhost");
  throws(
    () =>
      checkCertifiedKey({ cert: made.cert, key: other.key, certFile: "a.pem", keyFile: "b.pem" }),
    (err) =>
      err instanceof RuntimeError &&
      err.message === "the key in b.pem does not match the certificate in a.pem",
  );
});

Deno.test("serverCertificateProblem spots a CA certificate used as a server certificate", () => {
  equal(serverCertificateProblem(new X509Certificate(made.cert), "cert.pem"), undefined);
  const problem = serverCertificateProblem(new X509Certificate(made.caCert), "ca.pem") ?? "";
  ok(problem.startsWith("ca.pem is a CA certificate (basicConstraints CA:TRUE"));
  ok(problem.includes("CaUsedAsEndEntity"));
  ok(problem.includes("basicConstraints=critical,CA:FALSE"));
});

Deno.test("explainCertificateError says what to do about rustls' certificate errors", () => {
  ok(
    explainCertificateError("invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))")
      .startsWith("the server's certificate is a CA certificate used as a server certificate"),
  );
  ok(explainCertificateError("invalid peer certificate: NotValidForName").includes("--host"));
  ok(explainCertificateError("received fatal alert: CertificateRequired").includes("--tls-cert"));
  equal(explainCertificateError("connection reset"), "connection reset");
});
