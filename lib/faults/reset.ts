/**
 * The reset limits: a TCP reset once so many bytes were echoed, or so long after the accept.
 *
 * @module
 */

import { bytes, ms } from "../base/format.ts";
import type { FaultUnit } from "./unit.ts";

/** The settings of {@linkcode resetFault}. */
interface ResetSettings {
  resetAfter?: number;
  resetAfterTime?: number;
}

/**
 * Resets the connection once `resetAfter` bytes were echoed, or `resetAfterTime` ms after it
 * started, whichever comes first. The echo loop sends the reset (see `_fault_echo.ts`).
 */
export const resetFault: FaultUnit<ResetSettings, "reset"> = {
  kinds: ["reset"],
  settings: { resetAfter: "size", resetAfterTime: "duration" },
  works: "stream",
  resets: true,
  describe: ({ resetAfter, resetAfterTime }) => [
    ...resetAfter === undefined ? [] : [`reset after ${bytes(resetAfter)} echoed`],
    ...resetAfterTime === undefined ? [] : [`reset after ${ms(resetAfterTime)}`],
  ],
  shape: ({ resetAfter = Infinity, resetAfterTime }) => ({
    resetAt: resetAfterTime === undefined
      ? undefined
      : { after: resetAfterTime, detail: `reset after ${ms(resetAfterTime)}` },
    pieceLimit: (echoed) => resetAfter - echoed,
    afterPiece: (echoed) =>
      echoed >= resetAfter
        ? { how: "reset", detail: `reset after ${bytes(echoed)} echoed` }
        : undefined,
  }),
};
