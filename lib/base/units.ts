/**
 * Durations and sizes as people write them: `250ms`, `1.5s`, `2m`, `1h30m`; `64KiB`, `64kB`,
 * `1M`. One parser for each, used by every flag, the control API and the library alike.
 *
 * Sizes follow GNU coreutils (`dd`, `head`): `K`, `M`, `G` and `KiB`, `MiB`, `GiB` are powers of
 * 1024 (so are `k`, `m`, `g`, as the flags always took them); `kB`/`KB`, `MB`, `GB` are powers of
 * 1000. A lower-case `b` means bits elsewhere (`kb`, `Mb`), so those are refused rather than
 * guessed.
 *
 * @module
 */

import { count } from "./format.ts";

/** What a bare number means for a duration: milliseconds or seconds. */
export type BareUnit = "ms" | "s";

const DURATION_UNITS: Record<string, number> = {
  us: 0.001,
  "µs": 0.001,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** The forms {@linkcode parseDuration} takes, for error messages and help. */
export function durationForms(bare: BareUnit): string {
  return `a duration such as 250ms, 1.5s, 2m or 1h (a bare number is in ${
    bare === "ms" ? "milliseconds" : "seconds"
  })`;
}

/**
 * Milliseconds in `text`: a number with a unit (`us`, `ms`, `s`, `m`, `h`), several in a row as Go
 * writes them (`1m30s`), or a bare number in `bare` units. Undefined when `text` is none of these
 * or is negative.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { parseDuration } from "./units.ts";
 *
 * equal(parseDuration("250ms", "s"), 250);
 * equal(parseDuration("1.5s", "ms"), 1500);
 * equal(parseDuration("1m30s", "s"), 90_000);
 * equal(parseDuration("3", "s"), 3000);
 * equal(parseDuration("50", "ms"), 50);
 * equal(parseDuration("5 parsecs", "s"), undefined);
 * ```
 */
export function parseDuration(text: string, bare: BareUnit): number | undefined {
  const trimmed = text.trim();
  const number = /^(\d+(\.\d*)?|\.\d+)$/;
  if (number.test(trimmed)) return Number(trimmed) * (bare === "ms" ? 1 : 1000);
  if (!/^((\d+(\.\d*)?|\.\d+)(us|µs|ms|s|m|h))+$/.test(trimmed)) return undefined;
  let total = 0;
  for (const [, value, , unit] of trimmed.matchAll(/(\d+(\.\d*)?|\.\d+)(us|µs|ms|s|m|h)/g)) {
    total += Number(value) * DURATION_UNITS[unit];
  }
  return total;
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  B: 1,
  K: 1024,
  k: 1024,
  KiB: 1024,
  kB: 1000,
  KB: 1000,
  M: 1024 ** 2,
  m: 1024 ** 2,
  MiB: 1024 ** 2,
  MB: 1000 ** 2,
  G: 1024 ** 3,
  g: 1024 ** 3,
  GiB: 1024 ** 3,
  GB: 1000 ** 3,
};

/** The forms {@linkcode parseByteSize} takes, for error messages and help. */
export const SIZE_FORMS =
  "a size such as 16, 64KiB (65,536 bytes), 64kB (64,000), 1M or 1MiB (1,048,576)";

/**
 * Bytes in `text`: a whole number, or a number with a unit (see the module's doc); undefined when
 * it is not one, or when its unit is ambiguous (`kb`, `mb`: bits or bytes?), for which
 * {@linkcode sizeHint} says what to write instead.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { parseByteSize } from "./units.ts";
 *
 * equal(parseByteSize("64KiB"), 65_536);
 * equal(parseByteSize("64K"), 65_536);
 * equal(parseByteSize("64kB"), 64_000);
 * equal(parseByteSize("1.5MiB"), 1_572_864);
 * equal(parseByteSize("64kb"), undefined);
 * ```
 */
export function parseByteSize(text: string): number | undefined {
  const match = text.trim().match(/^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/);
  const unit = match ? SIZE_UNITS[match[2]] : undefined;
  if (!match || unit === undefined) return undefined;
  const bytes = Number(match[1]) * unit;
  return Number.isInteger(bytes) ? bytes : undefined;
}

/**
 * A hint for a size whose unit {@linkcode parseByteSize} refused because it is ambiguous or
 * mis-cased (`64kb`, `1mib`), or undefined when there is nothing better to say.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { sizeHint } from "./units.ts";
 *
 * equal(sizeHint("64kb"), "write 64kB for 64,000 bytes or 64KiB for 65,536");
 * ```
 */
export function sizeHint(text: string): string | undefined {
  const match = text.trim().match(/^(\d+(?:\.\d+)?)\s*([kmg])(i?)(b)$/i);
  if (!match) return undefined;
  const [, value, prefix] = match;
  const power = "kmg".indexOf(prefix.toLowerCase()) + 1;
  const decimal = Number(value) * 1000 ** power;
  const binary = Number(value) * 1024 ** power;
  const si = prefix.toLowerCase() === "k" ? "k" : prefix.toUpperCase();
  return `write ${value}${si}B for ${count(decimal)} bytes or ${value}${prefix.toUpperCase()}iB ` +
    `for ${count(binary)}`;
}
