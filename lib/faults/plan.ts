/**
 * Fault injection's decisions: which connections and datagrams the faults hit and how, made from a
 * seed so that a run can be replayed. The settings and the fault units are in `settings.ts`.
 *
 * Every random choice comes from `xoroshiro128+` (the `pure-rand` package), seeded per connection
 * (or per datagram) with a hash of the run's seed and the connection's number. So a connection's
 * decisions depend only on the seed and on its number, never on timing or on other connections:
 * the same seed faults the same connections, in the same way, on every run. Choices made per
 * chunk (jitter, which chunk is corrupted) follow the connection's own sequence, chunk by chunk.
 *
 * @example The same seed gives the same decisions
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { FaultPlan } from "./plan.ts";
 *
 * const first = new FaultPlan({ resetAfter: 1000, faultRate: 0.5, seed: 7 });
 * const again = new FaultPlan({ resetAfter: 1000, faultRate: 0.5, seed: 7 });
 * for (let id = 1; id <= 20; id++) {
 *   equal(first.forConnection(id) === undefined, again.forConnection(id) === undefined);
 * }
 * ```
 *
 * @module
 */

import { prand } from "../_deps/pure_rand.ts";
import {
  checkFaults,
  FAULT_UNITS,
  type FaultKind,
  type FaultSettings,
  isSet,
  needsReset,
} from "./settings.ts";
import type { EchoShaper, Random } from "./unit.ts";

/** What was decided for one connection at accept, from the seed and its number. */
export interface ConnectionFaults {
  /** The connection's own random sequence, for choices made chunk by chunk. */
  readonly random: Random;
  /** True when a fault may end the connection with a reset: it needs a connection that can. */
  readonly resets: boolean;
  /**
   * The echo hooks of every fault set, in the registry's order, made when the echo starts; the
   * faults that act on every chunk report themselves here, once.
   */
  shape(
    onFault: (kind: FaultKind, detail: string) => void,
    signal: AbortSignal,
  ): EchoShaper[];
}

/** What was decided for one UDP datagram. */
export interface DatagramFaults {
  /** Dropped: not echoed at all. */
  readonly drop: boolean;
  /** ms before each copy is sent; two entries when the datagram is duplicated. */
  readonly delays: readonly number[];
  /** The faults injected, in order, each with its phrase (`datagram 3 dropped`). */
  readonly injected: readonly { readonly kind: FaultKind; readonly detail: string }[];
}

/**
 * The faults of one server, checked, with the seed fixed: asks which connections and datagrams
 * they hit and how.
 */
export class FaultPlan {
  /** The settings, with the seed they run on. */
  readonly settings: Readonly<FaultSettings> & { readonly seed: number };

  /** Checks `settings` (see {@linkcode checkFaults}) and picks a random seed when none is set. */
  constructor(settings: FaultSettings) {
    checkFaults(settings);
    const seed = settings.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
    this.settings = { ...settings, seed };
  }

  /**
   * The decisions for connection number `id` (1 for the first accepted), or undefined when
   * `faultRate` spares it.
   */
  forConnection(id: number): ConnectionFaults | undefined {
    const settings = this.settings;
    const random = seeded(settings.seed, id, 0);
    if (random.next() >= (settings.faultRate ?? 1)) return undefined;
    return {
      random,
      resets: needsReset(settings),
      shape: (onFault, signal) =>
        FAULT_UNITS.flatMap((unit) =>
          unit.shape && isSet(unit, settings)
            ? [unit.shape(settings, { random, onFault, signal })]
            : []
        ),
    };
  }

  /**
   * The decisions for UDP datagram number `id` (1 for the first received), or undefined when
   * `faultRate` spares it. Every datagram unit is asked, set or not, so that its draws keep
   * their places in the datagram's sequence.
   */
  forDatagram(id: number): DatagramFaults | undefined {
    const settings = this.settings;
    const random = seeded(settings.seed, id, 1);
    if (random.next() >= (settings.faultRate ?? 1)) return undefined;
    const injected: { kind: FaultKind; detail: string }[] = [];
    const context = {
      id,
      random,
      onFault: (kind: FaultKind, detail: string) => injected.push({ kind, detail }),
    };
    const parts = FAULT_UNITS.flatMap((unit) => unit.datagram ?? []);
    if (parts.some((part) => part.drops?.(settings, context))) {
      return { drop: true, delays: [], injected };
    }
    let copies = 1;
    for (const part of parts) copies = part.copies?.(settings, context, copies) ?? copies;
    const delays = Array.from(
      { length: copies },
      () => parts.reduce((held, part) => held + (part.holdBack?.(settings, context) ?? 0), 0),
    );
    return { drop: false, delays, injected };
  }
}

/**
 * An independent random sequence for (`seed`, `id`) in `space` (connections and datagrams draw
 * from different spaces): xoroshiro128+ seeded with a murmur3-mixed hash of the three, so that
 * neighbouring ids give unrelated sequences.
 */
function seeded(seed: number, id: number, space: number): Random {
  let h = mix32(seed ^ 0x9e3779b9);
  h = mix32(h ^ (id >>> 0));
  h = mix32(h ^ Math.floor(id / 2 ** 32) ^ (space * 0x85ebca6b));
  const generator = prand.xoroshiro128plus(h);
  const next = () => (generator.unsafeNext() >>> 0) / 2 ** 32;
  return { next, below: (below) => Math.floor(next() * below) };
}

/** murmur3's 32-bit finaliser: every input bit moves every output bit. */
function mix32(value: number): number {
  let h = value >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
