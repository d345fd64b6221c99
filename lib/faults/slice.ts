/**
 * Slices: each echoed chunk written in pieces of at most so many bytes, some time apart.
 *
 * @module
 */

import { bytes, ms } from "../base/format.ts";
import { UsageError } from "../base/errors.ts";
import { sleep } from "../base/timers.ts";
import type { FaultUnit } from "./unit.ts";

/** The settings of {@linkcode sliceFault}. */
interface SliceSettings {
  slice?: number;
  sliceDelay?: number;
}

/** Writes each chunk in pieces of at most `slice` bytes, `sliceDelay` ms apart. */
export const sliceFault: FaultUnit<SliceSettings, "slice"> = {
  kinds: ["slice"],
  settings: { slice: "size", sliceDelay: "duration" },
  works: "stream",
  check(settings, name) {
    if (settings.sliceDelay !== undefined && settings.slice === undefined) {
      throw new UsageError(
        `${name("sliceDelay")} needs ${name("slice")}: the pieces it waits between`,
      );
    }
  },
  describe: ({ slice, sliceDelay }) =>
    slice === undefined
      ? []
      : [`slices of ${bytes(slice)}${sliceDelay === undefined ? "" : ` ${ms(sliceDelay)} apart`}`],
  shape({ slice, sliceDelay = 0 }, { onFault, signal }) {
    const size = slice!;
    const apart = sliceDelay > 0 ? `, ${ms(sliceDelay)} apart` : "";
    onFault("slice", `echo written ${bytes(size)} at a time${apart}`);
    return {
      pieceLimit: () => size,
      betweenPieces: async () => void await sleep(sliceDelay, signal),
    };
  },
};
