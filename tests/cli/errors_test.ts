import { deepEqual, equal, match } from "node:assert/strict";
import { type CliResult, freePort, readExactly, runCli, TcpFixture, writeAll } from "../helpers.ts";
import { DEFAULT_MESSAGE } from "../../client.ts";
import { startEchoServer } from "../../lib/mod.ts";
import { explainNetworkError, RuntimeError, UsageError } from "../../lib/base/errors.ts";

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
  [["send", "--port", "70000"], "--port must be a port number from 1 to 65535, not '70000'"],
  [["send", "-b", "17MiB"], "--buffer-size must be a size from 1 B to 16 MiB, not '17MiB'"],
  [
    ["send", "-b", "64kb"],
    "--buffer-size takes no '64kb': write 64kB for 64,000 bytes or 64KiB for 65,536",
  ],
  [
    ["bench", "--duration", "3 days"],
    "--duration must be a duration such as 250ms, 1.5s, 2m or 1h (a bare number is in seconds), " +
    "not '3 days'",
  ],
  [
    ["serve", "--delay", "soon"],
    "--delay must be a duration such as 250ms, 1.5s, 2m or 1h (a bare number is in " +
    "milliseconds), not 'soon'",
  ],
  [["serve", "--log", "xml"], "--log must be text or json, not 'xml'"],
  [
    ["send", "--file", "x", "msg"],
    "give either MESSAGE or --file, not both (see 'tcpecho send --help')",
  ],
  [["bogus"], "unknown command 'bogus': expected serve, send, bench or ctl (see 'tcpecho --help')"],
  [["--bogus"], "unknown flag --bogus: a command comes first (see 'tcpecho --help')"],
];

/** Runs each case (independent runs, started together) and expects its one usage error line. */
async function assertUsageErrors(cases: [string[], string][]): Promise<void> {
  const results = await Promise.all(cases.map(([args]) => runCli(args)));
  cases.forEach(([args, message], i) => {
    assertError(results[i], 2, message);
    equal(results[i].stdout, "", `stdout of tcpecho ${args.join(" ")}`);
  });
}

Deno.test("usage errors exit 2 with one line naming the problem", async () => {
  await assertUsageErrors(USAGE_ERRORS);
});

/** Values out of range, negative or zero: each names the flag, the value and the allowed range. */
const VALUE_ERRORS: [string[], string][] = [
  [
    ["send", "--count", "-1"],
    "--count must be a whole number from 1 to 9007199254740991, not '-1'",
  ],
  [["send", "-c", "-1"], "--count must be a whole number from 1 to 9007199254740991, not '-1'"],
  [
    ["send", "--interval", "-1"],
    "--interval must be a duration from 0 to 24.8 days, not '-1'",
  ],
  [
    ["send", "--timeout", "-3"],
    "--timeout must be a duration from 1ms to 24.8 days, not '-3'",
  ],
  [
    ["send", "--timeout", "0"],
    "--timeout must be a duration from 1ms to 24.8 days, not '0'",
  ],
  [["serve", "--port", "-1"], "--port must be a port number from 0 to 65535, not '-1'"],
  [["send", "--buffer-size", "-5"], "--buffer-size must be a size from 1 B to 16 MiB, not '-5'"],
  [["bench", "-s", "-16"], "--size must be a size from 1 B to 16 MiB, not '-16'"],
  [["bench", "--rate", "0"], "--rate must be a whole number from 1 to 10000000, not '0'"],
  [
    ["bench", "--reconnect", "x"],
    "--reconnect must be a whole number from 1 to 1000000000000, not 'x'",
  ],
  [
    ["bench", "--connect-rate", "-1"],
    "--connect-rate must be a whole number from 1 to 1000000, not '-1'",
  ],
  [
    ["bench", "--ramp", "0"],
    "--ramp must be a duration from 1ms to 24.8 days, not '0'",
  ],
  // Timers take at most 2^31-1 ms: longer waits are refused, never cut short.
  [
    ["serve", "--idle-timeout", "2592000"],
    "--idle-timeout must be a duration from 1ms to 24.8 days, not '2592000'",
  ],
  [
    ["send", "--timeout", "3000000"],
    "--timeout must be a duration from 1ms to 24.8 days, not '3000000'",
  ],
  [
    ["send", "--count", "3", "--interval", "3000000"],
    "--interval must be a duration from 0 to 24.8 days, not '3000000'",
  ],
  [
    ["bench", "--duration", "3000000"],
    "--duration must be a duration from 1ms to 24.8 days, not '3000000'",
  ],
  [
    ["serve", "--drain-timeout", "2147484"],
    "--drain-timeout must be a duration from 0 to 24.8 days, not '2147484'",
  ],
  [
    ["bench", "--timeout", "0.0001"],
    "--timeout must be a duration from 1ms to 24.8 days, not '0.0001'",
  ],
  // A client needs a real port; the host must name something.
  [["send", "--port", "0"], "--port must be a port number from 1 to 65535, not '0'"],
  [["bench", "--port", "0"], "--port must be a port number from 1 to 65535, not '0'"],
  [["send", "--host", ""], "--host needs a host name or an address, not ''"],
  [
    ["send", "--host", "127.0.0.1:0"],
    "the port in --host must be a port number from 1 to 65535, not '0'",
  ],
  [
    ["send", "--host", "127.0.0.1:24799", "--port", "24799"],
    "give the port once: in --host HOST:PORT or with --port, not both (see 'tcpecho send --help')",
  ],
  [
    ["serve", "--unix", `/tmp/${"x".repeat(120)}`],
    "the --unix path is 125 bytes long: a Unix socket path can have at most 107 bytes, " +
    "so choose a shorter one (see 'tcpecho serve --help')",
  ],
];

Deno.test("value errors exit 2 naming the flag, the value and the allowed range", async () => {
  await assertUsageErrors(VALUE_ERRORS);
});

Deno.test("send --host takes HOST:PORT and [IPV6]:PORT as socat and ncat do", async () => {
  await using v4 = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  await using v6 = await startEchoServer({ hostname: "::1", port: 0 });
  const [four, six] = await Promise.all([
    runCli(["send", "--host", `127.0.0.1:${v4.addr.port}`, "hi"]),
    runCli(["send", "--host", `[::1]:${v6.addr.port}`, "hi"]),
  ]);
  equal(four.code, 0, four.stderr);
  match(four.stdout, new RegExp(`^connecting to 127\\.0\\.0\\.1 port ${v4.addr.port}\n`));
  equal(six.code, 0, six.stderr);
  match(six.stdout, new RegExp(`^connecting to ::1 port ${v6.addr.port}\n`));
});

Deno.test("numbers with spaces around them are taken alike by every flag", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const result = await runCli([
    "send",
    "--host",
    "127.0.0.1",
    "--port",
    ` ${server.addr.port}`,
    "--buffer-size",
    " 32",
    "--timeout",
    " 5 ",
    "-q",
  ]);
  deepEqual([result.code, result.stdout, result.stderr], [0, "", ""]);
});

Deno.test("send --file of a directory says so in plain words, exit 1", async () => {
  assertError(
    await runCli(["send", "--file", "/tmp"]),
    1,
    "cannot read '/tmp': it is a directory, not a file",
  );
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

Deno.test("send --json prints one JSON object when the server cannot be reached", async () => {
  const port = freePort();
  for (const ping of [[], ["--count", "2"]]) {
    const result = await runCli(["send", "--port", String(port), "--json", ...ping]);
    assertError(result, 1, `cannot connect to localhost port ${port}: connection refused`);
    const summary = JSON.parse(result.stdout);
    equal(summary.error, `cannot connect to localhost port ${port}: connection refused`);
    equal(summary.host, "localhost");
    equal(summary.port, port);
    equal(result.stdout.trimEnd().split("\n").length, 1, "exactly one object");
  }
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
      // How Deno says it: a plain Error without a code.
      new Error("failed to lookup address information: Name or service not known"),
      "connect",
      "cannot connect to localhost port 80: unknown host",
    ],
    [
      Object.assign(new Error("getaddrinfo ENOTFOUND nosuch.invalid"), { code: "ENOTFOUND" }),
      "connect",
      "cannot connect to localhost port 80: unknown host",
    ],
    [
      // Deno's other failures without a class of their own carry their OS code.
      Object.assign(new Error("Something Odd (os error 99)"), { code: "EODD" }),
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

const MAIN_URL = new URL("../../main.ts", import.meta.url).href;

/**
 * Throws `expression` into main.ts's error report in a child process, as a failure inside a
 * command reaches it, and returns what the child printed and its exit code.
 */
async function report(expression: string, debug: boolean): Promise<CliResult> {
  const script = `import { reportError } from ${JSON.stringify(MAIN_URL)};
import { RuntimeError, UsageError } from ${
    JSON.stringify(new URL("../../lib/base/errors.ts", import.meta.url).href)
  };
Deno.exit(reportError(${expression}));`;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    env: { NO_COLOR: "1", ...(debug ? { TCPECHO_DEBUG: "1" } : {}) },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    signal: output.signal,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("a bug is an internal error, exit 70, with its stack only under TCPECHO_DEBUG=1", async () => {
  const [plain, debug, thrownText] = await Promise.all([
    report(`new TypeError("x.y is not a function")`, false),
    report(`new TypeError("x.y is not a function")`, true),
    report(`"a string"`, false),
  ]);
  equal(plain.code, 70);
  equal(
    plain.stderr,
    "error: internal error: x.y is not a function\n" +
      "this is a bug in tcpecho: TCPECHO_DEBUG=1 (with deno --allow-env) shows where it happened\n",
  );
  equal(debug.code, 70);
  const [first, ...stack] = debug.stderr.trimEnd().split("\n");
  equal(first, "error: internal error: x.y is not a function");
  equal(stack[0], "TypeError: x.y is not a function");
  match(stack[1], /^\s+at /);
  equal(thrownText.code, 70);
  match(thrownText.stderr, /^error: internal error: a string\n/);
});

Deno.test("expected failures stay one error line, exit 1 or 2, even under TCPECHO_DEBUG=1", async () => {
  const cases: [string, number, string][] = [
    [`new UsageError("--port must be a port number")`, 2, "--port must be a port number"],
    [`new RuntimeError("cannot connect")`, 1, "cannot connect"],
    [`new Deno.errors.ConnectionRefused("refused")`, 1, "refused"],
  ];
  const results = await Promise.all(cases.map(([expression]) => report(expression, true)));
  cases.forEach(([_, code, message], i) => assertError(results[i], code, message));
});
