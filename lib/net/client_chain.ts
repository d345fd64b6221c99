/**
 * Client certificates judged the way `openssl verify -purpose sslclient` judges them: a path from
 * the client's certificate, through the intermediates it sent, to a CA certificate of the client
 * CA file (RFC 5280 path validation, as OpenSSL does it). `@peculiar/x509`'s `X509ChainBuilder`
 * finds the path and checks its signatures; this module adds what the builder leaves out:
 * validity periods (the trust anchor's too), basicConstraints and keyUsage keyCertSign on every
 * issuer, pathLenConstraint, extendedKeyUsage clientAuth where present (issuers included, as
 * OpenSSL does) and keyUsage digitalSignature or keyAgreement on the client certificate where
 * present. Loaded only by a server that asks for client certificates.
 *
 * @module
 */

import { X509Certificate } from "node:crypto";
import { x509 } from "../_deps/x509.ts";

type Certificate = InstanceType<typeof x509.X509Certificate>;

/** The signature algorithms WebCrypto verifies; others (SHA-224 among them) cannot be checked. */
const VERIFIABLE_SIGNATURES = new Set(["ECDSA", "RSASSA-PKCS1-v1_5", "RSA-PSS", "Ed25519"]);

/** What a TLS client certificate must allow, when it says what it is for. */
const CLIENT_KEY_USAGES = x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement;

/**
 * Judges client certificate chains against the CA certificates of a client CA file.
 *
 * @example A client certificate the CA did not sign is refused
 * ```ts
 * import { equal, match } from "node:assert/strict";
 * import { X509Certificate } from "node:crypto";
 * import { makeSelfSignedCertificates } from "../mod.ts";
 * import { ClientChainVerifier } from "./client_chain.ts";
 *
 * const ours = await makeSelfSignedCertificates({ names: ["127.0.0.1"] });
 * const theirs = await makeSelfSignedCertificates({ names: ["127.0.0.1"] });
 * const verifier = new ClientChainVerifier([ours.caCert]);
 * const leaf = (pem: string) => new X509Certificate(pem).raw;
 * equal(await verifier.untrustedReason([leaf(ours.cert)]), undefined);
 * match(await verifier.untrustedReason([leaf(theirs.cert)]) ?? "", /not signed by a CA/);
 * ```
 */
export class ClientChainVerifier {
  readonly #anchors: Certificate[];

  /** `caCertificates`: the client CA file's certificates, PEM or DER, each one a trust anchor. */
  constructor(caCertificates: (string | Uint8Array)[]) {
    this.#anchors = caCertificates.map((cert) => new x509.X509Certificate(bufferOf(cert)));
  }

  /**
   * Why the chain `der` (the client's certificate first, then the intermediates it sent, DER)
   * is not to be trusted at `now`; `undefined` when it is. Throws on a certificate it cannot
   * parse: the caller refuses those too.
   */
  async untrustedReason(der: Uint8Array[], now: Date = new Date()): Promise<string | undefined> {
    if (der.length === 0) return "no certificate";
    const [leaf, ...sent] = der.map((cert) => new x509.X509Certificate(bufferOf(cert)));
    // Anchors first: an issuer from the CA file wins over a copy the client sent (OpenSSL's
    // trusted-first search).
    const builder = new x509.X509ChainBuilder({ certificates: [...this.#anchors, ...sent] });
    const chain = [...await builder.build(leaf)];
    const last = chain[chain.length - 1];
    const anchored = this.#anchors.some((anchor) => sameBytes(anchor.rawData, last.rawData));
    // Every reason names the client's certificate, then the issuer at fault if it is one.
    const about = (cert: Certificate) =>
      cert === leaf ? nameOf(leaf) : `${nameOf(leaf)}: its issuer ${nameOf(cert)}`;
    if (!anchored || !isSelfIssued(last)) {
      return VERIFIABLE_SIGNATURES.has(last.signatureAlgorithm.name)
        ? `${nameOf(leaf)} is not signed by a CA of the client CA file`
        : `${about(last)} has an unsupported signature algorithm`;
    }
    for (const cert of chain) {
      if (now < cert.notBefore) return `${about(cert)} is not valid yet`;
      if (now > cert.notAfter) return `${about(cert)} expired on ${cert.notAfter.toISOString()}`;
    }
    const usage = clientUsageProblem(leaf);
    if (usage) return `${about(leaf)} ${usage}`;
    // Intermediates below the issuer at hand that are not self-issued (RFC 5280's pathLen).
    let below = 0;
    for (const [depth, issuer] of chain.entries()) {
      if (depth === 0) continue;
      const problem = issuerProblem(issuer, below, depth > 1);
      if (problem) return `${about(issuer)} ${problem}`;
      if (!isSelfIssued(issuer)) below++;
    }
    return undefined;
  }
}

/** What keeps the client certificate `cert` from TLS client use, as OpenSSL's `sslclient`. */
function clientUsageProblem(cert: Certificate): string | undefined {
  if (!allowsClientAuth(cert)) {
    return "is not for TLS clients (extendedKeyUsage without clientAuth)";
  }
  const keyUsage = cert.getExtension(x509.KeyUsagesExtension);
  if (keyUsage && (keyUsage.usages & CLIENT_KEY_USAGES) === 0) {
    return "may not sign (keyUsage without digitalSignature or keyAgreement)";
  }
  return undefined;
}

/**
 * What keeps `issuer` from issuing, `below` intermediates beneath it: not a CA, not allowed to
 * sign certificates, not for TLS clients, or too long a path. OpenSSL checks pathLen from the
 * second issuer up (`checkPathLength`).
 */
function issuerProblem(issuer: Certificate, below: number, checkPathLength: boolean) {
  const keyUsage = issuer.getExtension(x509.KeyUsagesExtension);
  if (keyUsage && (keyUsage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    return "may not sign certificates (keyUsage without keyCertSign)";
  }
  const constraints = issuer.getExtension(x509.BasicConstraintsExtension);
  // Without basicConstraints OpenSSL takes a keyCertSign keyUsage, or a version 1 root (no
  // extensions at all, its own issuer), as saying CA.
  const ca = constraints
    ? constraints.ca
    : keyUsage !== null || (issuer.extensions.length === 0 && isSelfIssued(issuer));
  if (!ca) return "is not a CA certificate";
  if (!allowsClientAuth(issuer)) {
    return "is not for TLS clients (extendedKeyUsage without clientAuth)";
  }
  const pathLength = constraints?.pathLength;
  if (checkPathLength && pathLength !== undefined && below > pathLength) {
    return `allows ${pathLength} intermediate(s) below it, not ${below}`;
  }
  return undefined;
}

/** True unless `cert` names what it is for without TLS client authentication. */
function allowsClientAuth(cert: Certificate): boolean {
  const extended = cert.getExtension(x509.ExtendedKeyUsageExtension);
  return !extended || extended.usages.includes(x509.ExtendedKeyUsage.clientAuth);
}

/** `cert`'s subject on one line, as the server logs an accepted client's: `CN=alice, O=Example`. */
function nameOf(cert: Certificate): string {
  return new X509Certificate(new Uint8Array(cert.rawData)).subject.replaceAll("\n", ", ");
}

function isSelfIssued(cert: Certificate): boolean {
  return cert.subject === cert.issuer;
}

function sameBytes(a: ArrayBuffer, b: ArrayBuffer): boolean {
  if (a.byteLength !== b.byteLength) return false;
  const left = new Uint8Array(a);
  const right = new Uint8Array(b);
  return left.every((byte, index) => byte === right[index]);
}

function bufferOf(cert: string | Uint8Array): string | ArrayBuffer {
  return typeof cert === "string" ? cert : new Uint8Array(cert).buffer;
}
