/**
 * UDP loss: a datagram dropped instead of echoed.
 *
 * @module
 */

import { percent } from "../base/format.ts";
import type { FaultUnit } from "./unit.ts";

/** The settings of {@linkcode dropFault}. */
interface DropSettings {
  dropRate?: number;
}

/** Drops a datagram, with probability `dropRate`. */
export const dropFault: FaultUnit<DropSettings, "drop"> = {
  kinds: ["drop"],
  settings: { dropRate: "rate" },
  works: "datagram",
  describe: ({ dropRate }) => [`drop ${percent(dropRate!)} of datagrams`],
  datagram: {
    drops({ dropRate = 0 }, { id, random, onFault }) {
      if (random.next() >= dropRate) return false;
      onFault("drop", `datagram ${id} dropped`);
      return true;
    },
  },
};
