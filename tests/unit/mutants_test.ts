import { deepEqual, equal } from "node:assert/strict";
import { MUTANTS } from "../../tools/mutants.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("every mutant of deno task mutate still applies to the code and names tests that exist", async () => {
  const stale: string[] = [];
  for (const mutant of MUTANTS) {
    const text = await Deno.readTextFile(`${ROOT}${mutant.file}`);
    const first = text.indexOf(mutant.from);
    if (first < 0 || text.indexOf(mutant.from, first + 1) >= 0) {
      stale.push(`${mutant.id}: its text is not in ${mutant.file} exactly once`);
    }
    for (const test of mutant.tests) {
      await Deno.stat(`${ROOT}${test}`).catch(() => stale.push(`${mutant.id}: no ${test}`));
    }
  }
  deepEqual(stale, []);
  equal(new Set(MUTANTS.map((mutant) => mutant.id)).size, MUTANTS.length, "mutant ids are unique");
});
