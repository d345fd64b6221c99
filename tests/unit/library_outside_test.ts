/**
 * The library from outside the checkout, as docs/library.md says to use it: a script in another
 * directory, with no deno.json, imports lib/mod.ts by path or by file URL and runs a TLS echo
 * server (its certificates made with an npm package) and a client against it.
 */

import { equal } from "node:assert/strict";
import { fileURLToPath } from "node:url";

const MOD = new URL("../../lib/mod.ts", import.meta.url);

/** The script a user would write, importing the library from `specifier`. */
function script(specifier: string): string {
  return `import { makeSelfSignedCertificates, sendAndVerify, startEchoServer } from ${
    JSON.stringify(specifier)
  };

const { caCert, cert, key } = await makeSelfSignedCertificates();
await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0, tls: { cert, key } });
const message = new TextEncoder().encode("from outside");
const result = await sendAndVerify({
  hostname: "localhost",
  port: server.addr.port,
  tls: { caCerts: [caCert] },
  message,
});
console.log(result.bytesReceived);
`;
}

for (const [how, specifier] of [["path", fileURLToPath(MOD)], ["file URL", MOD.href]]) {
  Deno.test(`a script in another directory imports lib/mod.ts by ${how}, with no config`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "tcpecho-outside-" });
    try {
      await Deno.writeTextFile(`${dir}/use.ts`, script(specifier));
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-config", "--allow-net", "use.ts"],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(stderr);
      equal(code, 0, err);
      equal(new TextDecoder().decode(stdout), "12\n");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
