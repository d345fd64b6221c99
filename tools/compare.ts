/**
 * `deno task bench`: runs `tcpecho serve` and, where available, the C reference server `cecho`
 * and socat one after another on loopback, drives each with `tcpecho bench` over the same
 * scenarios, and prints a markdown table of ratios against the C reference from this one run.
 *
 * The C reference and the neutral C load generator `echoload` are built with gcc from
 * $TCPECHO_C_BENCH (default: ../shared/bench next to the project) when that directory exists;
 * with echoload, a second table checks that `tcpecho bench` is not the bottleneck, and a third
 * measures bench's open loop (`--rate`) and connection churn (`--reconnect 1`, against the neutral
 * C `connload`).
 *
 * usage: deno task bench [SECONDS per measurement, default 3]
 *
 * @module
 */

import { existsSync } from "node:fs";
import { freePort, hasProgram, residentBytes, waitUntilAccepting } from "./system.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MAIN = `${ROOT}main.ts`;
const C_SOURCES = Deno.env.get("TCPECHO_C_BENCH") ?? `${ROOT}../shared/bench`;
const C_BIN = `${Deno.env.get("TMPDIR") ?? "/tmp"}/tcpecho-bench`;
const seconds = Number(Deno.args[0] ?? 3);

interface Scenario {
  name: string;
  connections: number;
  size: number;
  window: number;
  /** The servers' read size for this scenario. */
  buffer: number;
  /** The figure the scenario is about. */
  metric: "p50" | "msgs_per_s" | "mib_per_s";
}

const SCENARIOS: Scenario[] = [
  { name: "1 conn x 16 B", connections: 1, size: 16, window: 1, buffer: 16, metric: "p50" },
  {
    name: "50 conns x 16 B",
    connections: 50,
    size: 16,
    window: 1,
    buffer: 16,
    metric: "msgs_per_s",
  },
  {
    name: "4 conns x 64 KiB, 4 in flight",
    connections: 4,
    size: 65536,
    window: 4,
    buffer: 65536,
    metric: "mib_per_s",
  },
  {
    name: "1 conn x 91 B",
    connections: 1,
    size: 91,
    window: 1,
    buffer: 65536,
    metric: "msgs_per_s",
  },
];

interface Server {
  name: string;
  /** The command line serving on `port` with `buffer` bytes per read. */
  command: (port: number, buffer: number) => string[];
  /** Only these scenarios (by index); default all. */
  only?: number[];
}

/** The figures one load run reports, as echoload and `tcpecho bench --json` both name them. */
interface Figures {
  msgs_per_s: number;
  mib_per_s: number;
  p50: number;
  errors: number;
}

const tcpecho = (extra: string[]) => (port: number, buffer: number) => [
  Deno.execPath(),
  "run",
  "--allow-net",
  MAIN,
  "serve",
  "--host",
  "127.0.0.1",
  "--port",
  String(port),
  "--buffer-size",
  String(buffer),
  ...extra,
];

async function main(): Promise<void> {
  const native = await buildNative();
  const servers: Server[] = [];
  if (native) {
    servers.push({ name: "cecho (C)", command: (p, b) => [native.cecho, `${p}`, `${b}`] });
  }
  servers.push({ name: "tcpecho serve --quiet", command: tcpecho(["--quiet"]) });
  servers.push({ name: "tcpecho serve, log to a pipe", command: tcpecho([]), only: [1] });
  if (hasProgram("socat")) {
    servers.push({
      name: "socat",
      command: (p) => ["socat", `TCP-LISTEN:${p},bind=127.0.0.1,reuseaddr,fork,nodelay`, "PIPE"],
    });
  }

  const results = new Map<string, (Figures | undefined)[]>();
  const loaderCheck: { bench: Figures; echoload: Figures }[] = [];
  for (const server of servers) {
    const row: (Figures | undefined)[] = [];
    for (const [index, scenario] of SCENARIOS.entries()) {
      if (server.only && !server.only.includes(index)) continue;
      row[index] = await withServer(server, scenario.buffer, async (port) => {
        const bench = await runBench(port, scenario);
        if (native && server === servers[0]) {
          loaderCheck[index] = {
            bench,
            echoload: await runEcholoader(native.echoload, port, scenario),
          };
        }
        return bench;
      });
      console.error(`${server.name}, ${scenario.name}: ${JSON.stringify(row[index])}`);
    }
    results.set(server.name, row);
  }
  console.log(describeMachine());
  console.log();
  printTable(servers, results, native !== undefined);
  if (loaderCheck.length > 0) printLoaderCheck(loaderCheck);
  if (native) await printModes(native);
  const memory = await idleMemory();
  if (memory !== undefined) {
    console.log(`\n1,000 idle connections cost \`tcpecho serve\` ${memory.toFixed(1)} MiB of RSS.`);
  }
}

function printTable(
  servers: Server[],
  results: Map<string, (Figures | undefined)[]>,
  hasReference: boolean,
): void {
  const reference = hasReference ? results.get(servers[0].name) : undefined;
  console.log(`| scenario (${seconds} s each) | ${servers.map((s) => s.name).join(" | ")} |`);
  console.log(`|---|${servers.map(() => "---:").join("|")}|`);
  for (const [index, scenario] of SCENARIOS.entries()) {
    const cells = servers.map((server) => {
      const figures = results.get(server.name)?.[index];
      if (!figures) return "";
      const errors = figures.errors > 0 ? ` (${figures.errors} errors)` : "";
      const base = reference?.[index];
      if (!base || server === servers[0]) return describe(figures, scenario.metric) + errors;
      return ratio(figures, base, scenario.metric) + errors;
    });
    console.log(`| ${scenario.name}, ${label(scenario.metric)} | ${cells.join(" | ")} |`);
  }
}

function printLoaderCheck(check: { bench: Figures; echoload: Figures }[]): void {
  console.log(
    "\n`tcpecho bench` against the neutral C load generator `echoload`, both on cecho:\n",
  );
  console.log("| scenario | echoload msgs/s | bench msgs/s | ratio | echoload p50 | bench p50 |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const [index, scenario] of SCENARIOS.entries()) {
    const entry = check[index];
    if (!entry) continue;
    const { bench, echoload } = entry;
    console.log(
      `| ${scenario.name} | ${whole(echoload.msgs_per_s)} | ${whole(bench.msgs_per_s)} | ` +
        `${(bench.msgs_per_s / echoload.msgs_per_s).toFixed(2)}x | ${echoload.p50} µs | ` +
        `${bench.p50} µs |`,
    );
  }
}

function label(metric: Scenario["metric"]): string {
  return { p50: "p50 latency", msgs_per_s: "msgs/s", mib_per_s: "MiB/s" }[metric];
}

function describe(figures: Figures, metric: Scenario["metric"]): string {
  switch (metric) {
    case "p50":
      return `${figures.p50} µs`;
    case "msgs_per_s":
      return whole(figures.msgs_per_s);
    case "mib_per_s":
      return figures.mib_per_s.toFixed(0);
  }
}

function ratio(figures: Figures, base: Figures, metric: Scenario["metric"]): string {
  const value = metric === "p50" ? figures.p50 : figures[metric];
  const reference = metric === "p50" ? base.p50 : base[metric];
  return `${(value / reference).toFixed(2)}x`;
}

function whole(value: number): string {
  return new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 }).format(value);
}

async function runBench(port: number, scenario: Scenario): Promise<Figures> {
  const report = await runBenchJson(port, [
    ...["-c", `${scenario.connections}`, "-s", `${scenario.size}`, "-w", `${scenario.window}`],
  ]);
  const errors = report.errors;
  return {
    msgs_per_s: report.msgs_per_s,
    mib_per_s: report.mib_per_s,
    p50: report.latency_us.p50,
    errors: errors.mismatches + errors.early_closes + errors.resets + errors.timeouts,
  };
}

async function runEcholoader(path: string, port: number, scenario: Scenario): Promise<Figures> {
  const text = await output([
    path,
    ...["-p", `${port}`, "-c", `${scenario.connections}`, "-s", `${scenario.size}`],
    ...["-w", `${scenario.window}`, "-d", String(seconds)],
  ]);
  const report = JSON.parse(text.trim().split("\n").pop()!);
  return {
    msgs_per_s: report.msgs_per_s,
    mib_per_s: report.mib_per_s,
    p50: report.p50_us,
    errors: report.errors + report.mismatches,
  };
}

/** Runs a command to its end and returns its standard output (it may exit 1 on echo errors). */
async function output(command: string[]): Promise<string> {
  const result = await new Deno.Command(command[0], {
    args: command.slice(1),
    stdout: "piped",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).output();
  return new TextDecoder().decode(result.stdout);
}

/** Starts `server` on a free port, waits until it accepts, runs `body`, then stops it. */
async function withServer<T>(
  server: Server,
  buffer: number,
  body: (port: number) => Promise<T>,
): Promise<T> {
  const port = freePort();
  const [program, ...args] = server.command(port, buffer);
  const child = new Deno.Command(program, { args, stdout: "piped", stderr: "null" }).spawn();
  // Read the log as fast as a pipe reader would, and drop it.
  const drained = child.stdout.pipeTo(new WritableStream());
  try {
    await waitUntilAccepting(port);
    return await body(port);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await drained.catch(() => {});
  }
}

/** The C reference server and the neutral C load generators, built. */
interface Native {
  cecho: string;
  echoload: string;
  connload: string;
}

/**
 * `tcpecho bench`'s open loop and connection churn against cecho: `--rate 20000` over 10
 * connections against its target, and `--reconnect 1 -c 50` (connect, 16 B echoed, close) against
 * the neutral C `connload` doing the same, in this run.
 */
async function printModes(native: Native): Promise<void> {
  const cecho: Server = { name: "cecho (C)", command: (p, b) => [native.cecho, `${p}`, `${b}`] };
  const rate = await withServer(
    cecho,
    65536,
    (port) => runBenchJson(port, ["--rate", "20000", "-c", "10"]),
  );
  const churn = await withServer(cecho, 65536, async (port) => ({
    bench: await runBenchJson(port, ["--reconnect", "1", "-c", "50"]),
    connload: JSON.parse(
      (await output([native.connload, "-p", `${port}`, "-c", "50", "-s", "16", "-d", `${seconds}`]))
        .trim().split("\n").pop()!,
    ),
  }));
  console.log("\n`tcpecho bench` modes against cecho:\n");
  console.log("| mode | tcpecho bench | reference | ratio |");
  console.log("|---|---:|---:|---:|");
  const kept = rate.rate?.kept_up ? "kept up" : "not kept up";
  console.log(
    `| \`--rate 20000 -c 10\`, msgs/s | ${whole(rate.msgs_per_s)} (${kept}) | 20,000 asked | ` +
      `${(rate.msgs_per_s / 20000).toFixed(3)}x |`,
  );
  console.log(
    `| \`--reconnect 1 -c 50\`, sessions/s | ${whole(churn.bench.msgs_per_s)} | ` +
      `${whole(churn.connload.sessions_per_s)} (connload) | ` +
      `${(churn.bench.msgs_per_s / churn.connload.sessions_per_s).toFixed(2)}x |`,
  );
}

/** Runs `tcpecho bench --json` with `args` for the run's seconds and returns its report. */
async function runBenchJson(port: number, args: string[]) {
  return JSON.parse(
    await output([
      Deno.execPath(),
      "run",
      "--allow-net",
      MAIN,
      "bench",
      ...["--host", "127.0.0.1", "--port", String(port), ...args],
      ...["--duration", String(seconds), "--json"],
    ]),
  );
}

/** Builds cecho and echoload with gcc when their sources are here; undefined otherwise. */
async function buildNative(): Promise<Native | undefined> {
  if (!existsSync(`${C_SOURCES}/cecho.c`) || !hasProgram("gcc")) return undefined;
  await Deno.mkdir(C_BIN, { recursive: true });
  for (const name of ["cecho", "echoload", "connload"]) {
    const source = `${C_SOURCES}/${name}.c`;
    const binary = `${C_BIN}/${name}`;
    const built = existsSync(binary) &&
      Deno.statSync(binary).mtime! >= Deno.statSync(source).mtime!;
    if (built) continue;
    const gcc = await new Deno.Command("gcc", { args: ["-O2", "-o", binary, source] }).output();
    if (!gcc.success) return undefined;
  }
  return { cecho: `${C_BIN}/cecho`, echoload: `${C_BIN}/echoload`, connload: `${C_BIN}/connload` };
}

/** RSS growth of an idle `tcpecho serve` holding 1,000 open connections, in MiB (Linux only). */
async function idleMemory(): Promise<number | undefined> {
  if (Deno.build.os !== "linux") return undefined;
  const port = freePort();
  const [program, ...args] = tcpecho(["--quiet"])(port, 16);
  const child = new Deno.Command(program, { args, stdout: "null", stderr: "null" }).spawn();
  const rss = () => residentBytes(child.pid) / (1024 * 1024);
  const conns: Deno.Conn[] = [];
  try {
    await waitUntilAccepting(port);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = rss();
    for (let i = 0; i < 1000; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    await new Promise((resolve) => setTimeout(resolve, 500));
    return rss() - before;
  } finally {
    for (const conn of conns) conn.close();
    child.kill("SIGKILL");
    await child.status;
  }
}

function describeMachine(): string {
  const cores = navigator.hardwareConcurrency;
  const load = Deno.loadavg().map((l) => l.toFixed(2)).join(", ");
  return `${cores}-core ${Deno.build.arch}, Deno ${Deno.version.deno}, load average ${load}`;
}

if (import.meta.main) await main();
