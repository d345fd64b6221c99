/**
 * The bandwidth cap: each connection's echo at most so many bytes per second, paced smoothly.
 *
 * @module
 */

import { bytes } from "../base/format.ts";
import { sleep } from "../base/timers.ts";
import type { FaultUnit } from "./unit.ts";

/** The settings of {@linkcode bandwidthFault}. */
interface BandwidthSettings {
  bandwidth?: number;
}

/**
 * The cap sends pieces of at most this many milliseconds' worth, and its token bucket holds as
 * much: in any span of T ms the echo sends at most RATE x (T + PACE_MS), small chunks need no
 * timer each, and a late timer costs no bandwidth.
 */
const PACE_MS = 10;

/** Caps the echo at `bandwidth` bytes per second, in pieces of `PACE_MS` worth. */
export const bandwidthFault: FaultUnit<BandwidthSettings, "bandwidth"> = {
  kinds: ["bandwidth"],
  settings: { bandwidth: "size" },
  works: "stream",
  describe: ({ bandwidth }) => [`bandwidth ${bytes(bandwidth!)}/s`],
  shape({ bandwidth }, { onFault, signal }) {
    const rate = bandwidth!;
    onFault("bandwidth", `echo capped at ${bytes(rate)}/s`);
    const piece = Math.max(1, Math.floor(rate * PACE_MS / 1000));
    /** When the next piece may go. */
    let paceAt = 0;
    return {
      pieceLimit: () => piece,
      async pace(size) {
        if (signal.aborted) return;
        const now = performance.now();
        paceAt = Math.max(paceAt, now - PACE_MS) + size * 1000 / rate;
        if (paceAt > now) await sleep(paceAt - now, signal);
      },
    };
  },
};
