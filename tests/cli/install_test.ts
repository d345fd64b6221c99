/**
 * The README's `deno install` line makes a `tcpecho` command that works: installed into a
 * temporary DENO_INSTALL_ROOT, it sends to a server and gets the echo back.
 */

import { equal, ok } from "node:assert/strict";
import { ServeProcess } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url);

Deno.test("the README's deno install line makes a tcpecho command that sends and checks", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  const line = readme.split("\n").find((text) =>
    /^deno install .*--name tcpecho main\.ts$/.test(text)
  );
  ok(line, "README.md has the deno install line");
  const installRoot = await Deno.makeTempDir({ prefix: "tcpecho-install-" });
  try {
    const install = await new Deno.Command(Deno.execPath(), {
      args: line.split(" ").slice(1),
      cwd: ROOT,
      env: { DENO_INSTALL_ROOT: installRoot },
      stdout: "piped",
      stderr: "piped",
    }).output();
    equal(install.code, 0, new TextDecoder().decode(install.stderr));

    await using server = await ServeProcess.start(["--host", "127.0.0.1", "--quiet"]);
    // From another directory, as a user would run it; `deno` itself must be on the PATH.
    const path = `${Deno.execPath().replace(/\/[^/]*$/, "")}:${Deno.env.get("PATH") ?? ""}`;
    const send = await new Deno.Command(`${installRoot}/bin/tcpecho`, {
      args: ["send", "--host", "127.0.0.1", "--port", String(server.port), "installed"],
      cwd: installRoot,
      env: { PATH: path },
      stdout: "piped",
      stderr: "piped",
    }).output();
    equal(new TextDecoder().decode(send.stderr), "");
    equal(
      new TextDecoder().decode(send.stdout),
      `connecting to 127.0.0.1 port ${server.port}\nsending b'installed'\nreceived b'installed'\n` +
        "closing socket\n",
    );
    equal(send.code, 0);
  } finally {
    await Deno.remove(installRoot, { recursive: true });
  }
});
