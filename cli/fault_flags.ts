/**
 * The fault flags of `serve` (`--delay`, `--reset-after`, `--drop-rate`, ...), declared once, and
 * turned into the library's {@linkcode FaultSettings} after the checks between them and the
 * transport. The faults' module is loaded only when a fault flag is given.
 *
 * @module
 */

import { byteSize, duration, parseSize, type ValueParser, wholeNumber } from "./args.ts";
import { type FlagValues, option, toggle } from "./flags.ts";
import { UsageError } from "../lib/base/errors.ts";
import { sizeHint } from "../lib/base/units.ts";
import {
  checkFaults,
  describeFaults,
  FAULT_UNITS,
  type FaultSettings,
  PLAN_SETTINGS,
  type RegisteredFault,
} from "../lib/faults/settings.ts";
import type { Works } from "../lib/faults/unit.ts";
import type { InjectedFaults } from "./server_log.ts";

/** The largest byte count or rate taken: 1 TiB. */
const MAX_BYTES = 1024 ** 4;

/** A decimal number (fractions allowed) from `min` to `max`, or NaN. */
function decimal(text: string, min: number, max: number): number {
  const trimmed = text.trim();
  const value = /^\d+(\.\d+)?$|^\.\d+$/.test(trimmed) ? Number(trimmed) : NaN;
  return value >= min && value <= max ? value : NaN;
}

/** A duration, 0 included, where a bare number is in milliseconds (`--delay 50`). */
const milliseconds = duration({ allowZero: true, bare: "ms" });

/** A probability from 0 to 1. */
const probability: ValueParser<number> = (text, flag) => {
  const value = decimal(text, 0, 1);
  if (Number.isNaN(value)) {
    throw new UsageError(`${flag} must be a probability from 0 to 1, not '${text}'`);
  }
  return value;
};

/** Bytes per second: `65536`, `64KiB`, `1MiB/s`. */
const rate: ValueParser<number> = (text, flag) => {
  try {
    return parseSize(text.trim().replace(/\/s$/i, ""), flag, 1, MAX_BYTES);
  } catch {
    const hint = sizeHint(text.trim().replace(/\/s$/i, ""));
    throw new UsageError(
      `${flag} must be a rate from 1 B/s to 1024 GiB/s, such as 64KiB or 1MiB/s, not '${text}'` +
        (hint === undefined ? "" : `: ${hint} a second`),
    );
  }
};

const bytes = byteSize(1, MAX_BYTES);

/** The fault flags of `serve`. */
export const FAULT_FLAGS = {
  delay: option({
    value: "MS",
    help: "hold each echoed chunk MS before writing it back (with --udp, each " +
      "datagram)",
    parse: milliseconds,
  }),
  jitter: option({
    value: "MS",
    help: "add a random 0 to MS to each delay; a stream's bytes stay in order, " +
      "datagrams may not",
    parse: milliseconds,
  }),
  bandwidth: option({
    value: "RATE",
    help: "cap each connection's echo at RATE, a SIZE per second (64KiB, 1MiB/s), paced " +
      "smoothly",
    parse: rate,
  }),
  slice: option({
    value: "SIZE",
    help: "write each echoed chunk in pieces of at most SIZE bytes",
    parse: bytes,
  }),
  "slice-delay": option({
    value: "MS",
    help: "wait MS between the pieces of --slice",
    parse: milliseconds,
  }),
  "reset-after": option({
    value: "SIZE",
    help: "end the connection with a TCP reset (the client sees ECONNRESET) once SIZE bytes " +
      "have been echoed; plain TCP only",
    parse: bytes,
  }),
  "reset-after-time": option({
    value: "TIME",
    help: "end the connection with a TCP reset TIME after it was accepted; plain TCP only",
    parse: duration(),
  }),
  "close-after": option({
    value: "SIZE",
    help: "close the connection cleanly (FIN) once SIZE bytes have been echoed; read and drop " +
      "the rest",
    parse: bytes,
  }),
  blackhole: toggle({ help: "accept and read, but never echo" }),
  "no-read": toggle({
    help: "accept and never read, so that the client's writes fill the socket buffers",
  }),
  "stall-every": option({
    value: "TIME",
    help: "pause the echo for --stall-for every TIME",
    parse: duration(),
  }),
  "stall-for": option({
    value: "TIME",
    help: "how long each pause of --stall-every lasts",
    parse: duration(),
  }),
  "corrupt-rate": option({
    value: "P",
    help: "flip one bit in an echoed chunk with probability P (0 to 1) per chunk",
    parse: probability,
  }),
  "drop-rate": option({
    value: "P",
    help: "with --udp: drop a datagram instead of echoing it, with probability P",
    parse: probability,
  }),
  "duplicate-rate": option({
    value: "P",
    help: "with --udp: echo a datagram twice, with probability P",
    parse: probability,
  }),
  "fault-rate": option({
    value: "P",
    help: "apply the faults to a random share P of connections (with --udp, of datagrams)",
    absent: "1, all of them",
    parse: probability,
  }),
  seed: option({
    value: "N",
    help: "seed of every random choice of the faults: the same seed makes the same choices",
    absent: "a random one, shown on the start-up line",
    parse: wholeNumber(0, 2 ** 32 - 1),
  }),
};

/** Every fault setting, each fault's in the registry's order, then those of the plan. */
const SETTINGS = [
  ...FAULT_UNITS.flatMap((unit) => Object.keys(unit.settings) as (keyof FaultSettings)[]),
  ...PLAN_SETTINGS,
];

/** A setting's name in kebab case: `resetAfterTime` is `reset-after-time`. */
type Kebab<Name extends string> = Name extends `${infer Head}${infer Tail}`
  ? `${Head extends Lowercase<Head> ? Head : `-${Lowercase<Head>}`}${Kebab<Tail>}`
  : Name;

/**
 * The flag of a setting, without its dashes: the setting's name in kebab case. A setting without
 * its flag in {@linkcode FAULT_FLAGS} does not type-check where the flags are read.
 */
function flagOf<Setting extends keyof FaultSettings>(setting: Setting): Kebab<Setting> {
  return setting.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`) as Kebab<Setting>;
}

/** The fault a setting is of; undefined for the plan's (`seed`, `faultRate`). */
function faultOf(setting: keyof FaultSettings): RegisteredFault | undefined {
  return FAULT_UNITS.find((unit) => setting in unit.settings);
}

/** Where a setting works: where its fault does; the plan's settings work everywhere. */
function worksOn(setting: keyof FaultSettings): Works {
  return faultOf(setting)?.works ?? "both";
}

/** Where the server listens, as far as the faults care. */
export interface FaultTransport {
  udp: boolean;
  unix: boolean;
  tls: boolean;
  workers: number;
  /** `--control` is on: `--seed` alone fixes the seed of the faults it sets later. */
  control?: boolean;
}

/**
 * The faults the flags ask for, checked against each other and against the transport, with the
 * start-up line's description of them, or undefined when none is given. Without `--seed`, a
 * random seed is picked here, so that every worker makes the same choices and the start-up line
 * can show it.
 */
export function faultSettings(
  flags: FlagValues<typeof FAULT_FLAGS>,
  transport: FaultTransport,
): InjectedFaults | undefined {
  const settings: FaultSettings = {};
  for (const setting of SETTINGS) {
    const value = flags[flagOf(setting)];
    if (value !== undefined && value !== false) {
      (settings as Record<string, unknown>)[setting] = value;
    }
  }
  const given = Object.keys(settings) as (keyof FaultSettings)[];
  if (given.length === 0) return undefined;
  const name = (setting: keyof FaultSettings) => `--${flagOf(setting)}`;
  const streamOnly = given.find((setting) => worksOn(setting) === "stream");
  if (transport.udp && streamOnly) {
    throw new UsageError(`${name(streamOnly)} works on streams, not with --udp`);
  }
  const datagramOnly = given.find((setting) => worksOn(setting) === "datagram");
  if (!transport.udp && datagramOnly) {
    throw new UsageError(`${name(datagramOnly)} needs --udp: streams have no datagrams to lose`);
  }
  const reset = given.find((setting) => faultOf(setting)?.resets);
  if (reset && (transport.unix || transport.tls || transport.workers > 1)) {
    const other = transport.unix ? "--unix" : transport.tls ? "TLS" : "--workers";
    throw new UsageError(`${name(reset)} needs plain TCP on one thread, not ${other}`);
  }
  checkFaults(settings, name);
  if (given.every((setting) => !faultOf(setting))) {
    if (transport.control && given.every((setting) => setting === "seed")) return undefined;
    throw new UsageError(`${name(given[0])} needs a fault to act on, such as --delay`);
  }
  settings.seed ??= crypto.getRandomValues(new Uint32Array(1))[0];
  return { settings, description: describeFaults(settings) };
}
