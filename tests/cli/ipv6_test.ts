import { equal } from "node:assert/strict";
import {
  hasLoopback6,
  hasProgram,
  needs,
  runCli,
  runProgram,
  ServeProcess,
  skipUnless,
} from "../helpers.ts";

Deno.test({
  ...skipUnless(
    hasLoopback6(),
    "no IPv6 loopback address here",
    "serve --host ::1 echoes to our client and socat TCP6, peers printed as Python does",
  ),
  async fn(t) {
    await using server = await ServeProcess.start(["--host", "::1"]);
    const port = String(server.port);
    equal(server.stdout.lines[0], `Starting up on ::1 port ${port}`);

    await t.step("our client", async () => {
      const ours = await runCli(["send", "--host", "::1", "--port", port, "over IPv6"]);
      equal(ours.stderr, "");
      equal(
        ours.stdout,
        `connecting to ::1 port ${port}\nsending b'over IPv6'\nreceived b'over IPv6'\n` +
          "closing socket\n",
      );
      equal(ours.code, 0);
    });

    await t.step({
      ...needs("socat", "socat TCP6"),
      fn: async () => {
        const socat = await runProgram("socat", ["-", `TCP6:[::1]:${port}`], "from socat");
        equal(socat.stdout, "from socat");
        equal(socat.code, 0);
      },
    });

    equal((await server.stop()).code, 0);
    const peers = server.stdout.lines.filter((line) => line.startsWith("connection from "));
    for (const line of peers) {
      equal(/^connection from \('::1', \d+, 0, 0\)$/.test(line), true, line);
    }
    equal(peers.length, hasProgram("socat") ? 2 : 1);
  },
});

Deno.test("-4 and -6 keep send to one address family, and say so when the address is the other", async () => {
  await using server = await ServeProcess.start([]);
  const port = String(server.port);
  const ok = await runCli(["send", "-4", "--host", "localhost", "--port", port, "-q", "four"]);
  equal(ok.stderr, "");
  equal(ok.code, 0);
  const wrong = await runCli(["send", "-4", "--host", "::1", "--port", port]);
  equal(wrong.stderr, "error: ::1 is an IPv6 address, but -4 asks for IPv4\n");
  equal(wrong.code, 2);
  const both = await runCli(["send", "-4", "-6", "--port", port]);
  equal(both.stderr, "error: give either -4 or -6, not both (see 'tcpecho send --help')\n");
  equal(both.code, 2);
  const unix = await runCli(["bench", "-6", "--unix", "/nonexistent.sock", "-n", "1"]);
  equal(
    unix.stderr,
    "error: -6 chooses a TCP address: leave it out with --unix or --udp (see 'tcpecho bench " +
      "--help')\n",
  );
  equal((await server.stop()).code, 0);
});
