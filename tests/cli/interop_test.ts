import { equal } from "node:assert/strict";
import { DEFAULT_MESSAGE } from "../../client.ts";
import {
  CLASSIC_SERVER_LOG,
  exited,
  freePort,
  needs,
  normalisePeers,
  runCli,
  runProgram,
  ServeProcess,
  waitUntilAccepting,
} from "../helpers.ts";

/** Runs `client` against a fresh server and checks both the echo and the classic server log. */
async function serveClassicTo(
  client: (port: number) => Promise<{ stdout: string; code: number }>,
  expected = DEFAULT_MESSAGE,
): Promise<void> {
  await using server = await ServeProcess.start(["--host", "127.0.0.1"]);
  const result = await client(server.port);
  equal(result.code, 0);
  equal(result.stdout, expected);
  await server.stdout.waitForCount(/^waiting for a connection$/, 2);
  equal(
    normalisePeers(server.stdout.lines.slice(1).join("\n")),
    CLASSIC_SERVER_LOG,
  );
}

Deno.test(needs("socat", "serve echoes to socat, which half-closes on end of input"), async () => {
  await serveClassicTo((port) =>
    runProgram("socat", ["-t", "5", "-", `TCP:127.0.0.1:${port}`], DEFAULT_MESSAGE)
  );
});

Deno.test(
  needs("nc", "serve echoes to nc (netcat-openbsd, -N shuts down on end of input)"),
  async () => {
    await serveClassicTo((port) =>
      runProgram("nc", ["-N", "127.0.0.1", String(port)], DEFAULT_MESSAGE)
    );
  },
);

Deno.test(
  needs("ncat", "serve echoes to ncat, which half-closes on end of input"),
  async () => {
    await serveClassicTo((port) =>
      runProgram("ncat", ["127.0.0.1", String(port)], DEFAULT_MESSAGE)
    );
  },
);

/** The classic tutorial client: send, then read 16 bytes at a time until all came back. */
const PYTHON_CLIENT = `
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
message = sys.argv[2].encode()
sock.sendall(message)
received = 0
while received < len(message):
    data = sock.recv(16)
    received += len(data)
    print(repr(data))
sock.close()
`;

Deno.test(needs("python3", "serve echoes to a Python socket client"), async () => {
  await serveClassicTo(async (port) => {
    const result = await runProgram("python3", [
      "-c",
      PYTHON_CLIENT,
      String(port),
      DEFAULT_MESSAGE,
    ]);
    equal(result.stderr, "");
    // Chunks may split anywhere; joined, they must be the message.
    const echoed = result.stdout.trimEnd().split("\n")
      .map((line) => line.replace(/^b'(.*)'$/, "$1")).join("");
    return { code: result.code, stdout: echoed };
  });
});

Deno.test(needs("socat", "send verifies its echo against socat TCP-LISTEN,fork PIPE"), async () => {
  const port = freePort();
  const socat = new Deno.Command("socat", {
    args: [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, "PIPE"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitUntilAccepting(port);
    const client = await runCli(["send", "--host", "127.0.0.1", "--port", String(port)]);
    equal(client.stderr, "");
    equal(client.code, 0);
    equal(client.stdout.split("\n")[1], `sending b'${DEFAULT_MESSAGE}'`);
    const big = await runCli([
      "send",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--buffer-size",
      "4KiB",
      "--json",
      "-",
    ], { stdin: "x".repeat(1024 * 1024) });
    equal(big.stderr, "");
    equal(JSON.parse(big.stdout).bytes_received, 1024 * 1024);
  } finally {
    socat.kill("SIGTERM");
    await exited(socat, "socat");
  }
});
