/**
 * The static import graph of the program, as Deno resolves it (`deno info --json`): what a command
 * loads before it runs a line, whatever its flags. Dynamic imports (`await import()`) and type-only
 * imports load nothing by themselves, so they are left out. `tests/unit/lazy_loading_test.ts` uses
 * it to pin which modules each command loads only on demand.
 *
 * `deno run --allow-read --allow-run tools/static_graph.ts` prints, for `serve` and `send`, each
 * module that should load only on demand but is reached statically, with the chain that reaches it.
 *
 * @module
 */

import { relative } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

const ROOT = fromFileUrl(new URL("..", import.meta.url));

/** Each module (a path from the project's root, or a `node:`/`npm:` specifier) and what it imports. */
export type ImportGraph = Map<string, string[]>;

/** The modules a command loads only when its flags ask for them. */
export const ON_DEMAND: Record<"serve" | "send", (module: string) => boolean> = {
  serve: (module) =>
    /^lib\/_deps\/(x509|hdr_histogram|ipaddr|pure_rand)\.ts$/.test(module) ||
    /^lib\/net\/(tls_.*|certificates|self_signed)\.ts$/.test(module) ||
    /^lib\/(metrics|proxy|control)\//.test(module) || module === "lib/faults/plan.ts" ||
    ["node:net", "node:tls", "node:crypto"].includes(module),
  send: (module) =>
    /^lib\/_deps\/(x509|hdr_histogram|pure_rand)\.ts$/.test(module) ||
    /^lib\/(metrics|faults|control|server\/(?!greeting))/.test(module) ||
    module === "cli/ping_mode.ts",
};

/** What the command's file is. */
export const COMMAND_FILE: Record<keyof typeof ON_DEMAND, string> = {
  serve: "server.ts",
  send: "client.ts",
};

/** The static imports of every module reachable from `entry`, run through `deno info --json`. */
export async function staticGraph(entry = "main.ts"): Promise<ImportGraph> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`deno info failed: ${new TextDecoder().decode(stderr)}`);
  const info = JSON.parse(new TextDecoder().decode(stdout)) as DenoInfo;
  const graph: ImportGraph = new Map();
  for (const module of info.modules) {
    const imports = (module.dependencies ?? [])
      .filter((dependency) => dependency.code && !dependency.isDynamic)
      .map((dependency) => name(dependency.code!.specifier));
    graph.set(name(module.specifier), imports);
  }
  return graph;
}

/**
 * One shortest chain of static imports from `roots` to each module that `wanted` picks, the
 * chain's first entry a root and its last the module.
 */
export function chainsTo(
  graph: ImportGraph,
  roots: string[],
  wanted: (module: string) => boolean,
): string[][] {
  const cameFrom = new Map<string, string | undefined>(roots.map((root) => [root, undefined]));
  const queue = [...roots];
  const chains: string[][] = [];
  for (let module = queue.shift(); module !== undefined; module = queue.shift()) {
    if (wanted(module)) {
      const chain = [module];
      for (let from = cameFrom.get(module); from !== undefined; from = cameFrom.get(from)) {
        chain.unshift(from);
      }
      chains.push(chain);
      continue;
    }
    for (const next of graph.get(module) ?? []) {
      if (cameFrom.has(next)) continue;
      cameFrom.set(next, module);
      queue.push(next);
    }
  }
  return chains;
}

/** The part of `deno info --json` read here. */
interface DenoInfo {
  modules: {
    specifier: string;
    dependencies?: { code?: { specifier: string }; isDynamic?: boolean }[];
  }[];
}

function name(specifier: string): string {
  return specifier.startsWith("file:") ? relative(ROOT, fromFileUrl(specifier)) : specifier;
}

if (import.meta.main) {
  const graph = await staticGraph();
  for (const [command, wanted] of Object.entries(ON_DEMAND)) {
    const chains = chainsTo(graph, ["main.ts", COMMAND_FILE[command as "serve"]], wanted);
    console.log(
      `${command}: ${chains.length} module(s) loaded statically that it needs only on demand`,
    );
    for (const chain of chains) console.log(`  ${chain.join(" -> ")}`);
  }
}
