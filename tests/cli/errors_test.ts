import { equal, match } from "node:assert/strict";
import { type CliResult, freePort, readExactly, runCli, TcpFixture, writeAll } from "../helpers.ts";
import { DEFAULT_MESSAGE } from "../../client.ts";
import { explainNetworkError, RuntimeError, UsageError } from "../../lib/errors.ts";

const MESSAGE = new TextEncoder().encode(DEFAULT_MESSAGE);

/** Asserts the run exited with `code` and printed exactly one `error:` line and no stack trace. */
function assertError(result: CliResult, code: number, message: string | RegExp): void {
  equal(result.code, code, `exit code ${result.code}; stderr: ${result.stderr}`);
  match(result.stderr, /^error: [^\n]*\n$/, "stderr must be exactly one error line");
  if (typeof message === "string") equal(result.stderr, `error: ${message}\n`);
  else match(result.stderr, message);
}

// One of each kind through the real CLI; tests/cli_args_test.ts covers the validators in full.
const USAGE_ERRORS: [string[], string][] = [
  [["serve", "--bogus"], "unknown flag --bogus (see 'tcpecho serve --help')"],
  [["send", "-p"], "flag --port needs a value (see 'tcpecho send --help')"],
  [["send", "--quiet=yes"], "flag --quiet does not take a value (see 'tcpecho send --help')"],
  [["serve", "--port", "abc"], "--port must be a port number from 0 to 65535, not 'abc'"],
  [["send", "--port", "70000"], "--port must be a port number from 0 to 65535, not '70000'"],
  [["send", "-b", "17MiB"], "--buffer-size must be a size from 1 B to 16 MiB, not '17MiB'"],
  [["serve", "--log", "xml"], "--log must be text or json, not 'xml'"],
  [
    ["send", "--file", "x", "msg"],
    "give either MESSAGE or --file, not both (see 'tcpecho send --help')",
  ],
  [["bogus"], "unknown command 'bogus': expected serve, send or bench (see 'tcpecho --help')"],
];

Deno.test("usage errors exit 2 with one line naming the problem", async () => {
  // Independent runs: start them together.
  const results = await Promise.all(USAGE_ERRORS.map(([args]) => runCli(args)));
  USAGE_ERRORS.forEach(([args, message], i) => {
    assertError(results[i], 2, message);
    equal(results[i].stdout, "", `stdout of tcpecho ${args.join(" ")}`);
  });
});

Deno.test("serve on a port in use exits 1", async () => {
  using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = busy.addr.port;
  assertError(
    await runCli(["serve", "--host", "127.0.0.1", "--port", String(port)]),
    1,
    `cannot listen on 127.0.0.1 port ${port}: the address is already in use`,
  );
});

Deno.test("serve on an address this machine does not have exits 1", async () => {
  // 192.0.2.1 is a documentation address: binding to it fails locally and sends nothing.
  assertError(
    await runCli(["serve", "--host", "192.0.2.1", "--port", "0"]),
    1,
    "cannot listen on 192.0.2.1 port 0: the address is not available on this machine",
  );
});

/** Runs without any Deno permission: nothing is sent, so defaults show without traffic. */
const PERMISSION_ERRORS: [string[], string[], string][] = [
  [
    ["serve"],
    [],
    "cannot listen on localhost port 10000: missing permission, run deno with --allow-net=localhost:10000",
  ],
  [
    ["serve", "--port", "0"],
    [],
    "cannot listen on localhost port 0: missing permission, run deno with --allow-net=localhost",
  ],
  [
    ["serve", "--host", "::1", "--port", "7"],
    [],
    "cannot listen on ::1 port 7: missing permission, run deno with --allow-net=[::1]:7",
  ],
  [
    ["send"],
    [],
    "cannot connect to localhost port 10000: missing permission, run deno with --allow-net=localhost:10000",
  ],
  [
    ["send", "--host", "::1", "--port", "7"],
    [],
    "cannot connect to ::1 port 7: missing permission, run deno with --allow-net=[::1]:7",
  ],
  [
    ["send", "--file", "deno.json"],
    ["--allow-net"],
    "cannot read 'deno.json': missing permission, run deno with --allow-read=deno.json",
  ],
];

Deno.test("a missing Deno permission names the flag to add", async () => {
  const results = await Promise.all(
    PERMISSION_ERRORS.map(([args, permissions]) => runCli(args, { permissions })),
  );
  PERMISSION_ERRORS.forEach(([_, __, message], i) => assertError(results[i], 1, message));
});

Deno.test("send to a port nobody listens on exits 1: connection refused", async () => {
  const port = freePort();
  const result = await runCli(["send", "--host", "127.0.0.1", "--port", String(port)]);
  assertError(result, 1, `cannot connect to 127.0.0.1 port ${port}: connection refused`);
  equal(result.stdout, `connecting to 127.0.0.1 port ${port}\n`);
});

Deno.test("send to a host that does not resolve exits 1: unknown host", async () => {
  // .invalid never resolves (RFC 6761); only a name lookup happens.
  assertError(
    await runCli(["send", "--host", "nosuch.invalid", "--port", "7"]),
    1,
    "cannot connect to nosuch.invalid port 7: unknown host",
  );
});

Deno.test("send --file of a missing file exits 1", async () => {
  assertError(
    await runCli(["send", "--file", "no/such/file"]),
    1,
    "cannot read 'no/such/file': no such file or directory",
  );
});

/** Drops what the client sends until it closes. */
async function discardAll(conn: Deno.Conn): Promise<void> {
  const sink = new Uint8Array(1024);
  while (await conn.read(sink) !== null);
}

Deno.test("send gives up after --timeout when the server never answers", async () => {
  await using silent = new TcpFixture(discardAll);
  const result = await runCli(["send", "--port", String(silent.port), "--timeout", "0.5"]);
  assertError(result, 1, "timed out after 0.5 s without a reply: 0 of 91 bytes came back");
});

Deno.test("send gives up after --timeout when the echo stalls halfway", async () => {
  await using stalling = new TcpFixture(async (conn) => {
    await writeAll(conn, await readExactly(conn, 40));
    await discardAll(conn);
  });
  const result = await runCli(["send", "--port", String(stalling.port), "--timeout", "0.5"]);
  assertError(
    result,
    1,
    "timed out after 0.5 s waiting for the rest of the echo: 40 of 91 bytes came back",
  );
});

/** Reads the whole message, then answers with `reply(message)` and closes. */
function fixtureAnswering(reply: (message: Uint8Array) => Uint8Array): TcpFixture {
  return new TcpFixture(async (conn) => {
    const message = await readExactly(conn, MESSAGE.length);
    await writeAll(conn, reply(message));
    await conn.closeWrite();
    await discardAll(conn);
  });
}

Deno.test("send names the first differing offset when the echo differs", async () => {
  await using server = fixtureAnswering((message) => {
    const flipped = message.slice();
    flipped[27] ^= 0x20;
    return flipped;
  });
  const result = await runCli(["send", "--port", String(server.port)]);
  // Byte 27 is the 'v' of "very": 0x76 with bit 5 flipped is 'V', 0x56.
  assertError(result, 1, "the echo differs from what was sent at byte 27 (sent 0x76, got 0x56)");
  match(result.stdout, /received b'age\. It is Very '\nclosing socket\n$/);
});

Deno.test("send says how many bytes came back when the server closes early", async () => {
  await using server = fixtureAnswering((message) => message.subarray(0, 40));
  const result = await runCli(["send", "--port", String(server.port)]);
  assertError(result, 1, "the server closed the connection: 40 of 91 bytes came back");
});

Deno.test("send fails when the server sends more than it was given", async () => {
  await using server = fixtureAnswering((message) =>
    new Uint8Array([...message, ...new TextEncoder().encode("!!")])
  );
  const result = await runCli(["send", "--port", String(server.port)]);
  assertError(result, 1, "the server sent 2 more bytes than it was sent");
});

Deno.test("send --json still prints its summary when the echo fails", async () => {
  await using server = fixtureAnswering((message) => message.subarray(0, 40));
  const result = await runCli(["send", "--port", String(server.port), "--json"]);
  assertError(result, 1, "the server closed the connection: 40 of 91 bytes came back");
  equal(
    result.stdout,
    JSON.stringify({
      host: "localhost",
      port: server.port,
      bytes_sent: 91,
      bytes_received: 40,
      matched: false,
      error: "the server closed the connection: 40 of 91 bytes came back",
    }) + "\n",
  );
});

Deno.test("explainNetworkError says what failed and what to do", () => {
  const target = { hostname: "localhost", port: 80, permission: "--allow-net=localhost:80" };
  const cases: [unknown, "listen" | "connect", string][] = [
    [
      new Deno.errors.AddrInUse("x (os error 98)"),
      "listen",
      "cannot listen on localhost port 80: the address is already in use",
    ],
    [
      new Deno.errors.NotCapable("no"),
      "listen",
      "cannot listen on localhost port 80: missing permission, run deno with --allow-net=localhost:80",
    ],
    [
      new Deno.errors.PermissionDenied("no"),
      "listen",
      "cannot listen on localhost port 80: permission denied by the operating system (ports below 1024 need privileges)",
    ],
    [
      new Deno.errors.ConnectionRefused("x"),
      "connect",
      "cannot connect to localhost port 80: connection refused",
    ],
    [
      new Error("failed to lookup address information: Name or service not known"),
      "connect",
      "cannot connect to localhost port 80: unknown host",
    ],
    [
      new Error("Something Odd (os error 99)"),
      "connect",
      "cannot connect to localhost port 80: something Odd",
    ],
  ];
  for (const [err, action, message] of cases) {
    const explained = explainNetworkError(err, action, target);
    equal(explained instanceof RuntimeError, true);
    equal(explained.message, message);
  }
  const usage = new UsageError("bad flag");
  equal(explainNetworkError(usage, "listen", target), usage);
});
