/**
 * Open-loop pacing for `bench --rate`: when each message is due, whatever the server does.
 *
 * A closed loop sends the next message only when the last echo is back, so a server that stalls
 * for a second also stops the clock for that second, and the messages that would have waited are
 * never timed (coordinated omission). An open loop fixes every message's intended send time in
 * advance: latency measured from that time (corrected) includes the wait a real client would
 * have suffered, and latency measured from the actual send (service time) shows the server alone.
 *
 * @module
 */

import { setImmediate } from "node:timers";

/** The shape of an open-loop schedule. */
export interface ScheduleOptions {
  /** Messages per second over all connections, once the ramp (if any) is over. */
  rate: number;
  /** Connections sharing the rate, each sending every `connections`-th message. */
  connections: number;
  /** Milliseconds over which the rate rises linearly from 0 to `rate`. Default 0. */
  ramp?: number;
}

/**
 * Intended send times. Messages are numbered over all connections in the order they are due;
 * message `sequence` belongs to connection `sequence % connections`, so at a constant rate each
 * connection sends evenly spaced, `connections / rate` seconds apart, and the connections are
 * staggered `1 / rate` seconds from each other. With a ramp, the rate rises linearly from 0 and the
 * due times follow the integral of that rate.
 *
 * @example 1,000 messages per second over 4 connections
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { OpenLoopSchedule } from "./open_loop.ts";
 *
 * const schedule = new OpenLoopSchedule({ rate: 1000, connections: 4 });
 * equal(schedule.dueAt(0), 0);
 * equal(schedule.dueAt(1), 1); // connection 1, one millisecond later
 * equal(schedule.connectionOf(5), 1);
 * equal(schedule.dueAt(5), 5); // connection 1 again, 4 ms after its first message
 * equal(schedule.dueBefore(1000), 1000); // messages due in the first second
 * ```
 */
export class OpenLoopSchedule {
  /** Messages per millisecond at full rate. */
  readonly #perMs: number;
  readonly #ramp: number;
  /** Messages due during the ramp. */
  readonly #rampMessages: number;
  /** Connections sharing the schedule. */
  readonly connections: number;

  /** Checks `options`: throws a `RangeError` for a rate, connections or ramp out of range. */
  constructor(options: ScheduleOptions) {
    const { rate, connections, ramp = 0 } = options;
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`rate must be > 0: ${rate}`);
    if (!Number.isInteger(connections) || connections < 1) {
      throw new RangeError(`connections must be a positive integer: ${connections}`);
    }
    if (!(ramp >= 0) || !Number.isFinite(ramp)) throw new RangeError(`ramp must be >= 0: ${ramp}`);
    this.#perMs = rate / 1000;
    this.#ramp = ramp;
    this.#rampMessages = (this.#perMs * ramp) / 2;
    this.connections = connections;
  }

  /** Milliseconds after the start at which message `sequence` (0, 1, ...) is due. */
  dueAt(sequence: number): number {
    if (sequence < this.#rampMessages) {
      // During the ramp the rate is perMs * t / ramp: messages due by t = perMs * t² / (2 ramp).
      return Math.sqrt((2 * this.#ramp * sequence) / this.#perMs);
    }
    return this.#ramp + (sequence - this.#rampMessages) / this.#perMs;
  }

  /** How many messages fall due strictly before `ms` milliseconds after the start. */
  dueBefore(ms: number): number {
    if (ms <= 0) return 0;
    const exact = ms < this.#ramp
      ? (this.#perMs * ms * ms) / (2 * this.#ramp)
      : this.#rampMessages + (ms - this.#ramp) * this.#perMs;
    // Message n is due at or after ms when n >= exact: the count is ceil(exact), computed so that
    // rounding in dueAt never disagrees with it.
    let count = Math.max(0, Math.ceil(exact) - 1);
    while (this.dueAt(count) < ms) count++;
    return count;
  }

  /** The connection that sends message `sequence`. */
  connectionOf(sequence: number): number {
    return sequence % this.connections;
  }
}

/** How the {@linkcode Pacer} runs a schedule. */
export interface PacerOptions {
  /** The intended send times. */
  schedule: OpenLoopSchedule;
  /** Called, in order, for each message as it falls due, with its sequence and due time. */
  release: (sequence: number, due: number) => void;
  /** Stop releasing at the first message due at or after this many milliseconds. */
  duration?: number;
  /** Stop after releasing this many messages in all. */
  total?: number;
  /** The start time, in `performance.now()` milliseconds. Default: when {@linkcode Pacer.run} is called. */
  start?: number;
}

/**
 * A wait longer than this sleeps on a timer that wakes this much early; the rest is spun out by
 * yielding to the event loop, because Deno's timers fire up to a millisecond or more late and a late
 * release counts as latency.
 */
const SPIN_MS = 1;

/**
 * Releases the messages of an {@linkcode OpenLoopSchedule} as they fall due. Long waits sleep on a
 * timer; the last millisecond yields to the event loop (`setImmediate`) until the time comes, and
 * {@linkcode Pacer.poll} releases whatever is due whenever the process wakes for I/O, so that a
 * message leaves within tens of microseconds of its due time on an idle machine. When the process
 * falls behind (a long garbage collection, a busy machine), every message already due is released
 * at once: the lateness then shows in the corrected latency, as it would for a real client.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { OpenLoopSchedule, Pacer } from "./open_loop.ts";
 *
 * const released: number[] = [];
 * const pacer = new Pacer({
 *   schedule: new OpenLoopSchedule({ rate: 2000, connections: 2 }),
 *   release: (sequence) => released.push(sequence),
 *   duration: 10,
 * });
 * await pacer.run();
 * equal(released.length, 20);
 * ```
 */
export class Pacer {
  readonly #options: PacerOptions;
  #next = 0;
  #start = 0;
  #stopped = false;
  #wake?: () => void;
  #timer?: ReturnType<typeof setTimeout>;

  /** A pacer for `options.schedule`; nothing is released until {@linkcode Pacer.run}. */
  constructor(options: PacerOptions) {
    this.#options = options;
  }

  /** Messages released so far. */
  get released(): number {
    return this.#next;
  }

  /** Releases messages until the duration or total is reached, or {@linkcode Pacer.stop}. */
  async run(): Promise<void> {
    this.#start = this.#options.start ?? performance.now();
    while (!this.#stopped) {
      const next = this.poll();
      if (next === undefined) break;
      await this.#sleep(next - performance.now());
    }
  }

  /**
   * Releases every message due by now, and returns when the next one is due (undefined when the
   * schedule is over). Call it whenever the process wakes up for something else, such as a read:
   * at high rates that releases messages more promptly than a timer can.
   */
  poll(): number | undefined {
    const { schedule, release, duration = Infinity, total = Infinity } = this.#options;
    const now = performance.now();
    while (!this.#stopped && this.#next < total) {
      const offset = schedule.dueAt(this.#next);
      if (offset >= duration) return undefined;
      const due = this.#start + offset;
      if (due > now) return due;
      release(this.#next++, due);
    }
    return undefined;
  }

  /** Stops releasing; a pending {@linkcode Pacer.run} resolves promptly. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#wake?.();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      if (ms > SPIN_MS) {
        this.#timer = setTimeout(resolve, ms - SPIN_MS);
      } else {
        setImmediate(resolve);
      }
    });
  }
}
