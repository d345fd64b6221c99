import { deepEqual, equal, match } from "node:assert/strict";
import {
  hasProgram,
  needs,
  NO_BENCH_ERRORS,
  pathExists,
  runCli,
  runProgram,
  ServeProcess,
  skipUnless,
} from "../helpers.ts";

/** A test that needs Unix domain sockets, which Deno does not offer on Windows. */
function unixTest(name: string) {
  return skipUnless(Deno.build.os !== "windows", "no Unix domain sockets on Windows", name);
}

/** Runs `fn` with a socket path in a fresh temporary directory, removed afterwards. */
async function withSocketPath(fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tcpecho-unix-" });
  try {
    await fn(`${dir}/echo.sock`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  ...unixTest(
    "serve --unix echoes to our client and socat, shows peers as '', removes its socket at exit",
  ),
  async fn(t) {
    await withSocketPath(async (path) => {
      await using server = await ServeProcess.start(["--unix", path]);
      equal(server.stdout.lines[0], `Starting up on ${path}`);

      await t.step("our client", async () => {
        const ours = await runCli(["send", "--unix", path, "over a Unix socket"]);
        equal(ours.stderr, "");
        equal(
          ours.stdout,
          `connecting to ${path}\nsending b'over a Unix socket'\n` +
            "received b'over a Unix sock'\nreceived b'et'\nclosing socket\n",
        );
        equal(ours.code, 0);
        await server.stdout.waitForCount(/^Closing current connection$/, 1);
        equal(
          server.stdout.text,
          `Starting up on ${path}
waiting for a connection
connection from ''
received b'over a Unix sock'
sending data back to the client
received b'et'
sending data back to the client
received b''
no data from ''
Closing current connection
waiting for a connection`,
        );
      });

      await t.step({
        ...needs("socat", "socat UNIX-CONNECT"),
        fn: async () =>
          equal(
            (await runProgram("socat", ["-", `UNIX-CONNECT:${path}`], "from socat")).stdout,
            "from socat",
          ),
      });

      equal((await server.stop()).code, 0);
      const totals = hasProgram("socat") ? "2 connections, 28" : "1 connection, 18";
      equal(server.stdout.lines.at(-1), `shut down: ${totals} bytes echoed`);
      equal(pathExists(path), false, "the socket file is removed at shutdown");
    });
  },
});

Deno.test({
  ...unixTest("serve --unix never replaces an existing file; send --unix names a missing socket"),
  async fn() {
    await withSocketPath(async (path) => {
      // A server killed outright leaves its socket file behind.
      const killed = await ServeProcess.start(["--unix", path]);
      await killed.stop("SIGKILL");
      equal(pathExists(path), true);
      const stale = await runCli(["serve", "--unix", path]);
      equal(
        stale.stderr,
        `error: cannot listen on ${path}: a socket already exists there; if no server uses it, ` +
          "remove it\n",
      );
      equal(stale.code, 1);
      await Deno.remove(path);

      await Deno.writeTextFile(path, "not a socket");
      const file = await runCli(["serve", "--unix", path]);
      match(file.stderr, /: a file that is not a socket already exists there;/);
      equal(file.code, 1);
      equal(await Deno.readTextFile(path), "not a socket");
      await Deno.remove(path);

      const missing = await runCli(["send", "--unix", path]);
      equal(missing.stderr, `error: cannot connect to ${path}: no such file or directory\n`);
      equal(missing.code, 1);

      const mixed = await runCli(["send", "--unix", path, "--port", "7"]);
      equal(
        mixed.stderr,
        "error: --unix and --port do not go together (see 'tcpecho send --help')\n",
      );
      equal(mixed.code, 2);
    });
  },
});

Deno.test({
  ...unixTest("bench --unix and send --unix --count load and ping serve on a Unix socket"),
  async fn() {
    await withSocketPath(async (path) => {
      await using server = await ServeProcess.start(["--unix", path, "--quiet"]);

      const bench = await runCli(
        ["bench", "--unix", path, "-c", "4", "-s", "100", "-w", "2", "--count", "50", "--json"],
      );
      equal(bench.stderr, "");
      equal(bench.code, 0);
      const report = JSON.parse(bench.stdout);
      deepEqual(
        [report.target, report.messages, report.bytes, report.errors, report.ok],
        [path, 200, 20_000, NO_BENCH_ERRORS, true],
      );

      const ping = await runCli(["send", "--unix", path, "--count", "3", "--interval", "0"]);
      equal(ping.stderr, "");
      equal(ping.code, 0);
      const lines = ping.stdout.trimEnd().split("\n");
      equal(lines.length, 7, ping.stdout);
      equal(lines[0], `ECHO ${path}: 91 bytes per message`);
      for (const [index, line] of lines.slice(1, 4).entries()) {
        match(line, new RegExp(`^91 bytes from ${RegExp.escape(path)}: seq=${index + 1} time=`));
      }
      equal(lines[4], `--- ${path} echo statistics ---`);
      match(lines[5], /^3 messages sent, 3 received, 0% loss, time \d+ms$/);

      equal((await server.stop()).code, 0);
      equal(server.stdout.lines.at(-1), "shut down: 5 connections, 20,273 bytes echoed");
    });
  },
});
