/**
 * `deno task bench:metrics`: what `serve --metrics` costs the echo path. Runs `tcpecho serve
 * --quiet` without and with `--metrics`, alternating, for several rounds, and drives each with the
 * neutral C load generator `echoload` at 50 connections x 16 B; prints msgs/s and the server's CPU
 * time per message for each, and the ratios of the medians (with / without) from this one run.
 *
 * It runs with -A: Deno reads a process's CPU time in /proc only with all permissions.
 * `echoload` is built with gcc from $TCPECHO_C_BENCH (default: ../shared/bench next to the
 * project) into $TMPDIR/tcpecho-bench.
 *
 * usage: deno task bench:metrics [SECONDS per measurement, default 3] [ROUNDS, default 5]
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url).pathname;
const C_SOURCES = Deno.env.get("TCPECHO_C_BENCH") ?? `${ROOT}../shared/bench`;
const C_BIN = `${Deno.env.get("TMPDIR") ?? "/tmp"}/tcpecho-bench`;
const seconds = Number(Deno.args[0] ?? 3);
const rounds = Number(Deno.args[1] ?? 5);
const TICKS_PER_SECOND = 100;

interface Measurement {
  msgsPerSecond: number;
  cpuMicrosPerMessage: number;
}

async function run(program: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(program, { args, stderr: "inherit" }).output();
  if (!output.success) throw new Error(`${program} ${args.join(" ")} failed`);
  return new TextDecoder().decode(output.stdout);
}

async function echoload(): Promise<string> {
  const binary = `${C_BIN}/echoload`;
  await Deno.mkdir(C_BIN, { recursive: true });
  await run("gcc", ["-O2", "-o", binary, `${C_SOURCES}/echoload.c`]);
  return binary;
}

/** User plus system CPU time of process `pid`, in clock ticks. */
function cpuTicks(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

async function measure(load: string, extra: string[]): Promise<Measurement> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "serve", "--port", "0", "--quiet", ...extra],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let port: string | undefined;
  while (port === undefined) {
    const { value, done } = await lines.read();
    if (done) throw new Error("serve did not start");
    text += value;
    port = text.match(/port (\d+)/)?.[1];
  }
  const draining = (async () => {
    while (!(await lines.read()).done) { /* discard */ }
  })();
  try {
    const before = cpuTicks(child.pid);
    const out = await run(load, [
      "-p",
      port,
      "-c",
      "50",
      "-s",
      "16",
      "-w",
      "1",
      "-d",
      `${seconds}`,
    ]);
    const after = cpuTicks(child.pid);
    const result = JSON.parse(out.trim().split("\n").at(-1)!);
    if (result.errors || result.mismatches) throw new Error(`echoload saw errors: ${out}`);
    return {
      msgsPerSecond: result.msgs_per_s,
      cpuMicrosPerMessage: ((after - before) / TICKS_PER_SECOND) * 1e6 / result.msgs,
    };
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await draining;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const load = await echoload();
const variants = { without: [] as string[], with: ["--metrics", "127.0.0.1:0"] };
const results: Record<keyof typeof variants, Measurement[]> = { without: [], with: [] };
console.log("round  metrics   msgs/s  cpu µs/msg");
for (let round = 1; round <= rounds; round++) {
  for (const [name, extra] of Object.entries(variants) as [keyof typeof variants, string[]][]) {
    const m = await measure(load, extra);
    results[name].push(m);
    console.log(
      `${String(round).padStart(5)}  ${name.padEnd(7)} ${m.msgsPerSecond.toFixed(0).padStart(8)}` +
        `  ${m.cpuMicrosPerMessage.toFixed(2).padStart(10)}`,
    );
  }
}
const summary = (name: keyof typeof variants) => ({
  msgs: median(results[name].map((m) => m.msgsPerSecond)),
  cpu: median(results[name].map((m) => m.cpuMicrosPerMessage)),
});
const without = summary("without");
const withMetrics = summary("with");
console.log(
  `medians: ${without.msgs.toFixed(0)} msgs/s without, ${withMetrics.msgs.toFixed(0)} with ` +
    `(${(withMetrics.msgs / without.msgs).toFixed(3)}x); CPU per message ` +
    `${(withMetrics.cpu / without.cpu).toFixed(3)}x; load average ${
      Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ")
    }`,
);
