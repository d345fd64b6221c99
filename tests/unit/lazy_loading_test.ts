/**
 * A command loads, before it runs, only what it needs whatever its flags: TLS, X.509, HdrHistogram,
 * PROXY, faults and metrics come through `await import()` when the flags ask for them (issue 18).
 * Read from the static import graph, so that a new static import of one of them fails here rather
 * than as megabytes of memory no one notices.
 */

import { deepEqual, ok } from "node:assert/strict";
import { chainsTo, COMMAND_FILE, ON_DEMAND, staticGraph } from "../../tools/static_graph.ts";

const graph = await staticGraph();

/**
 * lib/ files that `serve` needs but that still import, statically, modules it needs only on
 * demand: the lib/ side of issue 18 (the session's stages loaded on demand, the socket adapter
 * out of the plain TCP path). Remove each once it no longer does; the last test says when.
 */
const PENDING_IN_LIB = new Set(["lib/server/start.ts", "lib/net/transport.ts"]);

for (const command of ["serve", "send"] as const) {
  Deno.test(`${command} reaches no module it needs only on demand through a static import`, () => {
    const roots = ["main.ts", COMMAND_FILE[command]];
    const chains = chainsTo(graph, roots, ON_DEMAND[command], PENDING_IN_LIB);
    deepEqual(chains.map((chain) => chain.join(" -> ")), []);
  });
}

Deno.test("each lib/ file pending for serve still imports a module serve needs only on demand", () => {
  for (const file of PENDING_IN_LIB) {
    ok(chainsTo(graph, [file], ON_DEMAND.serve).length > 0, `${file} is done: remove it`);
  }
});

Deno.test("main.ts loads no command until it is chosen", () => {
  const commands = Object.values(COMMAND_FILE).concat("bench.ts");
  deepEqual(chainsTo(graph, ["main.ts"], (module) => commands.includes(module)), []);
});
