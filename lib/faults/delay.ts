/**
 * Delay and jitter: each echoed chunk (with `--udp`, each datagram) held back a while.
 *
 * @module
 */

import { ms } from "../base/format.ts";
import type { FaultUnit } from "./unit.ts";

/** The settings of {@linkcode delayFault}. */
interface DelaySettings {
  delay?: number;
  jitter?: number;
}

/**
 * Holds each chunk `delay` ms plus a random 0 to `jitter` ms; a stream's bytes stay in order,
 * datagrams may not.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { delayFault } from "./delay.ts";
 *
 * deepEqual(delayFault.describe({ delay: 50, jitter: 10 }), ["delay 50 ms + 0-10 ms jitter"]);
 * ```
 */
export const delayFault: FaultUnit<DelaySettings, "delay"> = {
  kinds: ["delay"],
  settings: { delay: "duration", jitter: "duration" },
  works: "both",
  describe: ({ delay, jitter }) => [
    `delay ${ms(delay ?? 0)}${jitter === undefined ? "" : ` + 0-${ms(jitter)} jitter`}`,
  ],
  shape({ delay = 0, jitter = 0 }, { random, onFault }) {
    if (delay > 0 || jitter > 0) {
      onFault(
        "delay",
        `each chunk held back ${ms(delay)}${jitter > 0 ? ` + 0-${ms(jitter)}` : ""}`,
      );
    }
    return { chunk: () => delay + (jitter > 0 ? random.next() * jitter : 0) };
  },
  datagram: {
    holdBack({ delay = 0, jitter = 0 }, { id, random, onFault }) {
      const held = delay + random.next() * jitter;
      if (held !== 0) onFault("delay", `datagram ${id} held back ${ms(Math.round(held))}`);
      return held;
    },
  },
};
