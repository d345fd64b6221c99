/**
 * One generator's share of a load split over several (`bench --shard I/N`), such as the pods of a
 * Kubernetes Indexed Job: the shares of connections and rate add up to the whole exactly.
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";

/** Which share: generator `index` of `count`, counted from 0. */
export interface Shard {
  /** This generator's number, from 0 to `count - 1`. */
  index: number;
  /** How many generators share the load. */
  count: number;
}

/** `total` split into `shard.count` parts as even as can be; the first ones take the remainder. */
function share(total: number, { index, count }: Shard): number {
  return Math.floor(total / count) + (index < total % count ? 1 : 0);
}

/**
 * This shard's connections and rate out of the whole load's. Throws a {@linkcode UsageError}
 * when there are fewer connections (or messages per second) than shards: one would get none.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { shardOf } from "./shard.ts";
 *
 * deepEqual(shardOf({ connections: 10, rate: 1000 }, { index: 0, count: 3 }), {
 *   connections: 4,
 *   rate: 334,
 * });
 * deepEqual(shardOf({ connections: 10 }, { index: 2, count: 3 }), {
 *   connections: 3,
 *   rate: undefined,
 * });
 * ```
 */
export function shardOf(
  load: { connections: number; rate?: number },
  shard: Shard,
): { connections: number; rate?: number } {
  if (load.connections < shard.count || (load.rate !== undefined && load.rate < shard.count)) {
    throw new UsageError(
      `--shard ${shard.index}/${shard.count}: the load must have at least ${shard.count} ` +
        `connections${load.rate === undefined ? "" : " and messages per second"}, one per shard`,
    );
  }
  return {
    connections: share(load.connections, shard),
    rate: load.rate === undefined ? undefined : share(load.rate, shard),
  };
}
