/**
 * The `--help` of every command and the flag tables of `docs/` say what the declarations in
 * `cli/flags.ts` make, flag by flag.
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { allCommands } from "../../main.ts";
import { type Flag, parseCommand } from "../../cli/flags.ts";
import { docsPage, withFlagTable } from "../../tools/docs.ts";
import { runCli } from "../helpers.ts";

const SPECS = (await allCommands()).map(({ spec }) => spec);

/** One entry of the "Options:" section of a help text, read back from the text alone. */
interface HelpEntry {
  short?: string;
  value?: string;
  text: string;
}

/** Reads the "Options:" section: each flag's short form, placeholder and (unwrapped) text. */
function readOptions(help: string): Map<string, HelpEntry> {
  const lines = help.split("\n");
  const entries = new Map<string, HelpEntry>();
  let last: HelpEntry | undefined;
  for (const line of lines.slice(lines.indexOf("Options:") + 1)) {
    if (line === "") break;
    const head = line.match(/^ {2}(?:-(\w), | {4})--([\w-]+)(?: ([A-Z][A-Z:/]*))?(?: {2,}(.*))?$/);
    if (head) {
      const [, short, name, value, text] = head;
      last = { short, value, text: text ?? "" };
      entries.set(name, last);
    } else {
      ok(last && /^ {25}\S/.test(line), `an option line out of place: '${line}'`);
      last.text = `${last.text} ${line.trim()}`.trim();
    }
  }
  return entries;
}

/** What the help must say of `flag`: its help, then its default. */
function expected(flag: Flag): HelpEntry {
  const shown = flag.value === undefined ? undefined : flag.default ?? flag.absent;
  return {
    short: flag.short,
    value: flag.value,
    text: shown === undefined ? flag.help : `${flag.help} (default: ${shown})`,
  };
}

/** Splits an example command line as a shell would (double quotes only). */
function words(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map(([, quoted, bare]) => quoted ?? bare);
}

for (const spec of SPECS) {
  Deno.test(`${spec.name} --help lists each declared flag with its help and default`, async () => {
    const { code, stdout, stderr } = await runCli([spec.name, "--help"]);
    deepEqual([code, stderr], [0, ""]);
    const help = stdout.trimEnd();
    const usage = `Usage: tcpecho ${spec.name} [options]`;
    equal(help.split("\n")[0], usage + (spec.arguments ?? []).map((a) => ` ${a.usage}`).join(""));
    const options = readOptions(help);
    deepEqual([...options.keys()], Object.keys(spec.flags));
    for (const [name, flag] of Object.entries(spec.flags)) {
      deepEqual(options.get(name), expected(flag), `--${name}`);
    }
    for (const arg of spec.arguments ?? []) ok(help.includes(`\n  ${arg.name} `), arg.name);
    for (const example of spec.examples) {
      ok(help.includes(`\n  ${example}\n`) || help.endsWith(example));
    }
    const wide = help.split("\n").filter((line) => line.length > 80);
    deepEqual(wide, [], "lines wider than 80 columns");
  });
}

Deno.test("every example in the help parses against the declarations", () => {
  for (const spec of SPECS) {
    for (const example of spec.examples) {
      const [program, name, ...args] = words(example);
      deepEqual([program, name], ["tcpecho", spec.name]);
      parseCommand(spec, args);
    }
  }
});

Deno.test("the flag tables of docs/ are the ones the declarations make (deno task docs)", async () => {
  for (const spec of SPECS) {
    const page = await Deno.readTextFile(docsPage(spec.name));
    equal(page, withFlagTable(page, spec), `docs/${spec.name}.md: run deno task docs`);
  }
});
