import { equal, match } from "node:assert/strict";
import { makeSelfSignedCertificates } from "../../lib/mod.ts";
import { needs, runProgram } from "../helpers.ts";

async function openssl(args: string[]): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await runProgram("openssl", args);
  return { code, output: stdout + stderr };
}

Deno.test({
  ...needs("openssl", "self-signed: the leaf passes openssl verify, names its hosts and is no CA"),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const made = await makeSelfSignedCertificates({ names: ["localhost", "127.0.0.1", "::1"] });
      await Deno.writeTextFile(`${dir}/ca.pem`, made.caCert);
      await Deno.writeTextFile(`${dir}/cert.pem`, made.cert);
      await Deno.writeTextFile(`${dir}/key.pem`, made.key);
      const verify = await openssl(["verify", "-CAfile", `${dir}/ca.pem`, `${dir}/cert.pem`]);
      equal(verify.output, `${dir}/cert.pem: OK\n`);
      equal(verify.code, 0);
      const text = await openssl(["x509", "-in", `${dir}/cert.pem`, "-noout", "-text"]);
      match(text.output, /Public Key Algorithm: id-ecPublicKey[\s\S]*NIST CURVE: P-256/);
      match(text.output, /Basic Constraints: critical\s+CA:FALSE/);
      match(text.output, /DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
      const ca = await openssl(["x509", "-in", `${dir}/ca.pem`, "-noout", "-text"]);
      match(ca.output, /Basic Constraints: critical\s+CA:TRUE/);
      const key = await openssl(["pkey", "-in", `${dir}/key.pem`, "-noout"]);
      equal(key.code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
