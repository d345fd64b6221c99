/**
 * Command-line parsing shared by the subcommands: `node:util`'s `parseArgs` with its errors turned
 * into one-line {@linkcode UsageError}s, and validators for ports, sizes and durations.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { UsageError } from "../lib/base/errors.ts";
import { MAX_TIMER_MS } from "../lib/base/timers.ts";
import {
  type BareUnit,
  durationForms,
  parseByteSize,
  parseDuration,
  SIZE_FORMS,
  sizeHint,
} from "../lib/base/units.ts";

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
      args: joinDashValues(args, options),
      options,
      allowPositionals: true,
      strict: true,
    });
    return { values: values as ParsedArgs["values"], positionals };
  } catch (err) {
    throw new UsageError(`${describeParseError(err)} (see 'tcpecho ${command} --help')`);
  }
}

/**
 * `parseArgs` takes `--count -1` for a flag without its value followed by a flag `-1`: join a
 * value that starts with a dash and a digit to its flag (`--count=-1`), so that the value's own
 * check says what is wrong with it.
 */
function joinDashValues(args: string[], options: ParseArgsOptionsConfig): string[] {
  const longName = (arg: string) =>
    arg.startsWith("--")
      ? arg.slice(2)
      : Object.keys(options).find((name) => arg === `-${options[name].short}`);
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--") return [...joined, ...args.slice(i)];
    const name = longName(args[i]);
    const next = args[i + 1];
    if (name && options[name]?.type === "string" && next !== undefined && /^-\.?\d/.test(next)) {
      joined.push(`--${name}=${next}`);
      i++;
    } else {
      joined.push(args[i]);
    }
  }
  return joined;
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

/**
 * Parses a TCP or UDP port: a whole number from `min` to 65535 (0 asks a server for any free
 * port; a client needs a real one). Spaces around the number are ignored, as for every number.
 */
export function parsePort(text: string, flag = "--port", min = 0): number {
  const port = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!(port >= min && port <= 65535)) {
    throw new UsageError(`${flag} must be a port number from ${min} to 65535, not '${text}'`);
  }
  return port;
}

/**
 * Parses a listening address: `HOST:PORT`, `[IPv6]:PORT`, or `PORT` alone for `defaultHost`
 * (loopback unless the user names a host).
 */
export function parseListenAddress(
  text: string,
  flag: string,
  defaultHost = "127.0.0.1",
): { hostname: string; port: number } {
  const match = text.match(/^(?:\[([^\]]+)\]|([^:\[\]]*)):(\d+)$/) ?? text.match(/^()()(\d+)$/);
  if (!match) {
    throw new UsageError(`${flag} must be HOST:PORT or PORT, not '${text}'`);
  }
  const hostname = match[1] || match[2] || defaultHost;
  return { hostname, port: parsePort(match[3], flag) };
}

/**
 * Parses a byte count such as `16`, `64KiB` (65,536) or `64kB` (64,000), as
 * {@linkcode parseByteSize} reads it, and checks it lies within `min` and `max`. An ambiguous
 * unit (`64kb`: bits or bytes?) is refused with what to write instead.
 */
export function parseSize(text: string, flag: string, min: number, max: number): number {
  const size = parseByteSize(text);
  if (size !== undefined && size >= min && size <= max) return size;
  // "-5" is a size out of range, "5 parsecs" none at all.
  if (parseByteSize(text.trim().replace(/^-/, "")) === undefined) {
    const hint = sizeHint(text);
    throw new UsageError(
      hint === undefined
        ? `${flag} must be ${SIZE_FORMS}, not '${text}'`
        : `${flag} takes no '${text}': ${hint}`,
    );
  }
  throw new UsageError(
    `${flag} must be a size from ${formatSize(min)} to ${formatSize(max)}, not '${text}'`,
  );
}

/** Parses a whole number within `min` and `max`. */
export function parseCount(text: string, flag: string, min: number, max: number): number {
  const value = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not '${text}'`);
  }
  return value;
}

/**
 * Parses a duration such as `250ms`, `1.5s` or `2m` (see {@linkcode parseDuration}; a bare
 * number is in `bare` units) into milliseconds: from 1 ms, or 0 when `allowZero`, to the longest
 * timer, {@linkcode MAX_TIMER_MS} (24.8 days).
 */
export function parseTime(text: string, flag: string, bare: BareUnit, allowZero = false): number {
  const ms = parseDuration(text, bare);
  const min = allowZero ? 0 : 1;
  if (ms !== undefined && ms >= min && ms <= MAX_TIMER_MS && !(ms > 0 && ms < 1)) return ms;
  // "-3" is a duration out of range, "soon" none at all.
  if (parseDuration(text.trim().replace(/^-/, ""), bare) === undefined) {
    throw new UsageError(`${flag} must be ${durationForms(bare)}, not '${text}'`);
  }
  throw new UsageError(
    `${flag} must be a duration from ${allowZero ? "0" : "1ms"} to 24.8 days, not '${text}'`,
  );
}

/** Writes a byte count the short way: `16 B`, `64 KiB`, `16 MiB`. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} B`;
}

/**
 * Checks the text given to a flag (named `flag` in errors) and turns it into its value; `forms`
 * says which forms it takes when that needs saying (units), for `--help`.
 */
export type ValueParser<T> = ((text: string, flag: string) => T) & { readonly forms?: string };

/** Any text, taken as given: paths, host names. */
export const anyText: ValueParser<string> = (text) => text;

/** A port number from `min` (0 for a server: any free port; 1 for a client) to 65535. */
export function portNumber(min: 0 | 1): ValueParser<number> {
  return (text, flag) => parsePort(text, flag, min);
}

/** A host given to `--host`, with the port when it came as `HOST:PORT` or `[IPV6]:PORT`. */
export interface HostAndPort {
  /** A name or an address, without brackets. */
  hostname: string;
  /** The port after the host, when there was one. */
  port?: number;
}

/**
 * A host name or address, also accepted as `HOST:PORT` or `[IPV6]:PORT` (the socat and ncat
 * habit); a bare IPv6 address such as `::1` has no port. Ports start at `minPort`.
 */
export function hostAndPort(minPort: 0 | 1): ValueParser<HostAndPort> {
  return (text, flag) => {
    const host = text.trim();
    const bracketed = host.match(/^\[([^\]]*)\](?::(.*))?$/);
    const parts = host.split(":");
    const [hostname, port] = bracketed
      ? [bracketed[1], bracketed[2]]
      : parts.length === 2
      ? parts
      : [host, undefined];
    if (hostname === "") {
      throw new UsageError(`${flag} needs a host name or an address, not '${text}'`);
    }
    return port === undefined
      ? { hostname }
      : { hostname, port: parsePort(port, `the port in ${flag}`, minPort) };
  };
}

/** Where to listen: `HOST:PORT`, `[IPv6]:PORT`, or `PORT` alone for 127.0.0.1. */
export const listenAddress: ValueParser<{ hostname: string; port: number }> = (text, flag) =>
  parseListenAddress(text, flag);

/** A whole number from `min` to `max`. */
export function wholeNumber(min: number, max: number): ValueParser<number> {
  return (text, flag) => parseCount(text, flag, min, max);
}

/** A byte count from `min` to `max`, with optional unit (`64KiB`, `64kB`). */
export function byteSize(min: number, max: number): ValueParser<number> {
  return Object.assign((text: string, flag: string) => parseSize(text, flag, min, max), {
    forms: SIZE_FORMS,
  });
}

/**
 * A duration in milliseconds (`250ms`, `1.5s`, `2m`); a bare number is in seconds, or in
 * milliseconds when `bare` is `"ms"`; 0 only when `allowZero`.
 */
export function duration(
  { allowZero = false, bare = "s" }: { allowZero?: boolean; bare?: BareUnit } = {},
): ValueParser<number> {
  return Object.assign(
    (text: string, flag: string) => parseTime(text, flag, bare, allowZero),
    { forms: durationForms(bare) },
  );
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

/**
 * Parses an ALPN protocol list: names separated by commas, each 1 to 255 bytes, such as
 * `h2,http/1.1`.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { alpnList } from "./args.ts";
 *
 * deepEqual(alpnList("h2,http/1.1", "--alpn"), ["h2", "http/1.1"]);
 * ```
 */
export const alpnList: ValueParser<string[]> = (text, flag) => {
  const names = text.split(",");
  for (const name of names) {
    const bytes = new TextEncoder().encode(name).length;
    if (bytes === 0 || bytes > 255) {
      throw new UsageError(
        `${flag} takes protocol names of 1 to 255 bytes separated by commas, such as ` +
          `h2,http/1.1, not '${text}'`,
      );
    }
  }
  return names;
};
