import { deepEqual, match } from "node:assert/strict";
import config from "../../deno.json" with { type: "json" };
import { BENCH } from "../../bench.ts";
import { renderHelp } from "../../cli/help.ts";
import { SEND } from "../../client.ts";
import { help } from "../../main.ts";
import { SERVE } from "../../server.ts";
import { runCli } from "../helpers.ts";

const HELP = await help();

const CASES: [string[], string][] = [
  [[], HELP],
  [["--help"], HELP],
  [["serve", "--help"], renderHelp(SERVE)],
  [["help", "serve"], renderHelp(SERVE)],
  [["send", "-h"], renderHelp(SEND)],
  [["bench", "--port", "nonsense", "--help"], renderHelp(BENCH)],
];

Deno.test("--help prints the help of tcpecho and of each command, exit 0", async () => {
  const results = await Promise.all(CASES.map(([args]) => runCli(args)));
  CASES.forEach(([args, help], i) => {
    const { code, stdout, stderr } = results[i];
    deepEqual([code, stdout, stderr], [0, help + "\n", ""], `tcpecho ${args.join(" ")}`);
  });
});

Deno.test("tcpecho --help names every command and the exit codes", () => {
  for (const command of ["serve", "send", "bench"]) match(HELP, new RegExp(`^  ${command} `, "m"));
  match(HELP, /Exit codes: 0 success, 1 runtime failure, 2 usage error, 70 internal error/);
  match(HELP, /130 interrupted\./);
});

Deno.test("--version prints the version from deno.json", async () => {
  const results = await Promise.all(["--version", "-V"].map((flag) => runCli([flag])));
  for (const { code, stdout, stderr } of results) {
    deepEqual([code, stdout, stderr], [0, `tcpecho ${config.version}\n`, ""]);
  }
});
