/**
 * The values of the control API, as the flags of `serve` write them: the same names
 * (`reset-after`, `fault-rate`), the same units (`50ms`, `1.5s`, `64KiB`, a bare number in the
 * flag's own unit), read by the one parser of each (`parseDuration`, `parseByteSize`) and checked
 * by the fault registry's checks. A bad value is a `UsageError` naming it, and changes nothing.
 *
 * @example
 * ```ts
 * import { deepEqual, throws } from "node:assert/strict";
 * import { faultsFromJson, faultsToJson } from "./values.ts";
 *
 * deepEqual(faultsFromJson({ delay: "50ms", "reset-after": "1KiB" }), { delay: 50, resetAfter: 1024 });
 * deepEqual(faultsToJson({ delay: 50, seed: 7 }), { delay: "50ms", seed: 7 });
 * throws(() => faultsFromJson({ "corrupt-rate": 2 }), /corrupt-rate must be from 0 to 1, not 2/);
 * throws(() => faultsFromJson({ delay: "soon" }), /delay must be a duration/);
 * ```
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";
import {
  type BareUnit,
  durationForms,
  parseByteSize,
  parseDuration,
  SIZE_FORMS,
} from "../base/units.ts";
import { checkFaults, FAULT_UNITS, type FaultSettings } from "../faults/settings.ts";
import type { SettingKind } from "../faults/unit.ts";

/** The fault settings whose flags take seconds when the number is bare; the others take ms. */
const BARE_SECONDS: readonly (keyof FaultSettings)[] = ["resetAfterTime", "stallEvery", "stallFor"];

/** Every fault setting with how its value is read, in the registry's order, then the plan's. */
const KINDS = new Map<keyof FaultSettings, SettingKind | "seed">([
  ...FAULT_UNITS.flatMap((unit) =>
    Object.entries(unit.settings) as [keyof FaultSettings, SettingKind][]
  ),
  ["faultRate", "rate"],
  ["seed", "seed"],
]);

/** The flag name of a setting, without its dashes: `resetAfterTime` is `reset-after-time`. */
export function flagName(setting: keyof FaultSettings): string {
  return setting.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** The setting of a flag name, or undefined when no fault has it. */
function settingOf(name: string): keyof FaultSettings | undefined {
  return [...KINDS.keys()].find((setting) => flagName(setting) === name);
}

/** The names the fault body takes, for error messages and the API's description. */
export const FAULT_NAMES: readonly string[] = [...KINDS.keys()].map(flagName);

/**
 * The fault settings a JSON object gives, by flag name; throws a `UsageError` naming the first
 * unknown name or bad value, or the first setting the registry's checks refuse.
 */
export function faultsFromJson(body: Record<string, unknown>): FaultSettings {
  const settings: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(body)) {
    const setting = settingOf(name);
    if (!setting) {
      throw new UsageError(`unknown fault '${name}': the names are ${FAULT_NAMES.join(", ")}`);
    }
    if (value === null || value === false) continue;
    settings[setting] = readValue(name, KINDS.get(setting)!, value, bareUnit(setting));
  }
  checkFaults(settings as FaultSettings, flagName);
  return settings as FaultSettings;
}

/**
 * Throws a `UsageError` naming the first fault of `settings` that does not work on the server's
 * transport: UDP datagrams (`udp`), or streams.
 */
export function checkTransport(settings: FaultSettings, udp: boolean): void {
  for (const unit of FAULT_UNITS) {
    if (unit.works === "both" || (unit.works === "datagram") === udp) continue;
    const setting = (Object.keys(unit.settings) as (keyof FaultSettings)[])
      .find((setting) => settings[setting] !== undefined && settings[setting] !== false);
    if (setting === undefined) continue;
    throw new UsageError(
      udp
        ? `${flagName(setting)} works on streams, not over UDP`
        : `${flagName(setting)} needs UDP: streams have no datagrams to lose`,
    );
  }
}

/** `settings` by flag name, durations with their unit: what `GET /faults` answers. */
export function faultsToJson(settings: FaultSettings | undefined): Record<string, unknown> {
  const json: Record<string, unknown> = {};
  for (const [setting, kind] of KINDS) {
    const value = settings?.[setting];
    if (value === undefined || value === false) continue;
    json[flagName(setting)] = kind === "duration" ? durationText(value as number) : value;
  }
  return json;
}

/** Milliseconds as a duration the API takes back: `50ms`, `1.5s`. */
export function durationText(ms: number): string {
  return ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`;
}

/** The unit of a bare number for `setting`'s flag. */
function bareUnit(setting: keyof FaultSettings): BareUnit {
  return BARE_SECONDS.includes(setting) ? "s" : "ms";
}

/**
 * Milliseconds in `value`: a duration string (`250ms`, `1.5s`) or a bare number in `bare` units;
 * throws a `UsageError` naming `name`.
 */
export function durationValue(name: string, value: unknown, bare: BareUnit): number {
  const ms = typeof value === "number" && value >= 0
    ? value * (bare === "ms" ? 1 : 1000)
    : typeof value === "string"
    ? parseDuration(value, bare)
    : undefined;
  if (ms === undefined) {
    throw new UsageError(`${name} must be ${durationForms(bare)}, not ${JSON.stringify(value)}`);
  }
  return ms;
}

/** A whole number from `min` to `max`; throws a `UsageError` naming `name`. */
export function wholeValue(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(
      `${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function readValue(name: string, kind: SettingKind | "seed", value: unknown, bare: BareUnit) {
  switch (kind) {
    case "switch":
      if (value !== true) {
        throw new UsageError(`${name} must be true or false, not ${JSON.stringify(value)}`);
      }
      return true;
    case "duration":
      return durationValue(name, value, bare);
    case "size": {
      // A rate may say so: 64KiB/s.
      const bytes = typeof value === "number"
        ? value
        : typeof value === "string"
        ? parseByteSize(value.replace(/\/s$/i, ""))
        : undefined;
      if (bytes === undefined) {
        throw new UsageError(`${name} must be ${SIZE_FORMS}, not ${JSON.stringify(value)}`);
      }
      return bytes;
    }
    case "rate": {
      const rate = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
      if (typeof rate !== "number" || Number.isNaN(rate)) {
        throw new UsageError(
          `${name} must be a probability from 0 to 1, not ${JSON.stringify(value)}`,
        );
      }
      return rate;
    }
    case "seed":
      return wholeValue(name, value, 0, 2 ** 32 - 1);
  }
}
