/**
 * The one shape every fault has: its settings and how they are checked, the phrase that names it
 * on the start-up line, and its part in the echo of a connection or in the fate of a datagram.
 * Each fault is one file that exports one {@linkcode FaultUnit}; `settings.ts` lists them all.
 *
 * Nothing here draws random numbers itself: a unit draws from the {@linkcode Random} it is given,
 * so that this module and the units load without the generator's package.
 *
 * @module
 */

/** How a setting's value is checked: a probability, milliseconds, a byte count or a switch. */
export type SettingKind = "rate" | "duration" | "size" | "switch";

/** What a fault works on: streams (TCP, TLS, Unix sockets), UDP datagrams, or both. */
export type Works = "stream" | "datagram" | "both";

/** A source of random numbers in [0, 1), for one connection or one datagram. */
export interface Random {
  /** The next number in [0, 1). */
  next(): number;
  /** The next integer from 0 to `below - 1`. */
  below(below: number): number;
}

/** What a unit is given to shape the echo of one connection. */
export interface ShapeContext<Kind extends string> {
  /** The connection's own random sequence, shared by its units in the registry's order. */
  readonly random: Random;
  /** Reports one fault injected, with a phrase such as `echo stalled for 500 ms`. */
  readonly onFault: (kind: Kind, detail: string) => void;
  /** Aborted when the server ends the connection: every wait ends at once. */
  readonly signal: AbortSignal;
}

/** How the echo ends early after a piece: a clean close (FIN), or a reset with its phrase. */
export type EchoEnd = { readonly how: "close" } | {
  readonly how: "reset";
  readonly detail: string;
};

/**
 * One fault's part in the echo of one connection. The faulted echo loop (a reader, a queue and a
 * writer) calls each hook of every unit that hit the connection, in the registry's order; every
 * hook is optional.
 */
export interface EchoShaper {
  /** Replaces the echo: `dropped` reads everything and echoes nothing, `never` does not read. */
  readonly reads?: "dropped" | "never";
  /** Resets the connection `after` ms from the start, whatever it is doing, with this phrase. */
  readonly resetAt?: { readonly after: number; readonly detail: string };
  /**
   * A chunk just read, `offset` bytes into the stream: may change its bytes, and returns the ms to
   * hold it back (a chunk is never written before the one before it).
   */
  chunk?(data: Uint8Array, offset: number): number;
  /** Waits, before each piece is written, while the echo is paused. */
  pause?(): Promise<void>;
  /** The most bytes the next piece may hold, with `echoed` bytes echoed so far. */
  pieceLimit?(echoed: number): number;
  /** Waits until a piece of `size` bytes may go. */
  pace?(size: number): Promise<void>;
  /** After a piece, with `echoed` bytes echoed so far: how the echo ends now, if it does. */
  afterPiece?(echoed: number): EchoEnd | undefined;
  /** Waits between two pieces of one chunk. */
  betweenPieces?(): Promise<void>;
}

/** What a unit is given to decide the fate of one datagram. */
export interface DatagramContext<Kind extends string> {
  /** The datagram's number: 1 for the first received. */
  readonly id: number;
  /** The datagram's own random sequence, shared by the units in the registry's order. */
  readonly random: Random;
  /** Reports one fault injected on the datagram. */
  readonly onFault: (kind: Kind, detail: string) => void;
}

/**
 * One fault's part in the fate of every datagram, whether its settings are given or not: each
 * hook draws the same numbers either way, so that a datagram's draws keep their places. The
 * stages run in this order: `drops` (the datagram is lost: no later stage runs), `copies`, then
 * `holdBack` once per copy.
 */
export interface DatagramPart<Settings, Kind extends string> {
  /** True when the datagram is lost. */
  drops?(settings: Settings, context: DatagramContext<Kind>): boolean;
  /** How many copies go back, from `copies` decided so far. */
  copies?(settings: Settings, context: DatagramContext<Kind>, copies: number): number;
  /** The ms one copy is held back. */
  holdBack?(settings: Settings, context: DatagramContext<Kind>): number;
}

/**
 * A fault: everything about it in one place. `Settings` are its own settings (a part of
 * `FaultSettings`), `Kind` the kinds of fault it injects (a part of `FaultKind`).
 */
export interface FaultUnit<Settings, Kind extends string> {
  /** The kinds it injects, as events and counters name them. */
  readonly kinds: readonly Kind[];
  /** Each of its settings, with how its value is checked. Any one given turns the fault on. */
  readonly settings: { readonly [Setting in keyof Settings]-?: SettingKind };
  /** What it works on. */
  readonly works: Works;
  /** True when it can end a stream connection with a TCP reset. */
  readonly resets?: boolean;
  /**
   * Throws a `UsageError` when its settings contradict each other; `name` names a setting as the
   * caller does. Each value's range is checked before, from {@linkcode FaultUnit.settings}.
   */
  check?(settings: Settings, name: (setting: keyof Settings) => string): void;
  /** Its phrases for the start-up line (`delay 50 ms`); called when one of its settings is given. */
  describe(settings: Settings): string[];
  /**
   * Its part in the echo of one connection it hit, made when the echo starts; a fault that acts
   * on every chunk reports itself here, once.
   */
  shape?(settings: Settings, context: ShapeContext<Kind>): EchoShaper;
  /** Its part in the fate of every datagram. */
  readonly datagram?: DatagramPart<Settings, Kind>;
}
