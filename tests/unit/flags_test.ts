import { deepEqual, equal, throws } from "node:assert/strict";
import { duration, oneOf, portNumber } from "../../cli/args.ts";
import { command, option, parseCommand, toggle } from "../../cli/flags.ts";
import { flagTable, renderHelp, wrap } from "../../cli/help.ts";
import { UsageError } from "../../lib/base/errors.ts";

const DEMO = command({
  name: "demo",
  summary: "a command for tests",
  description: "Does nothing.",
  arguments: [{ name: "WORD", usage: "[WORD]", help: "a word" }],
  flags: {
    port: option({ short: "p", value: "PORT", help: "a port", absent: "7", parse: portNumber(0) }),
    log: option({
      value: "FORMAT",
      help: "a format",
      default: "text",
      parse: oneOf("text", "json"),
    }),
    "very-long-flag-name": option({ value: "S", help: "a wait", parse: duration() }),
    quiet: toggle({ short: "q", help: "say nothing" }),
  },
  examples: ["tcpecho demo -p 8"],
});

function throwsUsage(run: () => unknown, message: string): void {
  throws(run, (err) => err instanceof UsageError && err.message === message);
}

Deno.test("parseCommand types values: parsed, defaulted, undefined when absent, toggles boolean", () => {
  deepEqual(parseCommand(DEMO, ["-p", "8", "-q", "hi"]), {
    flags: { port: 8, log: "text", "very-long-flag-name": undefined, quiet: true, help: false },
    positionals: ["hi"],
  });
  deepEqual(parseCommand(DEMO, ["--log=json", "--very-long-flag-name", "1.5"]).flags, {
    port: undefined,
    log: "json",
    "very-long-flag-name": 1500,
    quiet: false,
    help: false,
  });
});

Deno.test("parseCommand refuses bad values and extra arguments, naming them", () => {
  throwsUsage(() => parseCommand(DEMO, ["--log", "xml"]), "--log must be text or json, not 'xml'");
  throwsUsage(
    () => parseCommand(DEMO, ["-p", "x"]),
    "--port must be a port number from 0 to 65535, not 'x'",
  );
  throwsUsage(
    () => parseCommand(DEMO, ["a", "b"]),
    "unexpected argument 'b' (see 'tcpecho demo --help')",
  );
  throwsUsage(
    () => parseCommand(DEMO, ["--bogus"]),
    "unknown flag --bogus (see 'tcpecho demo --help')",
  );
});

Deno.test("parseCommand checks nothing else when --help is given", () => {
  deepEqual(parseCommand(DEMO, ["-p", "x", "a", "b", "-h"]).flags.help, true);
});

Deno.test("renderHelp lays out usage, arguments, options with defaults and examples", () => {
  equal(
    renderHelp(DEMO),
    `Usage: tcpecho demo [options] [WORD]

Does nothing.

Arguments:
  WORD                   a word

Options:
  -p, --port PORT        a port (default: 7)
      --log FORMAT       a format (default: text)
      --very-long-flag-name S
                         a wait
  -q, --quiet            say nothing
  -h, --help             show this help

Units:
  S                      a duration such as 250ms, 1.5s, 2m or 1h (a bare number
                         is in seconds)

Examples:
  tcpecho demo -p 8`,
  );
});

Deno.test("wrap breaks at spaces within the width", () => {
  deepEqual(wrap("aa bb cc dd", 5), ["aa bb", "cc dd"]);
  deepEqual(wrap("a-very-long-word x", 5), ["a-very-long-word", "x"]);
});

Deno.test("flagTable writes one row per argument and flag, aligned, with | escaped", () => {
  const table = flagTable(command({
    name: "t",
    summary: "",
    description: "",
    flags: { pipe: option({ value: "X", help: "a | b", absent: "none", parse: (t) => t }) },
    examples: [],
  }));
  equal(
    table,
    `| flag         | meaning        | default |
| ------------ | -------------- | ------- |
| \`--pipe X\`   | a \\| b         | none    |
| \`-h, --help\` | show this help |         |`,
  );
});
