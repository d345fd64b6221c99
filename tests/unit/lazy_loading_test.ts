/**
 * A command loads, before it runs, only what it needs whatever its flags: TLS, X.509, HdrHistogram,
 * PROXY, faults and metrics come through `await import()` when the flags ask for them (issue 18).
 * Read from the static import graph, so that a new static import of one of them fails here rather
 * than as megabytes of memory no one notices.
 */

import { deepEqual } from "node:assert/strict";
import { chainsTo, COMMAND_FILE, ON_DEMAND, staticGraph } from "../../tools/static_graph.ts";

const graph = await staticGraph();

for (const command of ["serve", "send"] as const) {
  Deno.test(`${command} reaches no module it needs only on demand through a static import`, () => {
    const roots = ["main.ts", COMMAND_FILE[command]];
    const chains = chainsTo(graph, roots, ON_DEMAND[command]);
    deepEqual(chains.map((chain) => chain.join(" -> ")), []);
  });
}

Deno.test("main.ts loads no command until it is chosen", () => {
  const commands = Object.values(COMMAND_FILE).concat("bench.ts", "ctl.ts");
  deepEqual(chainsTo(graph, ["main.ts"], (module) => commands.includes(module)), []);
});
