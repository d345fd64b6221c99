/**
 * Waiting with a way out: a sleep that an `AbortSignal` ends early, and a deadline on a promise.
 *
 * @module
 */

/** The longest delay a timer takes: a longer one would fire at once (2^31-1 ms). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Resolves true after `duration` milliseconds (rounded up: never early), or false at once when
 * `signal` aborts first. A duration of 0 or less resolves true without a timer.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { sleep } from "./timers.ts";
 *
 * equal(await sleep(1), true);
 * equal(await sleep(60_000, AbortSignal.abort()), false);
 * ```
 */
export function sleep(duration: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  if (duration <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (elapsed: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(elapsed);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), Math.min(Math.ceil(duration), MAX_TIMER_MS));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Resolves true if `promise` settles within `duration` milliseconds, false otherwise.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { settlesWithin } from "./timers.ts";
 *
 * equal(await settlesWithin(Promise.resolve(), 1000), true);
 * equal(await settlesWithin(new Promise(() => {}), 1), false);
 * ```
 */
export async function settlesWithin(promise: Promise<unknown>, duration: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) =>
    timer = setTimeout(() => resolve(false), Math.min(duration, MAX_TIMER_MS))
  );
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
