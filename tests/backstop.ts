/**
 * The per-test backstop, loaded before every test module (`deno test --preload tests/backstop.ts`
 * in the tasks, and by `tests/helpers.ts` for a test file run on its own):
 *
 * - every test that sets no `timeout` of its own gets {@linkcode TEST_MS}, after which Deno fails
 *   it by name (an await that never settles and a hot loop alike);
 * - every process a test spawned and left running is killed when the test ends, so that a failed
 *   or timed-out test cannot stall the run or the tests after it;
 * - a skipped test must say why at the end of its name (`... (skipped: python3 is not installed)`).
 *
 * The deadlines of single waits (`deadline.ts`) say what a test waited for; this one catches
 * whatever still slips through them.
 *
 * @module
 */

/**
 * Milliseconds a test may run unless it sets `timeout` itself: ten times the slowest test of the
 * suite on a busy two-core machine. `TCPECHO_TEST_MS` overrides it.
 */
export const TEST_MS = Number(env("TCPECHO_TEST_MS") ?? 60_000);

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: the default
  }
}

type TestArgs = Parameters<typeof Deno.test>;

/**
 * The same registration with `timeout: TEST_MS` added where the test gave none; throws when a
 * skipped test does not say why in its name.
 */
function withDeadline(args: unknown[], ignored = false): TestArgs {
  const [first, second, ...rest] = args;
  const named = [first, second].find((arg): arg is { name?: string; ignore?: boolean } =>
    typeof arg === "object" && arg !== null
  );
  const name = typeof first === "string"
    ? first
    : named?.name ?? (typeof first === "function" ? first.name : undefined);
  if ((ignored || named?.ignore === true) && !/\(skipped: .+\)$/.test(name ?? "")) {
    throw new Error(
      `test '${name}' is skipped without saying why: end its name with (skipped: WHY)`,
    );
  }
  const fallback = { timeout: TEST_MS };
  // Deno.test(definition) and Deno.test(options, fn)
  if (typeof first === "object" && first !== null) {
    return [{ ...fallback, ...first }, second, ...rest] as unknown as TestArgs;
  }
  // Deno.test(name, options, fn)
  if (typeof second === "object" && second !== null) {
    return [first, { ...fallback, ...second }, ...rest] as unknown as TestArgs;
  }
  // Deno.test(name, fn)
  if (typeof first === "string") return [first, fallback, second] as unknown as TestArgs;
  // Deno.test(fn)
  return [fallback, first] as unknown as TestArgs;
}

const test = Deno.test;
const wrapped = Object.assign(
  (...args: unknown[]) => test(...withDeadline(args)),
  test,
  {
    only: (...args: unknown[]) => test.only(...withDeadline(args)),
    ignore: (...args: unknown[]) => test.ignore(...withDeadline(args, true)),
  },
);
Object.defineProperty(Deno, "test", { value: wrapped, writable: true, configurable: true });

// Processes spawned while a test runs; those still running when it ends are killed.
let running: Set<Deno.ChildProcess> | undefined;
const spawn = Deno.Command.prototype.spawn;
Deno.Command.prototype.spawn = function (this: Deno.Command): Deno.ChildProcess {
  const child = spawn.call(this);
  const started = running;
  if (started) {
    started.add(child);
    child.status.finally(() => started.delete(child));
  }
  return child;
};
test.beforeEach(() => {
  running = new Set();
});
test.afterEach(() => {
  for (const child of running ?? []) {
    try {
      child.kill("SIGKILL");
    } catch { /* it ended meanwhile */ }
  }
  running = undefined;
});
