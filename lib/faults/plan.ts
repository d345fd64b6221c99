/**
 * Fault injection: the settings that make an echo server misbehave on purpose, and the decisions
 * they lead to, made from a seed so that a run can be replayed.
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
import { UsageError } from "../base/errors.ts";
import { bytes, ms, percent } from "../base/format.ts";

/**
 * How an echo server misbehaves. Every fault is off unless set. Times are in milliseconds, sizes
 * in bytes, rates (probabilities) from 0 to 1.
 */
export interface FaultSettings {
  /** Seed of every random choice; the same seed makes the same choices. Default: a random one. */
  seed?: number;
  /** Share of connections (UDP: of datagrams) the faults apply to. Default 1: all of them. */
  faultRate?: number;
  /** Hold each echoed chunk this long before writing it back. */
  delay?: number;
  /** Add a random 0 to `jitter` ms to each chunk's delay; bytes stay in order. */
  jitter?: number;
  /** Cap each connection's echo at this many bytes per second, paced smoothly. */
  bandwidth?: number;
  /** Write each echoed chunk in pieces of at most this many bytes. */
  slice?: number;
  /** Wait this long between the pieces of a sliced chunk. */
  sliceDelay?: number;
  /** Reset the connection (TCP RST) once this many bytes have been echoed. */
  resetAfter?: number;
  /** Reset the connection (TCP RST) this long after it was accepted. */
  resetAfterTime?: number;
  /** Close the connection cleanly (FIN) once this many bytes have been echoed; drop the rest. */
  closeAfter?: number;
  /** Read everything, echo nothing. */
  blackhole?: boolean;
  /** Never read: the client's writes fill the socket buffers. */
  noRead?: boolean;
  /** Pause the echo for `stallFor` ms every time it has run for this long. */
  stallEvery?: number;
  /** How long each pause of `stallEvery` lasts. */
  stallFor?: number;
  /** Flip one bit of one byte of an echoed chunk, with this probability per chunk. */
  corruptRate?: number;
  /** UDP: drop a datagram instead of echoing it, with this probability. */
  dropRate?: number;
  /** UDP: echo a datagram twice, with this probability. */
  duplicateRate?: number;
}

/** The kinds of fault, as events and counters name them. */
export type FaultKind =
  | "delay"
  | "bandwidth"
  | "slice"
  | "reset"
  | "close"
  | "blackhole"
  | "no-read"
  | "stall"
  | "corrupt"
  | "drop"
  | "duplicate";

/** How many faults of each kind were injected so far. */
export type FaultCounts = Record<FaultKind, number>;

/** The fault counters with nothing counted yet. */
export function noFaultCounts(): FaultCounts {
  return {
    delay: 0,
    bandwidth: 0,
    slice: 0,
    reset: 0,
    close: 0,
    blackhole: 0,
    "no-read": 0,
    stall: 0,
    corrupt: 0,
    drop: 0,
    duplicate: 0,
  };
}

/** A source of random numbers in [0, 1), for one connection or one datagram. */
export interface Random {
  /** The next number in [0, 1). */
  next(): number;
  /** The next integer from 0 to `below - 1`. */
  below(below: number): number;
}

/** What was decided for one connection at accept, from the seed and its number. */
export interface ConnectionFaults {
  /** ms before each chunk is echoed, before jitter. */
  readonly delay: number;
  /** Up to this many ms more per chunk. */
  readonly jitter: number;
  /** Bytes per second, or `Infinity`. */
  readonly bandwidth: number;
  /** Bytes per write, or `Infinity`. */
  readonly slice: number;
  /** ms between slices. */
  readonly sliceDelay: number;
  /** Bytes echoed before a reset, or `Infinity`. */
  readonly resetAfter: number;
  /** ms from accept to a reset, or `Infinity`. */
  readonly resetAfterTime: number;
  /** Bytes echoed before a clean close, or `Infinity`. */
  readonly closeAfter: number;
  readonly blackhole: boolean;
  readonly noRead: boolean;
  /** ms of echo between pauses, or `Infinity`. */
  readonly stallEvery: number;
  /** ms each pause lasts. */
  readonly stallFor: number;
  /** Probability per chunk of a flipped bit. */
  readonly corruptRate: number;
  /** The connection's own random sequence, for choices made chunk by chunk. */
  readonly random: Random;
}

/** What was decided for one UDP datagram. */
export interface DatagramFaults {
  /** Dropped: not echoed at all. */
  readonly drop: boolean;
  /** ms before each copy is sent; two entries when the datagram is duplicated. */
  readonly delays: readonly number[];
}

const RATES = ["faultRate", "corruptRate", "dropRate", "duplicateRate"] as const;
const DURATIONS = [
  "delay",
  "jitter",
  "sliceDelay",
  "resetAfterTime",
  "stallEvery",
  "stallFor",
] as const;
const SIZES = ["bandwidth", "slice", "resetAfter", "closeAfter"] as const;
/** Timers fire at once beyond this (2^31-1 ms). */
const MAX_MS = 2 ** 31 - 1;

/**
 * Checks `settings` and throws a {@linkcode UsageError} naming the first setting that is out of
 * range or that contradicts another; `name` says how to name a setting (the command line names
 * its flags).
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { checkFaults } from "./plan.ts";
 *
 * checkFaults({ delay: 50, jitter: 10 });
 * throws(() => checkFaults({ corruptRate: 2 }), /corruptRate must be from 0 to 1/);
 * ```
 */
export function checkFaults(
  settings: FaultSettings,
  name: (setting: keyof FaultSettings) => string = (setting) => setting,
): void {
  for (const key of RATES) {
    const value = settings[key];
    if (value !== undefined && !(value >= 0 && value <= 1)) {
      throw new UsageError(`${name(key)} must be from 0 to 1, not ${value}`);
    }
  }
  for (const key of DURATIONS) {
    const value = settings[key];
    if (value !== undefined && !(value >= 0 && value <= MAX_MS)) {
      throw new UsageError(`${name(key)} must be from 0 to ${MAX_MS} ms, not ${value}`);
    }
  }
  for (const key of SIZES) {
    const value = settings[key];
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 1)) {
      throw new UsageError(
        `${name(key)} must be a whole number of bytes, at least 1, not ${value}`,
      );
    }
  }
  const { seed } = settings;
  if (seed !== undefined && !(Number.isSafeInteger(seed) && seed >= 0 && seed < 2 ** 32)) {
    throw new UsageError(
      `${name("seed")} must be a whole number from 0 to ${2 ** 32 - 1}, not ${seed}`,
    );
  }
  if ((settings.stallEvery === undefined) !== (settings.stallFor === undefined)) {
    throw new UsageError(
      `${name("stallEvery")} and ${name("stallFor")} go together: give both or neither`,
    );
  }
  if (settings.stallEvery === 0) {
    throw new UsageError(`${name("stallEvery")} must be more than 0 ms`);
  }
  if (settings.sliceDelay !== undefined && settings.slice === undefined) {
    throw new UsageError(
      `${name("sliceDelay")} needs ${name("slice")}: the pieces it waits between`,
    );
  }
  if (settings.blackhole && settings.noRead) {
    throw new UsageError(
      `${name("blackhole")} reads and ${name("noRead")} does not: give one of them`,
    );
  }
}

/** True when `settings` turns on at least one fault (a seed or a rate alone turns on none). */
export function hasFaults(settings: FaultSettings | undefined): boolean {
  if (settings === undefined) return false;
  const { seed: _seed, faultRate: _rate, ...faults } = settings;
  return Object.values(faults).some((value) => value !== undefined && value !== false);
}

/** True when `settings` can end a stream connection with a TCP reset. */
export function needsReset(settings: FaultSettings | undefined): boolean {
  return settings?.resetAfter !== undefined || settings?.resetAfterTime !== undefined;
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
    const s = this.settings;
    const random = seeded(s.seed, id, 0);
    if (random.next() >= (s.faultRate ?? 1)) return undefined;
    return {
      delay: s.delay ?? 0,
      jitter: s.jitter ?? 0,
      bandwidth: s.bandwidth ?? Infinity,
      slice: s.slice ?? Infinity,
      sliceDelay: s.sliceDelay ?? 0,
      resetAfter: s.resetAfter ?? Infinity,
      resetAfterTime: s.resetAfterTime ?? Infinity,
      closeAfter: s.closeAfter ?? Infinity,
      blackhole: s.blackhole ?? false,
      noRead: s.noRead ?? false,
      stallEvery: s.stallEvery ?? Infinity,
      stallFor: s.stallFor ?? 0,
      corruptRate: s.corruptRate ?? 0,
      random,
    };
  }

  /**
   * The decisions for UDP datagram number `id` (1 for the first received), or undefined when
   * `faultRate` spares it or no datagram fault is set.
   */
  forDatagram(id: number): DatagramFaults | undefined {
    const s = this.settings;
    const random = seeded(s.seed, id, 1);
    if (random.next() >= (s.faultRate ?? 1)) return undefined;
    if (random.next() < (s.dropRate ?? 0)) return { drop: true, delays: [] };
    const copies = random.next() < (s.duplicateRate ?? 0) ? 2 : 1;
    const delays = Array.from(
      { length: copies },
      () => (s.delay ?? 0) + random.next() * (s.jitter ?? 0),
    );
    return { drop: false, delays };
  }
}

/**
 * The faults in force, one phrase each, for a start-up line: `delay 50 ms`, `reset after 1,024
 * bytes echoed`, ... and the seed when a random choice depends on it.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { describeFaults } from "./plan.ts";
 *
 * equal(
 *   describeFaults({ delay: 50, jitter: 10, resetAfter: 1024, seed: 1 }).join(", "),
 *   "delay 50 ms + 0-10 ms jitter, reset after 1,024 bytes echoed, seed 1",
 * );
 * ```
 */
export function describeFaults(settings: FaultSettings): string[] {
  const s = settings;
  const phrases: string[] = [];
  if (s.delay !== undefined || s.jitter !== undefined) {
    phrases.push(
      `delay ${ms(s.delay ?? 0)}${s.jitter === undefined ? "" : ` + 0-${ms(s.jitter)} jitter`}`,
    );
  }
  if (s.bandwidth !== undefined) phrases.push(`bandwidth ${bytes(s.bandwidth)}/s`);
  if (s.slice !== undefined) {
    phrases.push(
      `slices of ${bytes(s.slice)}${
        s.sliceDelay === undefined ? "" : ` ${ms(s.sliceDelay)} apart`
      }`,
    );
  }
  if (s.resetAfter !== undefined) phrases.push(`reset after ${bytes(s.resetAfter)} echoed`);
  if (s.resetAfterTime !== undefined) phrases.push(`reset after ${ms(s.resetAfterTime)}`);
  if (s.closeAfter !== undefined) phrases.push(`close after ${bytes(s.closeAfter)} echoed`);
  if (s.blackhole) phrases.push("blackhole");
  if (s.noRead) phrases.push("no read");
  if (s.stallEvery !== undefined) {
    phrases.push(`stall ${ms(s.stallFor ?? 0)} every ${ms(s.stallEvery)}`);
  }
  if (s.corruptRate !== undefined) phrases.push(`corrupt ${percent(s.corruptRate)} of chunks`);
  if (s.dropRate !== undefined) phrases.push(`drop ${percent(s.dropRate)} of datagrams`);
  if (s.duplicateRate !== undefined) {
    phrases.push(`duplicate ${percent(s.duplicateRate)} of datagrams`);
  }
  if (phrases.length > 0 && s.faultRate !== undefined) {
    phrases.push(`on ${percent(s.faultRate)} of connections`);
  }
  if (phrases.length > 0 && s.seed !== undefined) phrases.push(`seed ${s.seed}`);
  return phrases;
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
