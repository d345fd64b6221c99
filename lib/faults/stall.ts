/**
 * Stalls: the echo pauses for a while, again and again.
 *
 * @module
 */

import { ms } from "../base/format.ts";
import { UsageError } from "../base/errors.ts";
import { sleep } from "../base/timers.ts";
import type { FaultUnit } from "./unit.ts";

/** The settings of {@linkcode stallFault}. */
interface StallSettings {
  stallEvery?: number;
  stallFor?: number;
}

/** Pauses the echo for `stallFor` ms every time it has run for `stallEvery` ms. */
export const stallFault: FaultUnit<StallSettings, "stall"> = {
  kinds: ["stall"],
  settings: { stallEvery: "duration", stallFor: "duration" },
  works: "stream",
  check(settings, name) {
    if ((settings.stallEvery === undefined) !== (settings.stallFor === undefined)) {
      throw new UsageError(
        `${name("stallEvery")} and ${name("stallFor")} go together: give both or neither`,
      );
    }
    if (settings.stallEvery === 0) {
      throw new UsageError(`${name("stallEvery")} must be more than 0 ms`);
    }
  },
  describe: ({ stallEvery, stallFor }) =>
    stallEvery === undefined ? [] : [`stall ${ms(stallFor ?? 0)} every ${ms(stallEvery)}`],
  shape({ stallEvery, stallFor }, { onFault, signal }) {
    const every = stallEvery!, pause = stallFor!;
    const started = performance.now();
    return {
      async pause() {
        if (signal.aborted) return;
        const period = every + pause;
        const into = (performance.now() - started) % period;
        if (into < every) return;
        onFault("stall", `echo stalled for ${ms(pause)}`);
        await sleep(period - into, signal);
      },
    };
  },
};
