/**
 * `deno task imports`: checks that imports go one way (see CONTRIBUTING.md, "Layout") and that no
 * module imports itself through others. Exits 1 naming every cycle and every import against the
 * order; prints one line when all is well.
 *
 * - `lib/` imports nothing outside `lib/`; its folders in {@linkcode LIB_ORDER} import only their
 *   own folder or one earlier in the list; `lib/mod.ts` may import any of them.
 * - npm packages are named only in `lib/_deps/`, one file per package.
 * - `cli/` imports `lib/` and `cli/`; a command (`server.ts`, `client.ts`, `bench.ts`) imports
 *   `cli/` and `lib/`, never another command; `main.ts` imports the commands.
 * - Static and dynamic imports (`import("...")`) count alike; examples in doc comments do not.
 *
 * @module
 */

import { dirname, join, normalize, relative } from "node:path";

/** lib/'s folders, lowest first: each may import only its own folder and those before it. */
export const LIB_ORDER = [
  "_deps",
  "base",
  "net",
  "proxy",
  "faults",
  "server",
  "metrics",
  "control",
  "client",
  "load",
] as const;

const COMMANDS = ["server.ts", "client.ts", "bench.ts", "ctl.ts"];

/** One import: the file that imports and the file it names, both relative to the root. */
export interface Edge {
  from: string;
  to: string;
}

/** Every relative import of `source` (not those in comments), resolved from `file`. */
export function importsOf(file: string, source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const found: string[] = [];
  const pattern =
    /(?:^|[\s;])(?:import|export)\s[^"';]*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)|^\s*import\s*["']([^"']+)["']/gm;
  for (const match of code.matchAll(pattern)) {
    const spec = match[1] ?? match[2] ?? match[3];
    found.push(spec.startsWith(".") ? normalize(join(dirname(file), spec)) : spec);
  }
  return found;
}

/** What breaks the rules: one line each. */
export function problems(edges: Edge[]): string[] {
  const found: string[] = [];
  for (const { from, to } of edges) {
    const broken = rule(from, to);
    if (broken) found.push(`${from} imports ${to}: ${broken}`);
  }
  for (const cycle of cycles(edges)) found.push(`import cycle: ${cycle.join(" -> ")}`);
  return found;
}

function rule(from: string, to: string): string | undefined {
  const external = to.startsWith("npm:") || to.startsWith("jsr:") || !to.includes("/") ||
    to.startsWith("@");
  if (from.startsWith("lib/")) {
    if (to.startsWith("node:")) return undefined;
    if (external) {
      return from.startsWith("lib/_deps/") ? undefined : "npm packages are named in lib/_deps/";
    }
    if (!to.startsWith("lib/")) return "lib/ imports nothing outside lib/";
    if (from === "lib/mod.ts") return undefined;
    const mine = LIB_ORDER.indexOf(folderOf(from) as typeof LIB_ORDER[number]);
    const theirs = LIB_ORDER.indexOf(folderOf(to) as typeof LIB_ORDER[number]);
    if (mine < 0) return `${folderOf(from)} is not a folder of LIB_ORDER (tools/imports.ts)`;
    if (theirs < 0) return "only lib/mod.ts imports lib/mod.ts";
    if (theirs > mine) return `lib/${folderOf(from)} comes before lib/${folderOf(to)}`;
    return undefined;
  }
  if (from.startsWith("cli/")) {
    if (to.startsWith("lib/") || to.startsWith("cli/") || !to.includes("/") || external) {
      return undefined;
    }
    return to.startsWith("node:") ? undefined : "cli/ imports only cli/ and lib/";
  }
  if (COMMANDS.includes(from) && COMMANDS.includes(to)) return "commands never import each other";
  if ((COMMANDS.includes(from) || from.startsWith("cli/")) && to === "main.ts") {
    return "only the entry point is main.ts";
  }
  return undefined;
}

function folderOf(file: string): string {
  return file.split("/")[1];
}

/** The import cycles among `edges`, each as the files around it (Tarjan's components). */
export function cycles(edges: Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) next.set(from, [...(next.get(from) ?? []), to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const to of next.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (onStack.has(to)) low.set(node, Math.min(low.get(node)!, index.get(to)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string | undefined;
    while (member !== node) {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    }
    const selfLoop = (next.get(node) ?? []).includes(node);
    if (component.length > 1 || selfLoop) found.push(component.reverse());
  };
  for (const node of next.keys()) if (!index.has(node)) visit(node);
  return found;
}

async function sources(root: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(join(root, dir))) {
      const path = dir === "." ? entry.name : join(dir, entry.name);
      if (entry.isDirectory && ["lib", "cli"].some((top) => path.startsWith(top))) await walk(path);
      else if (entry.isFile && path.endsWith(".ts")) files.push(path);
    }
  };
  await walk(".");
  await walk("lib");
  await walk("cli");
  return [...new Set(files)];
}

if (import.meta.main) {
  const root = relative(Deno.cwd(), new URL("..", import.meta.url).pathname) || ".";
  const edges: Edge[] = [];
  const files = await sources(root);
  for (const file of files) {
    const source = await Deno.readTextFile(join(root, file));
    for (const to of importsOf(file, source)) edges.push({ from: file, to });
  }
  const found = problems(edges);
  for (const line of found) console.error(line);
  if (found.length > 0) Deno.exit(1);
  console.log(`imports: ${files.length} files, ${edges.length} imports, one way, no cycle`);
}
