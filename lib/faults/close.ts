/**
 * The close limit: a clean end of the echo (FIN) once so many bytes were echoed.
 *
 * @module
 */

import { bytes } from "../base/format.ts";
import type { FaultUnit } from "./unit.ts";

/** The settings of {@linkcode closeFault}. */
interface CloseSettings {
  closeAfter?: number;
}

/** Closes the connection cleanly once `closeAfter` bytes were echoed; the rest is read and dropped. */
export const closeFault: FaultUnit<CloseSettings, "close"> = {
  kinds: ["close"],
  settings: { closeAfter: "size" },
  works: "stream",
  describe: ({ closeAfter }) => [`close after ${bytes(closeAfter!)} echoed`],
  shape({ closeAfter }, { onFault }) {
    const limit = closeAfter!;
    return {
      pieceLimit: (echoed) => limit - echoed,
      afterPiece(echoed) {
        if (echoed < limit) return undefined;
        onFault("close", `closed after ${bytes(echoed)} echoed`);
        return { how: "close" };
      },
    };
  },
};
