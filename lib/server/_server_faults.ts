/**
 * The faults of a server, TCP or UDP: checked at once, so that bad settings fail where the server
 * is made, with the seed fixed, and the plan (with its random number generator) loaded only then,
 * so that a server without faults never loads it.
 *
 * @module
 */

import type { FaultPlan } from "../faults/plan.ts";
import { checkFaults, type FaultSettings, hasFaults } from "../faults/settings.ts";
import { UsageError } from "../base/errors.ts";
import { MAX_TIMER_MS } from "../base/timers.ts";

/** A server's faults: the settings in force, and their plan once loaded. */
export interface ServerFaults {
  /** The settings, checked, with the seed they run on. */
  readonly settings: Readonly<FaultSettings> & { readonly seed: number };
  /** The plan of `settings`, loading since the server was made. */
  readonly plan: Promise<FaultPlan>;
}

/**
 * The faults `settings` turn on, or undefined when they turn on none. Throws a `UsageError` for
 * settings that make no sense (see `checkFaults`). The seed is a random one unless set.
 *
 * @example
 * ```ts
 * import { equal, throws } from "node:assert/strict";
 * import { serverFaults } from "./_server_faults.ts";
 *
 * equal(serverFaults({ seed: 1 }), undefined);
 * const faults = serverFaults({ delay: 50 });
 * equal(typeof faults?.settings.seed, "number");
 * equal((await faults?.plan)?.settings.seed, faults?.settings.seed);
 * throws(() => serverFaults({ corruptRate: 2 }), /corruptRate must be from 0 to 1/);
 * ```
 */
export function serverFaults(settings: FaultSettings | undefined): ServerFaults | undefined {
  if (settings === undefined || !hasFaults(settings)) return undefined;
  checkFaults(settings);
  const seeded = {
    ...settings,
    seed: settings.seed ?? crypto.getRandomValues(new Uint32Array(1))[0],
  };
  return {
    settings: seeded,
    plan: import("../faults/plan.ts").then(({ FaultPlan }) => new FaultPlan(seeded)),
  };
}

/**
 * `current` with `changes` merged in: a setting given as `undefined` or `false` is removed.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { mergedFaults } from "./_server_faults.ts";
 *
 * deepEqual(mergedFaults({ delay: 50, jitter: 10 }, { jitter: undefined, slice: 8 }), {
 *   delay: 50,
 *   slice: 8,
 * });
 * ```
 */
export function mergedFaults(
  current: Readonly<FaultSettings> | undefined,
  changes: FaultSettings,
): FaultSettings {
  const merged: Record<string, unknown> = { ...current, ...changes };
  for (const [key, value] of Object.entries(merged)) {
    if (value === undefined || value === false) delete merged[key];
  }
  return merged as FaultSettings;
}

/** Which connections a change of faults reaches, and for how long it lasts. */
export interface FaultChange {
  /**
   * `new` (the default): connections accepted from now on; `all`: every open connection too,
   * from its next chunk (a connection under `noRead` keeps it until it closes).
   */
  scope?: "new" | "all";
  /** Only the next `count` connections accepted get it; then the faults before it come back. */
  count?: number;
  /** The change lasts this many milliseconds; then the faults before it come back. */
  for?: number;
}

/** Throws a `UsageError` for a `change` out of range. */
export function checkChange(change: FaultChange): void {
  if (change.count !== undefined && !(Number.isSafeInteger(change.count) && change.count >= 1)) {
    throw new UsageError(`count must be a whole number, at least 1, not ${change.count}`);
  }
  if (change.for !== undefined && !(change.for > 0 && change.for <= MAX_TIMER_MS)) {
    throw new UsageError(`for must be from 0 to ${MAX_TIMER_MS} ms, not ${change.for}`);
  }
  if (change.scope !== undefined && change.scope !== "new" && change.scope !== "all") {
    throw new UsageError(`scope must be new or all, not ${change.scope}`);
  }
}
