/**
 * Every flag is declared once, and everything else is generated from that declaration: the
 * `parseArgs` options, the checked and typed values a command reads, its `--help` text
 * (`help.ts`) and the flag tables of `docs/` (`deno task docs`).
 *
 * How to add a flag: add ONE entry to the command's `flags` in its file (`server.ts`,
 * `client.ts`, `bench.ts`), or to a shared group (`SERVER_TRANSPORT_FLAGS`,
 * `CLIENT_TRANSPORT_FLAGS` in `transport_flags.ts`, `BUFFER_SIZE` below) when several commands
 * take it. A flag with a value is an {@linkcode option}, a flag without one a {@linkcode toggle}:
 *
 * ```ts ignore
 * "idle-timeout": option({
 *   value: "S", // the value's placeholder in --help and the docs
 *   help: "close a connection after S seconds with no byte in or out", // one line, no period
 *   parse: duration(), // from args.ts: checks the text, names the flag in its usage error
 *   absent: "never", // what happens without the flag, shown as its default; or instead
 *   // default: "5",  // a value parsed when the flag is absent: the value is never undefined
 * }),
 * quiet: toggle({ short: "q", help: "print nothing; the exit code tells" }),
 * ```
 *
 * The command then reads `flags["idle-timeout"]`, typed `number | undefined` (`number` with a
 * `default`; `boolean` for a toggle). Run `deno task docs` to rewrite the docs' tables and commit
 * them with the flag: `tests/cli/flags_test.ts` fails while `--help` or the docs disagree with
 * the declarations. Checks between flags (`--ca needs --tls`) stay in the command's code.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import { byteSize, checkPositionals, parseFlags, type ValueParser } from "./args.ts";

/** A flag without a value: `true` when given, `false` when not. */
export interface Toggle {
  /** One letter for the short form (`q` for `-q`). */
  readonly short?: string;
  /** What the flag does: one line, lower case, no final period. */
  readonly help: string;
  /** Toggles take no value. */
  readonly value?: undefined;
}

/** A flag with a value, parsed and checked by `parse`. */
export interface Option<T> {
  /** One letter for the short form (`p` for `-p`). */
  readonly short?: string;
  /** The placeholder of the value in `--help` and the docs: `PORT`, `S`, `N`. */
  readonly value: string;
  /** What the flag does: one line, lower case, no final period. */
  readonly help: string;
  /** The text parsed when the flag is absent, shown as the default. */
  readonly default?: string;
  /** What happens when the flag is absent and there is no `default` value: `never`. */
  readonly absent?: string;
  /** Checks the text given and returns the value; throws a `UsageError` naming the flag. */
  readonly parse: ValueParser<T>;
}

/** Any declared flag. */
export type Flag = Toggle | Option<unknown>;

/** A command's flags by long name. */
export type Flags = Record<string, Flag>;

/** The values of parsed `flags`, typed from their declarations. */
export type FlagValues<F extends Flags> = {
  -readonly [K in keyof F]: F[K] extends Option<infer T> ? T : boolean;
};

/** Declares a flag without a value. */
export function toggle(spec: Toggle): Toggle {
  return spec;
}

/** Declares a flag with a value; without `default`, its value is undefined when absent. */
export function option<T>(spec: Option<T> & { default: string }): Option<T>;
export function option<T>(
  spec: Option<T> & { default?: undefined },
): Option<T | undefined>;
export function option<T>(spec: Option<T>): Option<T | undefined> {
  return spec;
}

/** A positional argument of a command, such as `send`'s `MESSAGE`. */
export interface Argument {
  /** Its name in help and docs: `MESSAGE`. */
  readonly name: string;
  /** How the usage line shows it: `[MESSAGE | -]`. */
  readonly usage: string;
  /** What it is: one line. */
  readonly help: string;
  /** What happens without it. */
  readonly absent?: string;
  /** The last argument only: it takes any number of words. */
  readonly variadic?: boolean;
}

/** Everything `--help` and the docs say about one command, and the flags it takes. */
export interface CommandSpec<F extends Flags> {
  /** The command's name: `serve`. */
  readonly name: string;
  /** One line for `tcpecho --help`. */
  readonly summary: string;
  /** Paragraphs (separated by a blank line) under the usage line; wrapped to fit. */
  readonly description: string;
  /** Positional arguments, in order; any more are refused. */
  readonly arguments?: readonly Argument[];
  /** The command's own flags; `--help` is added to every command. */
  readonly flags: F;
  /** A paragraph after the options. */
  readonly notes?: string;
  /** Command lines shown under "Examples:". */
  readonly examples: readonly string[];
}

/** `-h, --help`, which every command takes. */
export const HELP_FLAG = { help: toggle({ short: "h", help: "show this help" }) };

/** A command's declaration with `--help` added. */
export type Command<F extends Flags> = CommandSpec<F & typeof HELP_FLAG>;

/** Declares a command; adds `--help` to its flags. */
export function command<F extends Flags>(spec: CommandSpec<F>): Command<F> {
  return { ...spec, flags: { ...spec.flags, ...HELP_FLAG } };
}

/** `--buffer-size`, shared by `serve` and `send`: 1 B to 16 MiB, default 16 B. */
export const BUFFER_SIZE = option({
  short: "b",
  value: "N",
  help: "bytes read at a time, 1 B to 16 MiB; takes suffixes KiB and MiB",
  default: "16",
  parse: byteSize(1, 16 * 1024 ** 2),
});

/** The flags and positional arguments of one run of a command, parsed and checked. */
export interface ParsedCommand<F extends Flags> {
  flags: FlagValues<F>;
  positionals: string[];
}

/**
 * Parses `args` against the declarations of `command`: unknown flags, missing values, bad values
 * and extra arguments are {@linkcode UsageError}s naming the flag or argument.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { command, option, parseCommand, toggle } from "./flags.ts";
 * import { wholeNumber } from "./args.ts";
 *
 * const greet = command({
 *   name: "greet",
 *   summary: "say hello",
 *   description: "Says hello.",
 *   flags: {
 *     times: option({ value: "N", help: "how often", default: "1", parse: wholeNumber(1, 9) }),
 *     loud: toggle({ help: "shout" }),
 *   },
 *   examples: ["tcpecho greet --times 2"],
 * });
 * deepEqual(parseCommand(greet, ["--times", "2"]), {
 *   flags: { times: 2, loud: false, help: false },
 *   positionals: [],
 * });
 * ```
 */
export function parseCommand<F extends Flags>(
  command: CommandSpec<F>,
  args: string[],
): ParsedCommand<F> {
  const options: ParseArgsOptionsConfig = {};
  for (const [name, flag] of Object.entries(command.flags)) {
    const type = flag.value === undefined ? "boolean" : "string";
    options[name] = flag.short === undefined ? { type } : { type, short: flag.short };
  }
  const { values, positionals } = parseFlags(command.name, args, options);
  // With --help nothing else is checked: the user asked for help, not for a run.
  const checked = values.help !== true;
  const flags: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(command.flags)) {
    const given = values[name];
    if (flag.value === undefined) {
      flags[name] = given === true;
    } else {
      const text = typeof given === "string" ? given : flag.default;
      flags[name] = text === undefined || !checked ? undefined : flag.parse(text, `--${name}`);
    }
  }
  const max = command.arguments?.at(-1)?.variadic ? Infinity : command.arguments?.length ?? 0;
  if (checked) checkPositionals(command.name, positionals, max);
  return { flags: flags as FlagValues<F>, positionals };
}
