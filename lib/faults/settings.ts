/**
 * The faults' settings and their registry: every fault unit is listed here, once, and the checks,
 * the start-up phrases and the counters follow from the list. This module and the units load
 * without the random generator's package, so that a server can check its settings at start.
 *
 * To add a fault: write its unit (one file beside this one, see `unit.ts`), list it in
 * {@linkcode FAULT_UNITS}, and add its settings to {@linkcode FaultSettings} and its kind to
 * {@linkcode FaultKind}.
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";
import { percent } from "../base/format.ts";
import { MAX_TIMER_MS } from "../base/timers.ts";
import { bandwidthFault } from "./bandwidth.ts";
import { closeFault } from "./close.ts";
import { corruptFault } from "./corrupt.ts";
import { delayFault } from "./delay.ts";
import { dropFault } from "./drop.ts";
import { duplicateFault } from "./duplicate.ts";
import { resetFault } from "./reset.ts";
import { silenceFault } from "./silence.ts";
import { sliceFault } from "./slice.ts";
import { stallFault } from "./stall.ts";
import type { FaultUnit, SettingKind } from "./unit.ts";

/**
 * How an echo server misbehaves. Every fault is off unless set. Times are in milliseconds, sizes
 * in bytes, rates (probabilities) from 0 to 1.
 */
export interface FaultSettings {
  /** Seed of every random choice; the same seed makes the same choices. Default: a random one. */
  seed?: number;
  /** Share of connections (UDP: of datagrams) the faults apply to. Default 1: all of them. */
  faultRate?: number;
  /** Hold each echoed chunk this long before writing it back. */
  delay?: number;
  /** Add a random 0 to `jitter` ms to each chunk's delay; bytes stay in order. */
  jitter?: number;
  /** Cap each connection's echo at this many bytes per second, paced smoothly. */
  bandwidth?: number;
  /** Write each echoed chunk in pieces of at most this many bytes. */
  slice?: number;
  /** Wait this long between the pieces of a sliced chunk. */
  sliceDelay?: number;
  /** Reset the connection (TCP RST) once this many bytes have been echoed. */
  resetAfter?: number;
  /** Reset the connection (TCP RST) this long after it was accepted. */
  resetAfterTime?: number;
  /** Close the connection cleanly (FIN) once this many bytes have been echoed; drop the rest. */
  closeAfter?: number;
  /** Read everything, echo nothing. */
  blackhole?: boolean;
  /** Never read: the client's writes fill the socket buffers. */
  noRead?: boolean;
  /** Pause the echo for `stallFor` ms every time it has run for this long. */
  stallEvery?: number;
  /** How long each pause of `stallEvery` lasts. */
  stallFor?: number;
  /** Flip one bit of one byte of an echoed chunk, with this probability per chunk. */
  corruptRate?: number;
  /** UDP: drop a datagram instead of echoing it, with this probability. */
  dropRate?: number;
  /** UDP: echo a datagram twice, with this probability. */
  duplicateRate?: number;
}

/** The kinds of fault, as events and counters name them. */
export type FaultKind =
  | "delay"
  | "bandwidth"
  | "slice"
  | "reset"
  | "close"
  | "blackhole"
  | "no-read"
  | "stall"
  | "corrupt"
  | "drop"
  | "duplicate";

/** How many faults of each kind were injected so far. */
export type FaultCounts = Record<FaultKind, number>;

/** A fault unit as the registry holds it: its hooks see all the settings, its own among them. */
export type RegisteredFault =
  & Omit<FaultUnit<FaultSettings, FaultKind>, "settings">
  & { readonly settings: Readonly<Partial<Record<keyof FaultSettings, SettingKind>>> };

/** `unknown` when each of `Settings` is one of {@linkcode FaultSettings}, of its type; else `never`. */
type AmongFaultSettings<Settings> = [Exclude<keyof Settings, keyof FaultSettings>] extends [never]
  ? FaultSettings extends Settings ? unknown : never
  : never;

/** Lists `unit`, whose settings and kinds do not type-check unless they are among ours. */
function register<Settings, Kind extends FaultKind>(
  unit: FaultUnit<Settings, Kind> & AmongFaultSettings<Settings>,
): RegisteredFault {
  return unit as unknown as RegisteredFault;
}

/**
 * Every fault, in the order of the start-up line's phrases and of the counters. Hooks run in this
 * order too: a connection's units draw from its random sequence in this order, chunk by chunk, so
 * a new unit goes at the end to keep every seed's choices.
 */
export const FAULT_UNITS: readonly RegisteredFault[] = [
  register(delayFault),
  register(bandwidthFault),
  register(sliceFault),
  register(resetFault),
  register(closeFault),
  register(silenceFault),
  register(stallFault),
  register(corruptFault),
  register(dropFault),
  register(duplicateFault),
];

/** The settings that shape no fault of their own: which connections, and the random choices. */
export const PLAN_SETTINGS: readonly ("faultRate" | "seed")[] = ["faultRate", "seed"];

/** The fault counters with nothing counted yet. */
export function noFaultCounts(): FaultCounts {
  return Object.fromEntries(
    FAULT_UNITS.flatMap((unit) => unit.kinds).map((kind) => [kind, 0]),
  ) as FaultCounts;
}

/** True when `settings` gives at least one of `unit`'s settings (a switch counts when on). */
export function isSet(unit: RegisteredFault, settings: FaultSettings): boolean {
  return (Object.keys(unit.settings) as (keyof FaultSettings)[]).some((setting) =>
    settings[setting] !== undefined && settings[setting] !== false
  );
}

/**
 * Checks `settings` and throws a {@linkcode UsageError} naming the first setting that is out of
 * range or that contradicts another; `name` says how to name a setting (the command line names
 * its flags).
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { checkFaults } from "./settings.ts";
 *
 * checkFaults({ delay: 50, jitter: 10 });
 * throws(() => checkFaults({ corruptRate: 2 }), /corruptRate must be from 0 to 1/);
 * ```
 */
export function checkFaults(
  settings: FaultSettings,
  name: (setting: keyof FaultSettings) => string = (setting) => setting,
): void {
  const kinds = [
    ["faultRate", "rate"],
    ...FAULT_UNITS.flatMap((unit) => Object.entries(unit.settings)),
  ] as [keyof FaultSettings, SettingKind][];
  // All the rates first, then the times, then the sizes: the first bad one of each is named.
  for (const kind of ["rate", "duration", "size"] as const) {
    for (const [setting] of kinds.filter(([, of]) => of === kind)) {
      checkRange(kind, name(setting), settings[setting] as number | undefined);
    }
  }
  const { seed } = settings;
  if (seed !== undefined && !(Number.isSafeInteger(seed) && seed >= 0 && seed < 2 ** 32)) {
    throw new UsageError(
      `${name("seed")} must be a whole number from 0 to ${2 ** 32 - 1}, not ${seed}`,
    );
  }
  for (const unit of FAULT_UNITS) unit.check?.(settings, name);
}

function checkRange(kind: "rate" | "duration" | "size", name: string, value?: number): void {
  if (value === undefined) return;
  if (kind === "rate" && !(value >= 0 && value <= 1)) {
    throw new UsageError(`${name} must be from 0 to 1, not ${value}`);
  }
  if (kind === "duration" && !(value >= 0 && value <= MAX_TIMER_MS)) {
    throw new UsageError(`${name} must be from 0 to ${MAX_TIMER_MS} ms, not ${value}`);
  }
  if (kind === "size" && !(Number.isSafeInteger(value) && value >= 1)) {
    throw new UsageError(`${name} must be a whole number of bytes, at least 1, not ${value}`);
  }
}

/** True when `settings` turns on at least one fault (a seed or a rate alone turns on none). */
export function hasFaults(settings: FaultSettings | undefined): boolean {
  return settings !== undefined && FAULT_UNITS.some((unit) => isSet(unit, settings));
}

/** True when `settings` can end a stream connection with a TCP reset. */
export function needsReset(settings: FaultSettings | undefined): boolean {
  return settings !== undefined &&
    FAULT_UNITS.some((unit) => unit.resets && isSet(unit, settings));
}

/**
 * The faults in force, one phrase each, for a start-up line: `delay 50 ms`, `reset after 1,024
 * bytes echoed`, ... and the seed when a random choice depends on it.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { describeFaults } from "./settings.ts";
 *
 * equal(
 *   describeFaults({ delay: 50, jitter: 10, resetAfter: 1024, seed: 1 }).join(", "),
 *   "delay 50 ms + 0-10 ms jitter, reset after 1,024 bytes echoed, seed 1",
 * );
 * ```
 */
export function describeFaults(settings: FaultSettings): string[] {
  const phrases = FAULT_UNITS.flatMap((unit) =>
    isSet(unit, settings) ? unit.describe(settings) : []
  );
  if (phrases.length > 0 && settings.faultRate !== undefined) {
    phrases.push(`on ${percent(settings.faultRate)} of connections`);
  }
  if (phrases.length > 0 && settings.seed !== undefined) phrases.push(`seed ${settings.seed}`);
  return phrases;
}
