/**
 * How soon a change of the control API reaches busy open connections: runs `tcpecho serve
 * --control` under 50 connections x 16 B from the C load generator `echoload`, then, ROUNDS times,
 * sets a 1 ms delay on every open connection (`"scope": "all"`) or clears it, and polls
 * `GET /connections` until all 50 run with the change. Prints the milliseconds from the request to
 * the last connection's hand-over (the polling included), and the median and maximum.
 *
 * `echoload` is built with gcc from $TCPECHO_C_BENCH (default: ../shared/bench next to the
 * project) into $TMPDIR/tcpecho-bench, as tools/ab_serve.sh does.
 *
 * usage: deno task bench:control [ROUNDS, default 10]
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url).pathname;
const C_SOURCES = Deno.env.get("TCPECHO_C_BENCH") ?? `${ROOT}../shared/bench`;
const C_BIN = `${Deno.env.get("TMPDIR") ?? "/tmp"}/tcpecho-bench`;
const ROUNDS = Number(Deno.args[0] ?? 10);
const CONNECTIONS = 50;

const echoload = `${C_BIN}/echoload`;
await Deno.mkdir(C_BIN, { recursive: true });
const built = await new Deno.Command("gcc", {
  args: ["-O2", "-o", echoload, `${C_SOURCES}/echoload.c`],
}).output();
if (!built.success) throw new Error("cannot build echoload");

const server = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", `${ROOT}main.ts`, "serve", "--host", "127.0.0.1", "--port", "0"]
    .concat(["--control", "0", "--quiet"]),
  stdout: "piped",
}).spawn();
const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
let started = "";
while (!/control API at/.test(started)) started += (await lines.read()).value ?? "";
const port = started.match(/port (\d+)/)![1];
const api = started.match(/http:\/\/[^/]+/)![0];
const load = new Deno.Command(echoload, {
  args: ["-p", port, "-c", String(CONNECTIONS), "-s", "16", "-w", "1", "-d", String(ROUNDS + 5)],
  stdout: "null",
  stderr: "null",
}).spawn();

/** Resolves once `GET /connections` lists every connection, each with faults or each without. */
async function allHave(faulted: boolean): Promise<void> {
  for (;;) {
    const { connections } = await (await fetch(`${api}/connections`)).json();
    if (
      connections.length === CONNECTIONS &&
      connections.every((c: { faults: string[] }) => (c.faults.length > 0) === faulted)
    ) return;
  }
}

try {
  await allHave(false);
  const times: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const set = round % 2 === 0;
    const begin = performance.now();
    const response = set
      ? await fetch(`${api}/faults`, {
        method: "PUT",
        body: JSON.stringify({ delay: "1ms", scope: "all" }),
      })
      : await fetch(`${api}/faults?scope=all`, { method: "DELETE" });
    await response.body?.cancel();
    await allHave(set);
    times.push(performance.now() - begin);
  }
  const sorted = times.toSorted((a, b) => a - b);
  console.log(`ms until all ${CONNECTIONS} busy connections had the change:`);
  console.log(times.map((ms) => ms.toFixed(1)).join(" "));
  console.log(
    `median ${sorted[Math.floor(sorted.length / 2)].toFixed(1)}, max ${sorted.at(-1)!.toFixed(1)}`,
  );
} finally {
  load.kill();
  await load.status;
  server.kill();
  await server.status;
}
