/**
 * Corruption: one bit of one byte of an echoed chunk flipped, now and then.
 *
 * @module
 */

import { count, percent } from "../base/format.ts";
import type { FaultUnit } from "./unit.ts";

/** The settings of {@linkcode corruptFault}. */
interface CorruptSettings {
  corruptRate?: number;
}

/** Flips one bit of one byte of a chunk, with probability `corruptRate` per chunk. */
export const corruptFault: FaultUnit<CorruptSettings, "corrupt"> = {
  kinds: ["corrupt"],
  settings: { corruptRate: "rate" },
  works: "stream",
  describe: ({ corruptRate }) => [`corrupt ${percent(corruptRate!)} of chunks`],
  shape({ corruptRate }, { random, onFault }) {
    const rate = corruptRate!;
    return {
      chunk(data, offset) {
        if (rate > 0 && random.next() < rate) {
          const index = random.below(data.length);
          const bit = random.below(8);
          data[index] ^= 1 << bit;
          onFault("corrupt", `flipped bit ${bit} of byte ${count(offset + index)}`);
        }
        return 0;
      },
    };
  },
};
