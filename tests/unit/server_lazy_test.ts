import { deepEqual } from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

/** The modules `root` loads when it is imported: its static imports, those of type-only left out. */
async function staticGraph(root: string): Promise<string[]> {
  const { stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", root],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).output();
  const info = JSON.parse(new TextDecoder().decode(stdout)) as {
    roots: string[];
    modules: {
      specifier: string;
      dependencies?: { code?: { specifier: string }; isDynamic?: boolean }[];
    }[];
  };
  const modules = new Map(info.modules.map((module) => [module.specifier, module]));
  const loaded = new Set<string>();
  const next = [...info.roots];
  for (let url; (url = next.pop()) !== undefined;) {
    if (loaded.has(url)) continue;
    loaded.add(url);
    for (const dependency of modules.get(url)?.dependencies ?? []) {
      if (!dependency.isDynamic && dependency.code) next.push(dependency.code.specifier);
    }
  }
  return [...loaded].map((url) => url.startsWith(ROOT.href) ? url.slice(ROOT.href.length) : url);
}

Deno.test("a plain echo server loads neither the PROXY codec, nor TLS or sockets, nor the faulted loop", async () => {
  const optional = (await staticGraph("lib/server/echo_server.ts")).filter((module) =>
    module.startsWith("lib/proxy/") || module.startsWith("lib/net/") ||
    module.startsWith("node:") ||
    module === "lib/server/_fault_echo.ts"
  );
  deepEqual(optional, []);
});
