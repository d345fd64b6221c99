/**
 * The faults of a server, TCP or UDP: checked at once, so that bad settings fail where the server
 * is made, with the seed fixed, and the plan (with its random number generator) loaded only then,
 * so that a server without faults never loads it.
 *
 * @module
 */

import type { FaultPlan } from "../faults/plan.ts";
import { checkFaults, type FaultSettings, hasFaults } from "../faults/settings.ts";

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
