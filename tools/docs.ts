/**
 * `deno task docs`: rewrites the flag table of each command's page in `docs/` (`docs/serve.md`,
 * ...) from the command's declarations: the lines between `<!-- flags:serve -->` and
 * `<!-- /flags:serve -->` are replaced, the rest of the page is left as it is.
 *
 * usage: deno task docs [--check]   (--check changes nothing and exits 1 when a table is stale)
 *
 * @module
 */

import { allCommands } from "../main.ts";
import type { CommandSpec, Flags } from "../cli/flags.ts";
import { flagTable } from "../cli/help.ts";

/** The page of `docs/` that holds the flag table of command `name`. */
export function docsPage(name: string): URL {
  return new URL(`../docs/${name}.md`, import.meta.url);
}

/** `page` with the lines between the flag-table markers of `command` replaced by its table. */
export function withFlagTable(page: string, command: CommandSpec<Flags>): string {
  const start = `<!-- flags:${command.name} -->`;
  const end = `<!-- /flags:${command.name} -->`;
  const from = page.indexOf(start);
  const to = page.indexOf(end, from);
  if (from === -1 || to === -1) {
    throw new Error(`docs/${command.name}.md needs the lines ${start} and ${end}`);
  }
  // Blank lines around the table, as `deno fmt` writes them.
  return `${page.slice(0, from + start.length)}\n\n${flagTable(command)}\n\n${page.slice(to)}`;
}

if (import.meta.main) {
  const check = Deno.args.includes("--check");
  let stale = 0;
  for (const { spec } of await allCommands()) {
    const path = docsPage(spec.name);
    const page = await Deno.readTextFile(path);
    const updated = withFlagTable(page, spec);
    if (updated === page) continue;
    stale++;
    if (check) console.error(`docs/${spec.name}.md: the flag table differs from the declarations`);
    else await Deno.writeTextFile(path, updated);
  }
  if (check && stale > 0) Deno.exit(1);
  if (!check) console.log(`${stale} page${stale === 1 ? "" : "s"} rewritten`);
}
