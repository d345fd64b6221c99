/**
 * Numbers as the logs and messages write them: `1,024 bytes`, `50 ms`, `2 s`, `12.5%`.
 *
 * @module
 */

// Made on first use: an Intl formatter costs megabytes of memory, and an idle server formats nothing.
let formatter: Intl.NumberFormat | undefined;
const numbers = {
  format: (value: number) =>
    (formatter ??= new Intl.NumberFormat("en-US", { maximumFractionDigits: 3 })).format(value),
};

/**
 * A count with its thousands separated, up to three decimals: `1,024`, `0.125`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { count } from "./format.ts";
 *
 * equal(count(65536), "65,536");
 * ```
 */
export function count(value: number): string {
  return numbers.format(value);
}

/**
 * `1,024 bytes`, `1 byte`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { bytes } from "./format.ts";
 *
 * equal(bytes(1024), "1,024 bytes");
 * equal(bytes(1), "1 byte");
 * ```
 */
export function bytes(value: number): string {
  return `${numbers.format(value)} byte${value === 1 ? "" : "s"}`;
}

/**
 * A duration in milliseconds: `50 ms`, or `2 s` for whole seconds.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { ms } from "./format.ts";
 *
 * equal(ms(50), "50 ms");
 * equal(ms(2000), "2 s");
 * equal(ms(1500), "1,500 ms");
 * ```
 */
export function ms(duration: number): string {
  return duration >= 1000 && duration % 1000 === 0
    ? `${numbers.format(duration / 1000)} s`
    : `${numbers.format(duration)} ms`;
}

/**
 * A rate from 0 to 1 as a percentage: `12.5%`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { percent } from "./format.ts";
 *
 * equal(percent(0.125), "12.5%");
 * ```
 */
export function percent(rate: number): string {
  return `${numbers.format(rate * 100)}%`;
}
