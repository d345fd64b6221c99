/**
 * `deno task bench:memory [ROUNDS] [BASELINE_DIR]`: what a command costs before it does any work.
 * Measures, alternating, ROUNDS times each (default 5):
 *
 * - the resident memory (VmRSS) of an idle `tcpecho serve --port 0`, against the plainest Deno
 *   echo loop (`denoloop.ts` from $TCPECHO_C_BENCH, default ../shared/bench) idle in the same run;
 * - the wall time of `tcpecho send` (start-up, one echo of one byte, exit) against that loop,
 *   against the wall time of `deno run` of an empty program.
 *
 * With BASELINE_DIR, another checkout of tcpecho (say `git worktree add /tmp/base 20ab39a`) is
 * measured in the same rounds. Prints medians and the ratios to the references (Linux only: it
 * reads `/proc`).
 *
 * @module
 */

import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DENOLOOP = `${Deno.env.get("TCPECHO_C_BENCH") ?? `${ROOT}../shared/bench`}/denoloop.ts`;
/** How long a server is left idle before its memory is read: start-up's garbage settles. */
const IDLE_MS = 2000;

/** Starts `args` under `deno run -A`, waits until it has been idle IDLE_MS, and reads its VmRSS. */
async function idleRss(args: string[], cwd: string): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    cwd,
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
    const kib = Number(status.match(/^VmRSS:\s+(\d+) kB$/m)?.[1]);
    if (!kib) throw new Error(`no VmRSS for deno run ${args.join(" ")}: did it exit?`);
    return kib / 1024;
  } finally {
    child.kill();
    await child.status;
  }
}

/** The wall time of `deno run -A ARGS` to its exit, in milliseconds; throws if it fails. */
async function runTime(args: string[], cwd: string): Promise<number> {
  const start = performance.now();
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    cwd,
    stdout: "null",
    stderr: "piped",
  }).output();
  const elapsed = performance.now() - start;
  if (code !== 0) {
    throw new Error(`deno run ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
  }
  return elapsed;
}

function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

if (import.meta.main) {
  const rounds = Number(Deno.args[0] ?? 5);
  const baseline = Deno.args[1];
  const checkouts: [string, string][] = [["this checkout", ROOT]];
  if (baseline) checkouts.push([`baseline ${baseline}`, baseline]);
  const empty = await Deno.makeTempFile({ suffix: ".ts" });
  const port = freePort();
  const echo = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", DENOLOOP, String(port)],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const samples = new Map<string, number[]>();
  const add = (key: string, value: number) => samples.set(key, [...samples.get(key) ?? [], value]);
  try {
    const send = ["main.ts", "send", "--host", `127.0.0.1:${port}`, "x"];
    await runTime(send, ROOT); // the first run fills Deno's caches
    for (let round = 1; round <= rounds; round++) {
      add("denoloop rss", await idleRss([DENOLOOP, "0"], ROOT));
      add("empty time", await runTime([empty], ROOT));
      for (const [name, dir] of checkouts) {
        add(`${name} rss`, await idleRss(["main.ts", "serve", "--port", "0"], dir));
        add(`${name} time`, await runTime(send, dir));
      }
      console.error(`round ${round} of ${rounds} done`);
    }
  } finally {
    echo.kill();
    await echo.status;
    await Deno.remove(empty);
  }
  const rss = median(samples.get("denoloop rss")!);
  const time = median(samples.get("empty time")!);
  console.log(`medians of ${rounds} alternating rounds, Deno ${Deno.version.deno}\n`);
  console.log(
    "| what | idle serve RSS | vs plain Deno loop | send wall time | vs empty deno run |",
  );
  console.log(
    "| ---- | -------------: | -----------------: | -------------: | ----------------: |",
  );
  console.log(`| references | ${rss.toFixed(1)} MiB | 1.00x | ${time.toFixed(0)} ms | 1.00x |`);
  for (const [name] of checkouts) {
    const own = median(samples.get(`${name} rss`)!);
    const took = median(samples.get(`${name} time`)!);
    console.log(
      `| ${name} | ${own.toFixed(1)} MiB | ${(own / rss).toFixed(2)}x | ${took.toFixed(0)} ms | ` +
        `${(took / time).toFixed(2)}x |`,
    );
  }
}
