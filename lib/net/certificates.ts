/**
 * Checks of PEM certificate and key files before they are used, each failure one line that names
 * the file and what is wrong with it, and the advice for certificates that TLS libraries built on
 * rustls refuse (a CA certificate used as a server certificate).
 *
 * @module
 */

import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { RuntimeError } from "../base/errors.ts";

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** A command that makes a certificate every TLS client accepts: a leaf with a SAN. */
export const OPENSSL_LEAF_RECIPE = "openssl req -x509 -newkey ec -pkeyopt " +
  "ec_paramgen_curve:prime256v1 -nodes -keyout key.pem -out cert.pem -days 30 " +
  "-subj /CN=localhost -addext basicConstraints=critical,CA:FALSE " +
  "-addext subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1";

/** The labels of the PEM blocks in `text`, in order (`CERTIFICATE`, `PRIVATE KEY`, ...). */
function pemLabels(text: string): string[] {
  return [...text.matchAll(PEM_BLOCK)].map((match) => match[1]);
}

function isKeyLabel(label: string): boolean {
  return label.endsWith("PRIVATE KEY");
}

/**
 * Parses every certificate of a PEM file. Throws a {@linkcode RuntimeError} naming `file` when it
 * holds no certificate (a private key where a certificate belongs says so) or a certificate that
 * cannot be read.
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { parseCertificates } from "./certificates.ts";
 *
 * throws(() => parseCertificates("# not a certificate\n", "README.md"), {
 *   message: "README.md holds no PEM certificate (no '-----BEGIN CERTIFICATE-----' line)",
 * });
 * ```
 */
export function parseCertificates(text: string, file: string): X509Certificate[] {
  const labels = pemLabels(text);
  const blocks = [...text.matchAll(PEM_BLOCK)].filter((match) => match[1] === "CERTIFICATE");
  if (blocks.length === 0) {
    if (labels.some(isKeyLabel)) {
      throw new RuntimeError(`${file} holds a private key, not a certificate`);
    }
    throw new RuntimeError(
      `${file} holds no PEM certificate (no '-----BEGIN CERTIFICATE-----' line)`,
    );
  }
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block[0]);
    } catch {
      const which = blocks.length === 1 ? "its certificate" : `certificate ${index + 1}`;
      throw new RuntimeError(`${file}: ${which} is not a valid X.509 certificate`);
    }
  });
}

/**
 * Parses the private key of a PEM file. Throws a {@linkcode RuntimeError} naming `file` when it
 * holds a certificate instead, no key, an encrypted key or one that cannot be read.
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { parsePrivateKey } from "./certificates.ts";
 *
 * throws(
 *   () => parsePrivateKey("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n", "k"),
 *   { message: "k holds a certificate, not a private key" },
 * );
 * ```
 */
export function parsePrivateKey(text: string, file: string): KeyObject {
  const labels = pemLabels(text);
  const key = labels.find(isKeyLabel);
  if (key === undefined) {
    if (labels.includes("CERTIFICATE")) {
      throw new RuntimeError(`${file} holds a certificate, not a private key`);
    }
    throw new RuntimeError(
      `${file} holds no PEM private key (no '-----BEGIN PRIVATE KEY-----' line)`,
    );
  }
  if (key === "ENCRYPTED PRIVATE KEY" || /Proc-Type: 4,ENCRYPTED/.test(text)) {
    // `file` may name its flag too ("key.pem (--tls-key)"): the command takes the path alone.
    const path = file.replace(/ \(--[\w-]+\)$/, "");
    throw new RuntimeError(
      `${file} holds an encrypted private key: decrypt it first with ` +
        `openssl pkey -in ${path} -out decrypted-${path.split("/").at(-1)}`,
    );
  }
  try {
    return createPrivateKey(text);
  } catch {
    throw new RuntimeError(`${file}: its private key cannot be read (${key})`);
  }
}

/** A server's certificate chain and key as PEM, with the files they came from for messages. */
export interface CertifiedKeyFiles {
  /** The certificate chain, leaf first. */
  cert: string;
  /** The leaf's private key. */
  key: string;
  /** Where `cert` came from. Default `the certificate`. */
  certFile?: string;
  /** Where `key` came from. Default `the key`. */
  keyFile?: string;
}

/**
 * Checks a server's certificate and key: both readable, and the key the one of the leaf (the
 * first certificate). Returns the leaf. Throws a {@linkcode RuntimeError} that names the file.
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { checkCertifiedKey } from "./certificates.ts";
 *
 * throws(() => checkCertifiedKey({ cert: "", key: "", certFile: "cert.pem" }), {
 *   message: "cert.pem holds no PEM certificate (no '-----BEGIN CERTIFICATE-----' line)",
 * });
 * ```
 */
export function checkCertifiedKey(files: CertifiedKeyFiles): X509Certificate {
  const certFile = files.certFile ?? "the certificate";
  const keyFile = files.keyFile ?? "the key";
  const [leaf] = parseCertificates(files.cert, certFile);
  const key = parsePrivateKey(files.key, keyFile);
  if (!leaf.checkPrivateKey(key)) {
    throw new RuntimeError(
      `the key in ${keyFile} does not match the certificate in ${certFile}`,
    );
  }
  return leaf;
}

/**
 * Why clients that follow the rules (rustls: Deno, `tcpecho send`) would refuse `leaf` as a
 * server certificate, in one line with what to do instead; `undefined` when they would not for
 * that reason.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { X509Certificate } from "node:crypto";
 * import { serverCertificateProblem } from "./certificates.ts";
 *
 * import { makeSelfSignedCertificates } from "./self_signed.ts";
 *
 * const { caCert } = await makeSelfSignedCertificates();
 * const ca = new X509Certificate(caCert);
 * equal(serverCertificateProblem(ca, "cert.pem")?.startsWith("cert.pem is a CA certificate"), true);
 * ```
 */
export function serverCertificateProblem(
  leaf: X509Certificate,
  file: string,
): string | undefined {
  if (!leaf.ca) return undefined;
  return `${file} is a CA certificate (basicConstraints CA:TRUE, what 'openssl req -x509' makes ` +
    "by default): rustls clients such as tcpecho send refuse it as a server certificate " +
    `(CaUsedAsEndEntity); make a leaf instead: ${OPENSSL_LEAF_RECIPE}`;
}

/**
 * A certificate error of a TLS client (rustls wording) as what to do about it; the reason as it
 * is for any other error.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { explainCertificateError } from "./certificates.ts";
 *
 * equal(
 *   explainCertificateError("invalid peer certificate: UnknownIssuer"),
 *   "the server's certificate is not signed by a CA this client trusts (UnknownIssuer): " +
 *     "pass the CA certificate that signed it with --ca FILE",
 * );
 * ```
 */
export function explainCertificateError(reason: string): string {
  if (reason.includes("CaUsedAsEndEntity")) {
    return "the server's certificate is a CA certificate used as a server certificate " +
      "(CaUsedAsEndEntity), which rustls refuses: give the server a leaf certificate with " +
      `basicConstraints CA:FALSE, e.g. ${OPENSSL_LEAF_RECIPE}, or run it with --tls-self-signed`;
  }
  if (reason.includes("CertificateRequired")) {
    return "the server requires a client certificate (CertificateRequired): pass one with " +
      "--tls-cert FILE --tls-key FILE";
  }
  if (reason.includes("UnknownIssuer")) {
    return "the server's certificate is not signed by a CA this client trusts (UnknownIssuer): " +
      "pass the CA certificate that signed it with --ca FILE";
  }
  if (reason.includes("NotValidForName")) {
    return "the server's certificate does not name the host connected to (NotValidForName): " +
      "connect with a --host its subjectAltName lists, or give the server a certificate for it";
  }
  if (reason.includes("Expired") || reason.includes("NotValidYet")) {
    const which = reason.includes("Expired") ? "has expired" : "is not valid yet";
    return `the server's certificate ${which}: give the server a current one`;
  }
  return reason;
}
