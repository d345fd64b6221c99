/**
 * `deno task mutate`: mutation testing with a list of small plausible bugs (`tools/mutants.ts`).
 * Each mutant is put into a copy of the tree, one at a time, and the test files that cover its
 * code run against it: a mutant the tests catch is killed, one they pass survives. A run that
 * outlives its time limit means a test hangs instead of failing, and is reported as such.
 *
 * usage: deno task mutate [ID...]   (no ID: every mutant of the list)
 *
 * Prints a markdown table and the score: killed / (mutants - equivalent). Not run in CI.
 *
 * @module
 */

import { type Mutant, MUTANTS } from "./mutants.ts";

const ROOT = new URL("../", import.meta.url).pathname;
/** A mutant's test run is stopped after this long: past the per-test backstop, it is a hang. */
const RUN_LIMIT_MS = 5 * 60_000;

/** One run of some test files. */
interface TestRun {
  outcome: "killed" | "survived" | "hung";
  seconds: number;
  /** The failing tests' names, as the runner lists them. */
  failed: string[];
  /** The first error the runner reported. */
  error?: string;
  output: string;
}

/** What one mutant came to: equivalent ones are not run. */
interface Result extends Omit<TestRun, "outcome" | "output"> {
  mutant: Mutant;
  outcome: TestRun["outcome"] | "equivalent";
}

/** Copies the files git knows about (tracked or new, not ignored) into a temporary directory. */
async function copyTree(): Promise<string> {
  const listed = await new Deno.Command("git", {
    args: ["ls-files", "--cached", "--others", "--exclude-standard", "-z"],
    cwd: ROOT,
    stdout: "piped",
  }).output();
  const copy = await Deno.makeTempDir({ prefix: "tcpecho-mutate-" });
  for (const path of new TextDecoder().decode(listed.stdout).split("\0").filter(Boolean)) {
    const target = `${copy}/${path}`;
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(`${ROOT}${path}`, target).catch(() => {/* deleted, not yet staged */});
  }
  return copy;
}

/** Runs `deno test` over `tests` in `dir`; its outcome and the names of the failed tests. */
async function runTests(
  dir: string,
  tests: string[],
): Promise<TestRun> {
  const started = performance.now();
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", "--preload", "tests/backstop.ts", ...tests],
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(RUN_LIMIT_MS),
  }).output();
  const seconds = (performance.now() - started) / 1000;
  const output = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
  const failures = output.split("\n FAILURES \n")[1] ?? "";
  const failed = [...failures.matchAll(/^(.+) => \S+$/gm)].map((match) => match[1]);
  const error = output.split("\n ERRORS \n")[1]?.match(/^error: (.+)$/m)?.[1];
  const outcome: TestRun["outcome"] = run.signal !== null
    ? "hung"
    : run.success
    ? "survived"
    : "killed";
  return { outcome, seconds, failed, error, output };
}

async function mutate(dir: string, mutant: Mutant): Promise<Result> {
  if (mutant.equivalent) return { mutant, outcome: "equivalent", seconds: 0, failed: [] };
  const path = `${dir}/${mutant.file}`;
  const original = await Deno.readTextFile(path);
  const at = original.indexOf(mutant.from);
  if (at < 0 || original.indexOf(mutant.from, at + 1) >= 0) {
    throw new Error(
      `mutant ${mutant.id}: the text to replace is not in ${mutant.file} exactly once`,
    );
  }
  await Deno.writeTextFile(path, original.replace(mutant.from, mutant.to));
  try {
    const run = await runTests(dir, mutant.tests);
    // A mutant that does not compile proves nothing about the tests.
    if (run.output.includes("Type checking failed")) {
      throw new Error(`mutant ${mutant.id} does not type-check: fix it in tools/mutants.ts`);
    }
    return { mutant, ...run };
  } finally {
    await Deno.writeTextFile(path, original);
  }
}

function report(results: Result[]): string {
  const rows = results.map(({ mutant, outcome, seconds, failed }) =>
    `| ${mutant.id} | \`${mutant.file}\` | ${mutant.bug} | ${outcome} | ${seconds.toFixed(0)} | ${
      outcome === "equivalent" ? mutant.equivalent : failed.slice(0, 2).join("; ")
    } |`
  );
  const counted = results.filter((result) => result.outcome !== "equivalent");
  const killed = counted.filter((result) => result.outcome === "killed").length;
  const hung = counted.filter((result) => result.outcome === "hung").length;
  const score = counted.length === 0 ? 0 : (100 * killed) / counted.length;
  return [
    "| mutant | file | bug | outcome | s | caught by / why equivalent |",
    "|---|---|---|---|---:|---|",
    ...rows,
    "",
    `score: ${killed} of ${counted.length} killed (${score.toFixed(0)} %), ${hung} hung, ` +
    `${results.length - counted.length} equivalent`,
  ].join("\n");
}

/** Runs the chosen mutants (all without `ids`) in a copy of the tree; returns the exit code. */
async function main(ids: string[]): Promise<number> {
  const unknown = ids.filter((id) => !MUTANTS.some((mutant) => mutant.id === id));
  if (unknown.length > 0) {
    console.error(`error: no mutant named ${unknown.join(", ")} in tools/mutants.ts`);
    return 2;
  }
  const chosen = ids.length === 0 ? MUTANTS : MUTANTS.filter((mutant) => ids.includes(mutant.id));
  const dir = await copyTree();
  // Ctrl-C stops the run and still removes the copy.
  Deno.addSignalListener("SIGINT", () => {
    Deno.removeSync(dir, { recursive: true });
    Deno.exit(130);
  });
  try {
    const baseline = await runTests(dir, [...new Set(chosen.flatMap((mutant) => mutant.tests))]);
    if (baseline.outcome !== "survived") {
      console.error(baseline.output.split("\n").slice(-40).join("\n"));
      console.error("error: the tests fail without any mutant");
      return 1;
    }
    console.error(`baseline: the tests pass in ${baseline.seconds.toFixed(0)} s`);
    const results: Result[] = [];
    for (const mutant of chosen) {
      const result = await mutate(dir, mutant);
      console.error(
        `${mutant.id}: ${result.outcome} (${result.seconds.toFixed(0)} s)` +
          (result.error ? `: ${result.error}` : ""),
      );
      results.push(result);
    }
    console.log(report(results));
    return 0;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
