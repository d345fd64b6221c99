import { deepEqual, equal } from "node:assert/strict";
import { formatBytesLiteral } from "../../lib/base/bytes_literal.ts";
import {
  connect,
  needs,
  readExactly,
  readToEnd,
  runProgram,
  ServeProcess,
  writeAll,
} from "../helpers.ts";

const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);
const text = (s: string) => new TextEncoder().encode(s);

/** Cases where the choice of quote matters, plus every byte value on its own. */
const CASES: Uint8Array[] = [
  new Uint8Array(),
  text("it's"),
  text('say "hi"'),
  text(`it's "both"`),
  text("'"),
  text('"'),
  text("\\'"),
  ...Array.from(ALL_BYTES, (byte) => new Uint8Array([byte])),
  ALL_BYTES,
];

/** Python's repr() of each hex-encoded byte string read from stdin, one JSON list out. */
const PYTHON_REPR =
  "import json, sys; print(json.dumps([repr(bytes.fromhex(h)) for h in json.load(sys.stdin)]))";

const toHex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

Deno.test(
  needs("python3", "formatBytesLiteral matches Python's repr for every byte and each quote choice"),
  async () => {
    const python = await runProgram(
      "python3",
      ["-c", PYTHON_REPR],
      JSON.stringify(CASES.map(toHex)),
    );
    equal(python.stderr, "");
    deepEqual(CASES.map(formatBytesLiteral), JSON.parse(python.stdout));
  },
);

Deno.test("formatBytesLiteral picks quotes and escapes as Python does", () => {
  equal(formatBytesLiteral(text("it's")), `b"it's"`);
  equal(formatBytesLiteral(text(`it's "both"`)), `b'it\\'s "both"'`);
  equal(formatBytesLiteral(text("\t\n\r\\")), "b'\\t\\n\\r\\\\'");
  equal(
    formatBytesLiteral(new Uint8Array([0, 0x1b, 0x7f, 0x80, 0xff])),
    "b'\\x00\\x1b\\x7f\\x80\\xff'",
  );
  equal(formatBytesLiteral(text(" ~")), "b' ~'");
});

/**
 * Reads `serve`'s log lines from stdin and checks that each literal is exactly Python's repr of
 * the bytes it stands for, and that together they spell out all 256 byte values in order.
 */
const PYTHON_CHECK_LOG = `
import ast, sys
literals = [line[len("received "):] for line in sys.stdin.read().splitlines()
            if line.startswith("received b")]
data = b"".join(ast.literal_eval(literal) for literal in literals)
wrong = [literal for literal in literals if repr(ast.literal_eval(literal)) != literal]
print(data == bytes(range(256)), wrong)
`;

Deno.test(needs("python3", "serve logs all 256 byte values exactly as Python's repr"), async () => {
  await using server = await ServeProcess.start(["--host", "127.0.0.1"]);
  const conn = await connect(server.port);
  await writeAll(conn, ALL_BYTES);
  equal((await readExactly(conn, 256)).length, 256);
  await conn.closeWrite();
  await readToEnd(conn);
  conn.close();
  await server.stdout.waitForCount(/^waiting for a connection$/, 2);
  // No raw control byte reaches the log.
  // deno-lint-ignore no-control-regex -- control bytes are what must not appear
  equal(/[\x00-\x1f\x7f]/.test(server.stdout.text.replaceAll("\n", "")), false);
  const check = await runProgram("python3", ["-c", PYTHON_CHECK_LOG], server.stdout.text);
  equal(check.stderr, "");
  equal(check.stdout, "True []\n");
});
