import { equal, match, ok } from "node:assert/strict";
import { listenSockets, makeSelfSignedCertificates, TlsServer } from "../../lib/mod.ts";
import { needs, runProgram } from "../helpers.ts";

/**
 * OpenSSL is the oracle: a matrix of client certificates made with `openssl`, and for each the
 * server's verdict must equal `openssl verify -purpose sslclient -CAfile CAS -untrusted CHAIN`.
 */

type Key = "p256" | "p384" | "rsa" | "ed25519";

const KEYS: Record<Key, string[]> = {
  p256: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
  p384: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1"],
  rsa: ["-newkey", "rsa:2048"],
  ed25519: ["-newkey", "ed25519"],
};

const CA = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n";
const CLIENT = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n" +
  "extendedKeyUsage=clientAuth\n";

/** A certificate to make: signed by `issuer` (by itself without one), with extensions `ext`. */
interface Spec {
  name: string;
  issuer?: string;
  key?: Key;
  /** The signature's hash (`sha256` unless said); Ed25519 issuers have none. */
  hash?: string;
  ext: string;
  /** Days of validity from now; negative: expired. */
  days?: number;
  /** Valid only from 2099. */
  future?: boolean;
}

/** The CA file's certificates (trust anchors). */
const ROOTS: Spec[] = [
  { name: "root-p256", ext: CA },
  { name: "root-p384", key: "p384", hash: "sha384", ext: CA },
  { name: "root-rsa", key: "rsa", hash: "sha512", ext: CA },
  { name: "root-ed25519", key: "ed25519", ext: CA },
  { name: "root-pathlen0", ext: CA.replace("CA:TRUE", "CA:TRUE,pathlen:0") },
  { name: "root-expired", ext: CA, days: -1 },
  { name: "root-not-ca", ext: "basicConstraints=critical,CA:FALSE\n" },
  { name: "root-serverauth", ext: `${CA}extendedKeyUsage=serverAuth\n` },
];

const OTHERS: Spec[] = [
  { name: "root-stranger", ext: CA },
  { name: "inter-p256", issuer: "root-p256", ext: CA.replace("CA:TRUE", "CA:TRUE,pathlen:0") },
  { name: "inter-rsa", issuer: "root-rsa", key: "p384", hash: "sha384", ext: CA },
  {
    name: "inter-not-ca",
    issuer: "root-p256",
    ext: "basicConstraints=CA:FALSE\nkeyUsage=critical,keyCertSign\n",
  },
  {
    name: "inter-no-certsign",
    issuer: "root-p256",
    ext: "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\n",
  },
  { name: "inter-expired", issuer: "root-p256", ext: CA, days: -1 },
  { name: "inter-future", issuer: "root-p256", ext: CA, future: true },
  { name: "inter-serverauth", issuer: "root-p256", ext: `${CA}extendedKeyUsage=serverAuth\n` },
  { name: "inter-under-pathlen0", issuer: "root-pathlen0", ext: CA },
  { name: "inter-a", issuer: "root-p256", ext: CA.replace("CA:TRUE", "CA:TRUE,pathlen:1") },
  { name: "inter-b", issuer: "inter-a", ext: CA },
  { name: "inter-c", issuer: "root-p256", ext: CA.replace("CA:TRUE", "CA:TRUE,pathlen:0") },
  { name: "inter-d", issuer: "inter-c", ext: CA },
  { name: "inter-sha224", issuer: "root-p256", hash: "sha224", ext: CA },
  { name: "inter-stranger", issuer: "root-stranger", ext: CA },
];

/** A client certificate, the intermediates the client sends, and OpenSSL's verdict on it. */
interface Case extends Spec {
  issuer: string;
  chain?: string[];
  openssl: "OK" | "refused";
  /** WebCrypto cannot check a SHA-224 signature: the server refuses what OpenSSL accepts. */
  unsupported?: true;
}

const CASES: Case[] = [
  { name: "p256-sha256", issuer: "root-p256", ext: CLIENT, openssl: "OK" },
  { name: "p384-sha384", issuer: "root-p384", key: "p384", ext: CLIENT, openssl: "OK" },
  { name: "rsa-sha512", issuer: "root-rsa", key: "rsa", ext: CLIENT, openssl: "OK" },
  { name: "ed25519", issuer: "root-ed25519", key: "ed25519", ext: CLIENT, openssl: "OK" },
  {
    name: "rsa-by-p256-sha384",
    issuer: "root-p256",
    key: "rsa",
    hash: "sha384",
    ext: CLIENT,
    openssl: "OK",
  },
  {
    name: "p256-sha224",
    issuer: "root-p256",
    hash: "sha224",
    ext: CLIENT,
    openssl: "OK",
    unsupported: true,
  },
  { name: "expired", issuer: "root-p256", ext: CLIENT, days: -1, openssl: "refused" },
  { name: "not-yet-valid", issuer: "root-p256", ext: CLIENT, future: true, openssl: "refused" },
  {
    name: "serverauth-only",
    issuer: "root-p256",
    ext: CLIENT.replace("clientAuth", "serverAuth"),
    openssl: "refused",
  },
  { name: "no-eku", issuer: "root-p256", ext: "basicConstraints=CA:FALSE\n", openssl: "OK" },
  {
    name: "keyencipherment-only",
    issuer: "root-p256",
    key: "rsa",
    ext: "keyUsage=critical,keyEncipherment\n",
    openssl: "refused",
  },
  { name: "keyagreement-only", issuer: "root-p256", ext: "keyUsage=keyAgreement\n", openssl: "OK" },
  { name: "no-extensions", issuer: "root-p256", ext: "", openssl: "OK" },
  {
    name: "ca-leaf",
    issuer: "root-p256",
    ext: CA.replace("keyCertSign", "keyCertSign,digitalSignature"),
    openssl: "OK",
  },
  {
    name: "via-intermediate",
    issuer: "inter-p256",
    chain: ["inter-p256"],
    ext: CLIENT,
    openssl: "OK",
  },
  { name: "intermediate-not-sent", issuer: "inter-p256", ext: CLIENT, openssl: "refused" },
  { name: "via-rsa-root", issuer: "inter-rsa", chain: ["inter-rsa"], ext: CLIENT, openssl: "OK" },
  {
    name: "via-not-ca",
    issuer: "inter-not-ca",
    chain: ["inter-not-ca"],
    ext: CLIENT,
    openssl: "refused",
  },
  {
    name: "via-no-certsign",
    issuer: "inter-no-certsign",
    chain: ["inter-no-certsign"],
    ext: CLIENT,
    openssl: "refused",
  },
  {
    name: "via-expired",
    issuer: "inter-expired",
    chain: ["inter-expired"],
    ext: CLIENT,
    openssl: "refused",
  },
  {
    name: "via-future",
    issuer: "inter-future",
    chain: ["inter-future"],
    ext: CLIENT,
    openssl: "refused",
  },
  {
    name: "via-serverauth",
    issuer: "inter-serverauth",
    chain: ["inter-serverauth"],
    ext: CLIENT,
    openssl: "refused",
  },
  {
    name: "pathlen0-root-exceeded",
    issuer: "inter-under-pathlen0",
    chain: ["inter-under-pathlen0"],
    ext: CLIENT,
    openssl: "refused",
  },
  { name: "pathlen0-root-direct", issuer: "root-pathlen0", ext: CLIENT, openssl: "OK" },
  {
    name: "pathlen1-two-deep",
    issuer: "inter-b",
    chain: ["inter-b", "inter-a"],
    ext: CLIENT,
    openssl: "OK",
  },
  {
    name: "pathlen0-two-deep",
    issuer: "inter-d",
    chain: ["inter-d", "inter-c"],
    ext: CLIENT,
    openssl: "refused",
  },
  { name: "under-expired-root", issuer: "root-expired", ext: CLIENT, openssl: "refused" },
  { name: "under-not-ca-root", issuer: "root-not-ca", ext: CLIENT, openssl: "refused" },
  { name: "under-serverauth-root", issuer: "root-serverauth", ext: CLIENT, openssl: "refused" },
  { name: "stranger", issuer: "root-stranger", ext: CLIENT, openssl: "refused" },
  {
    name: "stranger-root-sent",
    issuer: "root-stranger",
    chain: ["root-stranger"],
    ext: CLIENT,
    openssl: "refused",
  },
  {
    name: "stranger-intermediate",
    issuer: "inter-stranger",
    chain: ["inter-stranger"],
    ext: CLIENT,
    openssl: "refused",
  },
  {
    name: "via-sha224-intermediate",
    issuer: "inter-sha224",
    chain: ["inter-sha224"],
    ext: CLIENT,
    openssl: "OK",
    unsupported: true,
  },
];

/** Runs openssl in `dir`; fails the test with what it said if it fails. */
async function openssl(dir: string, ...args: string[]): Promise<string> {
  const result = await runProgram("sh", ["-c", `cd "$0" && exec openssl "$@"`, dir, ...args]);
  equal(result.code, 0, `openssl ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

/** Makes `spec.name`.pem and .key in `dir`, signed by its issuer's key (made before it). */
async function make(dir: string, spec: Spec, keys: Map<string, Key>): Promise<void> {
  const { name } = spec;
  const key = spec.key ?? "p256";
  keys.set(name, key);
  await openssl(
    dir,
    "req",
    "-new",
    ...KEYS[key],
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${name}`,
  );
  const issuer = spec.issuer ?? name;
  const ext = spec.ext + (spec.ext.includes("CA:TRUE") ? "subjectKeyIdentifier=hash\n" : "") +
    (spec.issuer && spec.ext ? "authorityKeyIdentifier=keyid\n" : "");
  await Deno.writeTextFile(`${dir}/${name}.ext`, ext);
  const hash = keys.get(issuer) === "ed25519" ? [] : [`-${spec.hash ?? "sha256"}`];
  const extFile = ext ? ["-extfile", `${name}.ext`] : [];
  if (spec.future) {
    await Deno.writeTextFile(`${dir}/index.txt`, "");
    await Deno.writeTextFile(`${dir}/${name}.cnf`, CA_CONFIG);
    await openssl(
      dir,
      ...["ca", "-batch", "-notext", "-config", `${name}.cnf`, "-cert", `${issuer}.pem`],
      ...["-keyfile", `${issuer}.key`, "-in", `${name}.csr`, "-out", `${name}.pem`],
      ...[
        "-startdate",
        "20990101000000Z",
        "-enddate",
        "20991231000000Z",
        "-md",
        "sha256",
        ...extFile,
      ],
    );
    return;
  }
  const signer = spec.issuer
    ? ["-CA", `${issuer}.pem`, "-CAkey", `${issuer}.key`]
    : ["-signkey", `${name}.key`];
  await openssl(
    dir,
    ...["x509", "-req", "-in", `${name}.csr`, ...signer, ...hash, ...extFile],
    ...["-days", String(spec.days ?? 2), "-out", `${name}.pem`],
  );
}

/** Enough of a configuration for `openssl ca`, which alone sets a notBefore in the future. */
const CA_CONFIG = `[ca]
default_ca = only
[only]
database = index.txt
new_certs_dir = .
serial = serial.txt
policy = any
unique_subject = no
[any]
commonName = supplied
`;

Deno.test({
  ...needs("openssl", "TlsServer: a client certificate's verdict equals openssl verify's"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "tcpecho-client-chains-" });
    const listener = await listenSockets({ hostname: "127.0.0.1", port: 0 });
    try {
      await Deno.writeTextFile(`${dir}/serial.txt`, "01\n");
      const keys = new Map<string, Key>();
      for (const spec of [...ROOTS, ...OTHERS, ...CASES]) await make(dir, spec, keys);
      const cas = await Promise.all(
        ROOTS.map(({ name }) => Deno.readTextFile(`${dir}/${name}.pem`)),
      );
      await Deno.writeTextFile(`${dir}/cas.pem`, cas.join(""));
      const server = await makeSelfSignedCertificates({ names: ["127.0.0.1"] });
      const tls = new TlsServer({ cert: server.cert, key: server.key, clientCa: cas.join("") });
      for (const { name, chain = [], openssl: expected, unsupported } of CASES) {
        const chainFile = chain.length ? [`-untrusted`, `${name}.chain`] : [];
        const sent = await Promise.all(
          chain.map((cert) => Deno.readTextFile(`${dir}/${cert}.pem`)),
        );
        await Deno.writeTextFile(`${dir}/${name}.chain`, sent.join(""));
        const verify = await runProgram("sh", [
          "-c",
          `cd "$0" && exec openssl "$@"`,
          dir,
          ...["verify", "-purpose", "sslclient", "-CAfile", "cas.pem", ...chainFile, `${name}.pem`],
        ]);
        const oracle = verify.stdout.trim() === `${name}.pem: OK` ? "OK" : "refused";
        // The matrix says what each case is for; a certificate made wrong would test nothing.
        equal(oracle, expected, `${name}: openssl verify said ${verify.stdout}${verify.stderr}`);
        const client = runProgram("openssl", [
          ...["s_client", "-connect", `127.0.0.1:${listener.addr.port}`],
          ...["-cert", `${dir}/${name}.pem`, "-key", `${dir}/${name}.key`],
          ...(chain.length ? ["-cert_chain", `${dir}/${name}.chain`] : []),
        ]);
        const verdict = await tls.handshake(await listener.accept()).then(
          (session) => {
            session.conn.close();
            return "OK";
          },
          (err: Error) => err.message,
        );
        await client;
        if (unsupported) {
          match(verdict, /client certificate refused: .*unsupported signature algorithm/, name);
        } else if (oracle === "OK") {
          equal(verdict, "OK", name);
        } else {
          match(verdict, new RegExp(`client certificate refused: .*CN=${name}`), name);
        }
      }
      ok(CASES.some((c) => c.openssl === "OK") && CASES.some((c) => c.openssl === "refused"));
    } finally {
      listener.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
