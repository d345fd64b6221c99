import { deepEqual, equal, ok } from "node:assert/strict";
import { DEFAULT_MESSAGE } from "../../client.ts";
import { pattern, runCli, ServeProcess } from "../helpers.ts";

Deno.test("send MESSAGE sends the given text and prints each 16-byte read", async () => {
  await using server = await ServeProcess.start(["--quiet"]);
  const client = await runCli(["send", "--port", String(server.port), "hello, echo world!"]);
  const transcript = `connecting to localhost port ${server.port}
sending b'hello, echo world!'
received b'hello, echo worl'
received b'd!'
closing socket
`;
  deepEqual([client.code, client.stdout, client.stderr], [0, transcript, ""]);
});

Deno.test("send - sends standard input, control bytes shown escaped", async () => {
  await using server = await ServeProcess.start(["--quiet"]);
  const client = await runCli(["send", "--port", String(server.port), "-b", "64", "-"], {
    stdin: "tab\there\r\nbell\x07",
  });
  equal(client.stderr, "");
  equal(client.code, 0);
  equal(
    client.stdout.split("\n").slice(1).join("\n"),
    `sending b'tab\\there\\r\\nbell\\x07'
received b'tab\\there\\r\\nbell\\x07'
closing socket
`,
  );
});

Deno.test("send --json prints one summary object and nothing else", async () => {
  await using server = await ServeProcess.start(["--quiet"]);
  const client = await runCli(["send", "--port", String(server.port), "--json"]);
  equal(client.stderr, "");
  equal(client.code, 0);
  const lines = client.stdout.trimEnd().split("\n");
  equal(lines.length, 1);
  const summary = JSON.parse(lines[0]);
  ok(summary.round_trip_ms >= 0, `round_trip_ms is ${summary.round_trip_ms}`);
  delete summary.round_trip_ms;
  deepEqual(summary, {
    host: "localhost",
    port: server.port,
    bytes_sent: DEFAULT_MESSAGE.length,
    bytes_received: DEFAULT_MESSAGE.length,
    matched: true,
  });
});

Deno.test("send --quiet prints nothing when the echo matches", async () => {
  await using server = await ServeProcess.start(["--quiet"]);
  const client = await runCli(["send", "--port", String(server.port), "--quiet", "shh"]);
  deepEqual([client.code, client.stdout, client.stderr], [0, "", ""]);
});

Deno.test("send --file of 64 MiB never deadlocks: it writes and reads at once", async () => {
  await using server = await ServeProcess.start(["--quiet", "--buffer-size", "64KiB"]);
  const file = await Deno.makeTempFile({ prefix: "tcpecho-send-" });
  try {
    await Deno.writeFile(file, pattern(64 * 1024 ** 2));
    const client = await runCli([
      "send",
      "--port",
      String(server.port),
      "--file",
      file,
      "--quiet",
      "--buffer-size",
      "64KiB",
      "--timeout",
      "20",
    ]);
    deepEqual([client.code, client.stdout, client.stderr], [0, "", ""]);
  } finally {
    await Deno.remove(file);
  }
  equal((await server.stop()).code, 0);
  equal(server.stdout.lines.at(-1), "shut down: 1 connection, 67,108,864 bytes echoed");
});
