/**
 * Opens a TCP connection to a host name the way RFC 8305 (Happy Eyeballs v2) asks: every address
 * of the name is tried, the families taking turns, a new attempt starting when the one before
 * fails or has had 250 ms without an answer, the first to connect winning. `-4` and `-6` keep to
 * one family, as in curl and nc.
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";

/** An IP version: 4 or 6. */
export type AddressFamily = 4 | 6;

/** RFC 8305's recommended Connection Attempt Delay, in milliseconds. */
export const CONNECTION_ATTEMPT_DELAY_MS = 250;

/** What {@linkcode dialTcp} connects to. */
export interface DialOptions {
  /** A host name or an IP address. */
  hostname: string;
  /** The port. */
  port: number;
  /** Only addresses of this family: 4 or 6. */
  family?: AddressFamily;
  /** Stops every attempt still in progress. */
  signal?: AbortSignal;
}

/**
 * The family of an IP address literal, or undefined for a name.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { literalFamily } from "./dial.ts";
 *
 * equal(literalFamily("::1"), 6);
 * equal(literalFamily("127.0.0.1"), 4);
 * equal(literalFamily("localhost"), undefined);
 * ```
 */
export function literalFamily(hostname: string): AddressFamily | undefined {
  if (hostname.includes(":")) return 6;
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) ? 4 : undefined;
}

/**
 * Orders addresses as RFC 8305 section 4 does: the first address's family first, then the
 * families taking turns, each family's addresses in the resolver's order.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { interleaveFamilies } from "./dial.ts";
 *
 * deepEqual(
 *   interleaveFamilies([
 *     { address: "::1", family: 6 },
 *     { address: "2001:db8::1", family: 6 },
 *     { address: "127.0.0.1", family: 4 },
 *   ]),
 *   ["::1", "127.0.0.1", "2001:db8::1"],
 * );
 * ```
 */
export function interleaveFamilies(
  addresses: readonly { address: string; family: number }[],
): string[] {
  const first = addresses[0]?.family;
  const preferred = addresses.filter((entry) => entry.family === first);
  const other = addresses.filter((entry) => entry.family !== first);
  const ordered: string[] = [];
  for (let i = 0; i < Math.max(preferred.length, other.length); i++) {
    if (i < preferred.length) ordered.push(preferred[i].address);
    if (i < other.length) ordered.push(other[i].address);
  }
  return ordered;
}

/**
 * Connects over TCP to `hostname`, trying each of its addresses (see the module's doc). An
 * address literal is connected to at once. Without the permission to resolve the name for all
 * ports (`--allow-net=HOST` rather than `HOST:PORT`), the name goes to `Deno.connect` as it is,
 * which tries its first address only. When every attempt fails, the first attempt's error is
 * thrown: that of the address the resolver preferred.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { dialTcp } from "./dial.ts";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * using conn = await dialTcp({ hostname: "localhost", port: listener.addr.port, family: 4 });
 * equal(conn.remoteAddr.hostname, "127.0.0.1");
 * ```
 */
export async function dialTcp(options: DialOptions): Promise<Deno.TcpConn> {
  const { hostname, port, family, signal } = options;
  const literal = literalFamily(hostname);
  if (literal !== undefined) {
    if (family !== undefined && family !== literal) {
      throw new UsageError(
        `${hostname} is an IPv${literal} address, but -${family} asks for IPv${family}`,
      );
    }
    return await Deno.connect({ hostname, port, signal });
  }
  const addresses = await resolve(hostname, family);
  if (addresses === undefined) return await Deno.connect({ hostname, port, signal });
  if (addresses.length === 0) {
    throw new UsageError(`${hostname} has no IPv${family} address (-${family})`);
  }
  return await dialAddresses(addresses, port, signal);
}

/**
 * The addresses of `hostname` (of `family` only, when given), in the resolver's order; undefined
 * when the name cannot be resolved here, so that `Deno.connect` reports why as it always has.
 */
async function resolve(
  hostname: string,
  family: AddressFamily | undefined,
): Promise<string[] | undefined> {
  const granted = Deno.permissions.querySync({ name: "net", host: hostname }).state === "granted";
  if (!granted) {
    if (family === undefined) return undefined;
    throw new UsageError(
      `-${family} resolves ${hostname} itself: run deno with --allow-net=${hostname}`,
    );
  }
  const { lookup } = await import("node:dns/promises");
  try {
    return interleaveFamilies(await lookup(hostname, { all: true, family: family ?? 0 }));
  } catch (err) {
    if (family !== undefined && (err as { code?: string }).code === "ENOTFOUND") return [];
    return undefined;
  }
}

/**
 * Connects to the first of `addresses` that answers: one attempt after the other, each started
 * when the one before fails or after {@linkcode CONNECTION_ATTEMPT_DELAY_MS}; the others are
 * abandoned once one connects. Rejects with the first address's error when every attempt fails.
 *
 * @example The first address refuses, the second connects
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { dialAddresses } from "./dial.ts";
 *
 * const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const refusing = closed.addr.port;
 * closed.close();
 * using listener = Deno.listen({ hostname: "127.0.0.2", port: refusing });
 * using conn = await dialAddresses(["127.0.0.1", "127.0.0.2"], refusing);
 * equal(conn.remoteAddr.hostname, "127.0.0.2");
 * ```
 */
export function dialAddresses(
  addresses: readonly string[],
  port: number,
  signal?: AbortSignal,
): Promise<Deno.TcpConn> {
  const losers = new AbortController();
  const attemptSignal = signal ? AbortSignal.any([signal, losers.signal]) : losers.signal;
  return new Promise((resolve, reject) => {
    const errors: unknown[] = [];
    let started = 0;
    let pending = 0;
    let won = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const startNext = () => {
      clearTimeout(timer);
      if (started === addresses.length) return;
      const hostname = addresses[started++];
      pending++;
      Deno.connect({ hostname, port, signal: attemptSignal }).then((conn) => {
        if (won) return conn.close();
        won = true;
        clearTimeout(timer);
        losers.abort();
        resolve(conn);
      }, (err) => {
        pending--;
        errors[addresses.indexOf(hostname)] = err;
        if (won) return;
        if (started < addresses.length) startNext();
        else if (pending === 0) reject(errors.find((error) => error !== undefined));
      });
      if (started < addresses.length) timer = setTimeout(startNext, CONNECTION_ATTEMPT_DELAY_MS);
    };
    startNext();
  });
}
