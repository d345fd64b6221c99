/**
 * Throw-away certificates for tests and demos: a CA made for the occasion and a leaf it signs
 * for the names and addresses a server listens on, both ECDSA P-256, as PEM. The leaf is what
 * every TLS client accepts (basicConstraints CA:FALSE, the names in subjectAltName, serverAuth);
 * a client trusts it through the CA certificate (`tcpecho send --tls --ca FILE`).
 *
 * @module
 */

import { x509 } from "../_deps/x509.ts";

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** What {@linkcode makeSelfSignedCertificates} makes, all PEM. */
export interface SelfSignedCertificates {
  /** The CA certificate: give it to clients to trust (`--ca`). */
  caCert: string;
  /** The server's certificate chain: the leaf, then the CA. */
  cert: string;
  /** The leaf's private key (PKCS #8). */
  key: string;
}

/** For whom and how long. */
export interface SelfSignedOptions {
  /** Host names and IP addresses the leaf is valid for. Default `localhost` and loopback. */
  names?: string[];
  /** Days the certificates stay valid. Default 30. */
  days?: number;
}

/** The names a leaf for `localhost` and the loopback addresses carries. */
export const LOOPBACK_NAMES: readonly string[] = ["localhost", "127.0.0.1", "::1"];

function isIpAddress(name: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || name.includes(":");
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", key));
  const base64 = btoa(String.fromCharCode(...der)).replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return `-----BEGIN PRIVATE KEY-----\n${base64}\n-----END PRIVATE KEY-----\n`;
}

function serialNumber(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f; // positive
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * Makes a CA and a leaf it signs for `names`. A new key pair each time; nothing is kept.
 *
 * @example A TLS echo server that a client trusts through the CA
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { makeSelfSignedCertificates, sendAndVerify, startEchoServer } from "../mod.ts";
 *
 * const { caCert, cert, key } = await makeSelfSignedCertificates({ names: ["127.0.0.1"] });
 * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0, tls: { cert, key } });
 * const result = await sendAndVerify({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   tls: { caCerts: [caCert] },
 *   message: new TextEncoder().encode("hello"),
 * });
 * equal(result.bytesReceived, 5);
 * ```
 */
export async function makeSelfSignedCertificates(
  options: SelfSignedOptions = {},
): Promise<SelfSignedCertificates> {
  const names = [...new Set(options.names?.length ? options.names : LOOPBACK_NAMES)];
  const days = options.days ?? 30;
  // An hour back, for clocks a little behind this one.
  const notBefore = new Date(Date.now() - 3600_000);
  const notAfter = new Date(Date.now() + days * 86_400_000);
  const [caKeys, leafKeys] = await Promise.all([
    crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]),
    crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]),
  ]);
  const caName = `CN=tcpecho throw-away CA ${serialNumber().slice(0, 8)}`;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: caName,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${names[0]}`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: leafKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension(
        names.map((name) => ({
          type: isIpAddress(name) ? "ip" as const : "dns" as const,
          value: name,
        })),
      ),
      await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const caCert = ca.toString("pem") + "\n";
  return {
    caCert,
    cert: leaf.toString("pem") + "\n" + caCert,
    key: await pkcs8Pem(leafKeys.privateKey),
  };
}
