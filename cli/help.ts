/**
 * The texts generated from a command's declarations (`flags.ts`): its `--help`, and the flag
 * table of its page in `docs/`.
 *
 * @module
 */

import type { Argument, CommandSpec, Flag, Flags } from "./flags.ts";

/** `--help` fits a terminal of this many columns. */
export const HELP_WIDTH = 80;
/** The column where the description of each flag starts in `--help`. */
export const HELP_COLUMN = 25;

/** How a flag is written: `-p, --port PORT`, `--quiet`. */
export function flagLabel(name: string, flag: Flag): string {
  const short = flag.short === undefined ? "" : `-${flag.short}, `;
  return `${short}--${name}${flag.value === undefined ? "" : ` ${flag.value}`}`;
}

/** What `--help` and the docs show as the default: the `default` value, or `absent`. */
export function flagDefault(flag: Flag | Argument): string | undefined {
  if ("usage" in flag) return flag.absent;
  return flag.value === undefined ? undefined : flag.default ?? flag.absent;
}

/** The usage line: `Usage: tcpecho send [options] [MESSAGE | -]`. */
export function usageLine(command: CommandSpec<Flags>): string {
  const args = (command.arguments ?? []).map((arg) => ` ${arg.usage}`).join("");
  return `Usage: tcpecho ${command.name} [options]${args}`;
}

/**
 * The `--help` text of `command`: usage line, description, arguments, options (each with its
 * default), notes and examples, at most {@linkcode HELP_WIDTH} columns wide.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { command, toggle } from "./flags.ts";
 * import { renderHelp } from "./help.ts";
 *
 * const help = renderHelp(command({
 *   name: "greet",
 *   summary: "say hello",
 *   description: "Says hello.",
 *   flags: { loud: toggle({ help: "shout" }) },
 *   examples: ["tcpecho greet --loud"],
 * }));
 * equal(help.split("\n").find((line) => line.includes("--loud")), "      --loud             shout");
 * ```
 */
export function renderHelp(command: CommandSpec<Flags>): string {
  const sections = [usageLine(command), ...paragraphs(command.description)];
  if (command.arguments?.length) {
    const entries = command.arguments.map((arg) => entry(`  ${arg.name}`, describe(arg)));
    sections.push(["Arguments:", ...entries].join("\n"));
  }
  const options = Object.entries(command.flags).map(([name, flag]) =>
    entry(`  ${flag.short === undefined ? "    " : ""}${flagLabel(name, flag)}`, describe(flag))
  );
  sections.push(["Options:", ...options].join("\n"));
  const units = unitForms(command.flags);
  if (units.length) {
    sections.push(
      ["Units:", ...units.map(([value, forms]) => entry(`  ${value}`, forms))].join("\n"),
    );
  }
  if (command.notes) sections.push(...paragraphs(command.notes));
  sections.push(["Examples:", ...command.examples.map((example) => `  ${example}`)].join("\n"));
  return sections.join("\n\n");
}

/**
 * The placeholders of values with units (`TIME`, `SIZE`) and the forms each takes, once each:
 * the flags' own help then need not repeat them.
 */
export function unitForms(flags: Flags): [string, string][] {
  const forms = new Map<string, string>();
  for (const flag of Object.values(flags)) {
    if (flag.value !== undefined && flag.parse.forms) forms.set(flag.value, flag.parse.forms);
  }
  return [...forms];
}

/** A flag's or argument's help with its default: `port to connect to (default: 10000)`. */
export function describe(flag: Flag | Argument): string {
  const shown = flagDefault(flag);
  return shown === undefined ? flag.help : `${flag.help} (default: ${shown})`;
}

/** A label and its wrapped text; a label too long for its column gets a line of its own. */
function entry(label: string, text: string): string {
  const lines = wrap(text, HELP_WIDTH - HELP_COLUMN);
  const indent = " ".repeat(HELP_COLUMN);
  const first = label.length + 2 <= HELP_COLUMN
    ? [label.padEnd(HELP_COLUMN) + lines.shift()]
    : [label];
  return [...first, ...lines.map((line) => indent + line)].join("\n");
}

function paragraphs(text: string): string[] {
  return text.split(/\n\s*\n/).map((paragraph) => wrap(paragraph, HELP_WIDTH).join("\n"));
}

/** Splits `text` into lines of at most `width` characters, breaking at spaces. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((word) => word !== "")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  return [...lines, line];
}

/**
 * The Markdown table of `command`'s arguments and flags for its page in `docs/`, laid out the
 * way `deno fmt` lays out tables, so that the formatter leaves it as written.
 */
export function flagTable(command: CommandSpec<Flags>): string {
  const code = (text: string) => `\`${text}\``;
  const rows = [
    ...(command.arguments ?? []).map((arg) => [code(arg.name), arg.help, flagDefault(arg) ?? ""]),
    ...Object.entries(command.flags).map(([name, flag]) => [
      code(flagLabel(name, flag)),
      flag.help,
      flagDefault(flag) ?? "",
    ]),
  ].map((row) => row.map((cell) => cell.replaceAll("|", "\\|")));
  const table = [["flag", "meaning", "default"], ...rows];
  const widths = [0, 1, 2].map((column) => Math.max(...table.map((row) => row[column].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, column) => cell.padEnd(widths[column])).join(" | ")} |`;
  return [line(table[0]), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)]
    .join("\n");
}
