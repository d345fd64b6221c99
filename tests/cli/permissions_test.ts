import { deepEqual, equal, match, ok } from "node:assert/strict";
import config from "../../deno.json" with { type: "json" };
import { makeSelfSignedCertificates, startEchoServer } from "../../lib/mod.ts";
import {
  connect,
  hasLoopback6,
  readExactly,
  runCli,
  ServeProcess,
  skipUnless,
  writeAll,
} from "../helpers.ts";

/** The permission flags a `deno run ... main.ts` task passes. */
function taskPermissions(task: string): string[] {
  const words = task.split(/\s+/);
  equal(words.slice(0, 2).join(" "), "deno run");
  return words.slice(2, words.indexOf("main.ts"));
}

async function roundTrip(port: number, hostname = "127.0.0.1"): Promise<void> {
  using conn = await connect(port, hostname);
  const hello = new TextEncoder().encode("hello");
  await writeAll(conn, hello);
  deepEqual(await readExactly(conn, hello.length), hello);
}

Deno.test("the user-facing tasks and the commands in README and docs ask for the narrowest permissions", () => {
  // Reading its own directory and --unstable-net are for --workers; nothing writes or spawns.
  deepEqual(taskPermissions(config.tasks.serve), [
    "--allow-net",
    "--allow-read=.",
    "--unstable-net",
  ]);
  deepEqual(taskPermissions(config.tasks.send), ["--allow-net", "--allow-read"]);
  const root = new URL("../../", import.meta.url);
  const pages = [new URL("README.md", root)];
  for (const entry of Deno.readDirSync(new URL("docs/", root))) {
    if (entry.name.endsWith(".md")) pages.push(new URL(`docs/${entry.name}`, root));
  }
  const commands = pages.flatMap((page) =>
    Deno.readTextFileSync(page).split("\n").filter((line) => /deno(@[\d.]+)? run /.test(line))
  );
  ok(commands.length > 0);
  for (const line of commands) ok(!/\s(-A|--allow-all)\b/.test(line), line);
});

Deno.test("serve works with the serve task's permissions, or --allow-net for one host", async () => {
  for (const permissions of [taskPermissions(config.tasks.serve), ["--allow-net=127.0.0.1"]]) {
    await using server = await ServeProcess.start(["--host", "127.0.0.1", "--quiet"], {
      permissions,
    });
    await roundTrip(server.port);
    equal((await server.stop()).code, 0);
  }
});

Deno.test("send works with the send task's permissions, or scoped to one address and file", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const path = await Deno.makeTempFile({ prefix: "tcpecho-permissions-" });
  try {
    await Deno.writeTextFile(path, "from a file");
    const scoped = [`--allow-net=127.0.0.1:${server.addr.port}`, `--allow-read=${path}`];
    for (const permissions of [taskPermissions(config.tasks.send), scoped]) {
      const args = ["send", "--quiet", "--host", "127.0.0.1", "--port", String(server.addr.port)];
      const result = await runCli([...args, "--file", path], { permissions });
      equal(result.stderr, "");
      equal(result.code, 0);
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("a missing permission is one error line naming the flag to add", async () => {
  const serve = await runCli(["serve", "--port", "0"], { permissions: ["--no-prompt"] });
  equal(serve.code, 1);
  equal(
    serve.stderr,
    "error: cannot listen on localhost port 0: missing permission, run deno with --allow-net=localhost\n",
  );

  const send = await runCli(["send", "--host", "127.0.0.1", "--port", "7", "hi"], {
    permissions: ["--no-prompt"],
  });
  equal(send.code, 1);
  equal(
    send.stderr,
    "error: cannot connect to 127.0.0.1 port 7: missing permission, run deno with --allow-net=127.0.0.1:7\n",
  );

  const read = await runCli(["send", "--file", "message.txt"], {
    permissions: ["--no-prompt", "--allow-net"],
  });
  equal(read.code, 1);
  equal(
    read.stderr,
    "error: cannot read 'message.txt': missing permission, run deno with --allow-read=message.txt\n",
  );
});

Deno.test("serve binds to loopback by default, without a warning", async () => {
  await using server = await ServeProcess.start(["--log", "json"]);
  const { address } = JSON.parse(server.stdout.lines[0]);
  match(address, /^(127\.0\.0\.1|\[::1\]):\d+$/);
  await roundTrip(server.port, address.startsWith("[") ? "::1" : "127.0.0.1");
  // Stopped once the connection has ended, so that no drain is announced either.
  await server.stdout.waitFor(/"event":"closed"/);
  await server.stop();
  equal(server.stderr.text, "");
});

Deno.test("serve --host 0.0.0.0 warns that the port is reachable from the network", async () => {
  await using server = await ServeProcess.start(["--host", "0.0.0.0"]);
  equal(
    await server.stderr.waitFor("warning:"),
    `warning: listening on every interface: port ${server.port} is reachable from the network`,
  );
  // Traffic stays on loopback: the test only checks the server answers there.
  await roundTrip(server.port);
});

Deno.test({
  ...skipUnless(
    hasLoopback6(),
    "this machine has no IPv6 loopback",
    "serve --host :: warns that the port is reachable from the network",
  ),
  async fn() {
    await using server = await ServeProcess.start(["--host", "::"]);
    equal(
      await server.stderr.waitFor("warning:"),
      `warning: listening on every interface: port ${server.port} is reachable from the network`,
    );
    await roundTrip(server.port, "::1");
  },
});

Deno.test("send and bench with mutual TLS work with the send task's permissions", async () => {
  const server = await makeSelfSignedCertificates({ names: ["127.0.0.1"] });
  const client = await makeSelfSignedCertificates({ names: ["alice"] });
  const dir = await Deno.makeTempDir({ prefix: "tcpecho-permissions-" });
  try {
    await Deno.writeTextFile(`${dir}/ca.pem`, server.caCert);
    await Deno.writeTextFile(`${dir}/alice.pem`, client.cert);
    await Deno.writeTextFile(`${dir}/alice.key`, client.key);
    await using echo = await startEchoServer({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: server.cert, key: server.key, clientCa: client.caCert },
    });
    const tls = [
      ...["--host", "127.0.0.1", "--port", String(echo.addr.port), "--tls"],
      ...[
        "--ca",
        `${dir}/ca.pem`,
        "--tls-cert",
        `${dir}/alice.pem`,
        "--tls-key",
        `${dir}/alice.key`,
      ],
    ];
    const permissions = taskPermissions(config.tasks.send);
    const send = await runCli(["send", ...tls, "--quiet", "mutual"], { permissions });
    equal(send.stderr, "");
    equal(send.code, 0);
    const bench = await runCli(["bench", ...tls, "-c", "2", "--count", "10", "--json"], {
      permissions,
    });
    equal(bench.stderr, "");
    equal(bench.code, 0);
    equal(JSON.parse(bench.stdout).messages, 20);
    equal(echo.stats.closed.tls, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
