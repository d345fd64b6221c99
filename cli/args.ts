/**
 * Command-line parsing shared by the subcommands: `node:util`'s `parseArgs` with its errors turned
 * into one-line {@linkcode UsageError}s, and validators for ports, sizes and durations.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { UsageError } from "../lib/errors.ts";

/** The parsed flags (by long name) and positional arguments of one subcommand. */
export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/**
 * Parses `args` strictly against `options`. Unknown flags, missing values and values given to
 * boolean flags become a {@linkcode UsageError} naming the flag and the command.
 */
export function parseFlags(
  command: string,
  args: string[],
  options: ParseArgsOptionsConfig,
): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({
      args,
      options,
      allowPositionals: true,
      strict: true,
    });
    return { values: values as ParsedArgs["values"], positionals };
  } catch (err) {
    throw new UsageError(`${describeParseError(err)} (see 'tcpecho ${command} --help')`);
  }
}

function describeParseError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: string }).code;
  // parseArgs quotes the flag as given ('--bogus') or as declared ('-p, --port <value>').
  const quoted = message.match(/'(-[^']*)'/)?.[1] ?? "";
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown flag ${quoted}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      const flag = quoted.match(/--[\w-]+/)?.[0] ?? quoted;
      return message.includes("does not take an argument")
        ? `flag ${flag} does not take a value`
        : `flag ${flag} needs a value`;
    }
    default:
      return message.split("\n")[0];
  }
}

/** Parses a TCP or UDP port: a whole number from 0 (any free port) to 65535. */
export function parsePort(text: string, flag = "--port"): number {
  const port = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new UsageError(`${flag} must be a port number from 0 to 65535, not '${text}'`);
  }
  return port;
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/**
 * Parses a byte count such as `16`, `64KiB` or `1M` (units are powers of 1024) and checks it lies
 * within `min` and `max`.
 */
export function parseSize(text: string, flag: string, min: number, max: number): number {
  const match = text.trim().match(/^(\d+)\s*([a-z]*)$/i);
  const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
  const size = match && unit ? Number(match[1]) * unit : NaN;
  if (!(size >= min && size <= max)) {
    throw new UsageError(
      `${flag} must be a size from ${formatSize(min)} to ${formatSize(max)}, not '${text}'`,
    );
  }
  return size;
}

/** Parses a whole number within `min` and `max`. */
export function parseCount(text: string, flag: string, min: number, max: number): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not '${text}'`);
  }
  return value;
}

/** Parses a duration in seconds (fractions allowed) into milliseconds; 0 only when `allowZero`. */
export function parseSeconds(text: string, flag: string, allowZero = false): number {
  const seconds = /^\d+(\.\d+)?$|^\.\d+$/.test(text) ? Number(text) : NaN;
  if (!(seconds > 0 || (allowZero && seconds === 0)) || seconds > 1e7) {
    throw new UsageError(`${flag} must be a number of seconds, not '${text}'`);
  }
  return seconds * 1000;
}

/** Writes a byte count the short way: `16 B`, `64 KiB`, `16 MiB`. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} B`;
}

/** Checks the text given to a flag (named `flag` in errors) and turns it into its value. */
export type ValueParser<T> = (text: string, flag: string) => T;

/** Any text, taken as given: paths, host names. */
export const anyText: ValueParser<string> = (text) => text;

/** A port number, 0 to 65535. */
export const portNumber: ValueParser<number> = (text, flag) => parsePort(text, flag);

/** A whole number from `min` to `max`. */
export function wholeNumber(min: number, max: number): ValueParser<number> {
  return (text, flag) => parseCount(text, flag, min, max);
}

/** A byte count from `min` to `max`, with optional unit (`64KiB`). */
export function byteSize(min: number, max: number): ValueParser<number> {
  return (text, flag) => parseSize(text, flag, min, max);
}

/** Seconds (fractions allowed) turned into milliseconds; 0 only when `allowZero`. */
export function duration({ allowZero = false } = {}): ValueParser<number> {
  return (text, flag) => parseSeconds(text, flag, allowZero);
}

/** One of a few words, such as `text` or `json`. */
export function oneOf<T extends string>(...choices: T[]): ValueParser<T> {
  const list = `${choices.slice(0, -1).join(", ")} or ${choices.at(-1)}`;
  return (text, flag) => {
    if ((choices as string[]).includes(text)) return text as T;
    throw new UsageError(`${flag} must be ${list}, not '${text}'`);
  };
}

/** Rejects positional arguments beyond `max`. */
export function checkPositionals(command: string, positionals: string[], max: number): void {
  if (positionals.length > max) {
    throw new UsageError(
      `unexpected argument '${positionals[max]}' (see 'tcpecho ${command} --help')`,
    );
  }
}
