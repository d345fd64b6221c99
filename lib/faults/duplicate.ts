/**
 * UDP duplication: a datagram echoed twice.
 *
 * @module
 */

import { percent } from "../base/format.ts";
import type { FaultUnit } from "./unit.ts";

/** The settings of {@linkcode duplicateFault}. */
interface DuplicateSettings {
  duplicateRate?: number;
}

/** Echoes a datagram twice, with probability `duplicateRate`; each copy has its own delay. */
export const duplicateFault: FaultUnit<DuplicateSettings, "duplicate"> = {
  kinds: ["duplicate"],
  settings: { duplicateRate: "rate" },
  works: "datagram",
  describe: ({ duplicateRate }) => [`duplicate ${percent(duplicateRate!)} of datagrams`],
  datagram: {
    copies({ duplicateRate = 0 }, { id, random, onFault }, copies) {
      if (random.next() >= duplicateRate) return copies;
      onFault("duplicate", `datagram ${id} echoed twice`);
      return copies * 2;
    },
  },
};
