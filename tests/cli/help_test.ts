import { deepEqual, match } from "node:assert/strict";
import config from "../../deno.json" with { type: "json" };
import { SEND_HELP } from "../../client.ts";
import { HELP } from "../../main.ts";
import { SERVE_HELP } from "../../server.ts";
import { runCli } from "../helpers.ts";

const CASES: [string[], string][] = [
  [[], HELP],
  [["--help"], HELP],
  [["serve", "--help"], SERVE_HELP],
  [["help", "serve"], SERVE_HELP],
  [["send", "-h"], SEND_HELP],
];

Deno.test("--help prints the help of tcpecho and of each command, exit 0", async () => {
  const results = await Promise.all(CASES.map(([args]) => runCli(args)));
  CASES.forEach(([args, help], i) => {
    const { code, stdout, stderr } = results[i];
    deepEqual([code, stdout, stderr], [0, help + "\n", ""], `tcpecho ${args.join(" ")}`);
  });
});

Deno.test("the help texts name every command and flag", () => {
  for (const command of ["serve", "send"]) match(HELP, new RegExp(`^  ${command} `, "m"));
  for (const flag of ["--host", "--port", "--buffer-size", "--quiet", "--log", "--drain-timeout"]) {
    match(SERVE_HELP, new RegExp(`${flag} `));
  }
  for (
    const flag of ["--host", "--port", "--file", "--buffer-size", "--timeout", "--quiet", "--json"]
  ) {
    match(SEND_HELP, new RegExp(`${flag} `));
  }
  match(HELP, /Exit codes: 0 success, 1 runtime failure, 2 usage error\./);
});

Deno.test("--version prints the version from deno.json", async () => {
  const results = await Promise.all(["--version", "-V"].map((flag) => runCli([flag])));
  for (const { code, stdout, stderr } of results) {
    deepEqual([code, stdout, stderr], [0, `tcpecho ${config.version}\n`, ""]);
  }
});
