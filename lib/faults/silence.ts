/**
 * Silence: a connection that is read and never echoed (blackhole), or never even read (no-read).
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";
import type { FaultUnit } from "./unit.ts";

/** The settings of {@linkcode silenceFault}. */
interface SilenceSettings {
  blackhole?: boolean;
  noRead?: boolean;
}

/** Echoes nothing: `blackhole` reads and drops everything, `noRead` never reads. */
export const silenceFault: FaultUnit<SilenceSettings, "blackhole" | "no-read"> = {
  kinds: ["blackhole", "no-read"],
  settings: { blackhole: "switch", noRead: "switch" },
  works: "stream",
  check(settings, name) {
    if (settings.blackhole && settings.noRead) {
      throw new UsageError(
        `${name("blackhole")} reads and ${name("noRead")} does not: give one of them`,
      );
    }
  },
  describe: ({ blackhole, noRead }) => [
    ...blackhole ? ["blackhole"] : [],
    ...noRead ? ["no read"] : [],
  ],
  shape({ noRead }, { onFault }) {
    if (noRead) {
      onFault("no-read", "not reading from the client");
      return { reads: "never" };
    }
    onFault("blackhole", "reading and echoing nothing");
    return { reads: "dropped" };
  },
};
