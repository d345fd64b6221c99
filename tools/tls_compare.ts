/**
 * `deno task bench:tls`: TLS against plain TCP and against the plainest `Deno.listenTls` echo
 * loop, in one run. Starts, one after another on loopback, `tcpecho serve` over plain TCP,
 * `tcpecho serve` over TLS (a socket it owns, TCP_NODELAY set) and `denotls.ts` from
 * $TCPECHO_C_BENCH (default ../shared/bench: `Deno.listenTls`, which cannot set TCP_NODELAY), all
 * with the default 16-byte buffer, drives each with `tcpecho bench` (1 connection x 91 B: p50;
 * 50 connections x 16 B: msgs/s), and prints the medians of ROUNDS rounds as ratios.
 *
 * usage: deno task bench:tls [SECONDS per measurement, default 3] [ROUNDS, default 3]
 *
 * @module
 */

import { existsSync } from "node:fs";
import { makeSelfSignedCertificates } from "../lib/net/self_signed.ts";
import { waitUntilAccepting } from "./system.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MAIN = `${ROOT}main.ts`;
const DENOTLS = `${Deno.env.get("TCPECHO_C_BENCH") ?? `${ROOT}../shared/bench`}/denotls.ts`;
const seconds = Number(Deno.args[0] ?? 3);
const rounds = Number(Deno.args[1] ?? 3);

interface Server {
  name: string;
  tls: boolean;
  command: (port: number, cert: string, key: string) => string[];
}

const SERVERS: Server[] = [
  {
    name: "tcpecho serve, plain TCP",
    tls: false,
    command: (port) => ["run", "-A", MAIN, "serve", "-q", "--host", "127.0.0.1", "-p", `${port}`],
  },
  {
    name: "tcpecho serve, TLS",
    tls: true,
    command: (port, cert, key) => [
      ...["run", "-A", MAIN, "serve", "-q", "--host", "127.0.0.1", "-p", `${port}`],
      ...["--tls-cert", cert, "--tls-key", key],
    ],
  },
  ...(existsSync(DENOTLS)
    ? [{
      name: "Deno.listenTls loop (denotls.ts)",
      tls: true,
      command: (port: number, cert: string, key: string) => [
        ...["run", "-A", DENOTLS, `${port}`, cert, key, "16"],
      ],
    }]
    : []),
];

const SCENARIOS = [
  { name: "1 conn x 91 B, p50", args: ["-c", "1", "-s", "91"], metric: "p50" },
  { name: "50 conns x 16 B, msgs/s", args: ["-c", "50", "-s", "16"], metric: "msgs_per_s" },
] as const;

async function measure(server: Server, files: { ca: string; cert: string; key: string }) {
  const port = 20000 + Math.floor(Math.random() * 10000);
  const child = new Deno.Command("deno", {
    args: server.command(port, files.cert, files.key),
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    // Deno starting up on a busy machine can take seconds.
    await waitUntilAccepting(port, 500);
    const figures: number[] = [];
    for (const scenario of SCENARIOS) {
      const tls = server.tls ? ["--tls", "--ca", files.ca] : [];
      const { stdout } = await new Deno.Command("deno", {
        args: [
          ...["run", "-A", MAIN, "bench", "--host", "127.0.0.1", "-p", `${port}`],
          ...tls,
          ...scenario.args,
          ...["-d", `${seconds}`, "--json"],
        ],
        stderr: "inherit",
      }).output();
      const report = JSON.parse(new TextDecoder().decode(stdout));
      figures.push(
        scenario.metric === "p50" ? report.latency_us.p50 : report.msgs_per_s,
      );
    }
    return figures;
  } finally {
    child.kill();
    await child.status;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

if (!existsSync(DENOTLS)) {
  console.error(`${DENOTLS} not found: set TCPECHO_C_BENCH to the directory that holds it`);
}
const dir = await Deno.makeTempDir({ prefix: "tcpecho-tls-bench-" });
try {
  const made = await makeSelfSignedCertificates({ names: ["127.0.0.1"] });
  const files = { ca: `${dir}/ca.pem`, cert: `${dir}/cert.pem`, key: `${dir}/key.pem` };
  await Deno.writeTextFile(files.ca, made.caCert);
  await Deno.writeTextFile(files.cert, made.cert);
  await Deno.writeTextFile(files.key, made.key);
  const results = SERVERS.map(() => SCENARIOS.map(() => [] as number[]));
  const load = [Deno.loadavg()[0]];
  // Servers take turns within each round, so that a change in the machine's load hits them all.
  for (let round = 0; round < rounds; round++) {
    for (const [index, server] of SERVERS.entries()) {
      const figures = await measure(server, files);
      figures.forEach((figure, scenario) => results[index][scenario].push(figure));
    }
  }
  load.push(Deno.loadavg()[0]);
  const medians = results.map((scenarios) => scenarios.map(median));
  const [plain, ours, reference] = medians;
  console.log(`| server | ${SCENARIOS.map((s) => s.name).join(" | ")} |`);
  console.log(`|---|${SCENARIOS.map(() => "---:").join("|")}|`);
  for (const [index, server] of SERVERS.entries()) {
    console.log(
      `| ${server.name} | ${medians[index].map((v) => v.toLocaleString("en-US")).join(" | ")} |`,
    );
  }
  console.log();
  console.log(
    `TLS p50 / plain TCP p50 (1 x 91 B): ${(ours[0] / plain[0]).toFixed(2)}x (target <= 2)`,
  );
  if (reference) {
    console.log(
      `TLS msgs/s / Deno.listenTls msgs/s (50 x 16 B): ${(ours[1] / reference[1]).toFixed(2)}x ` +
        "(target >= 0.7)",
    );
    console.log(
      `Deno.listenTls p50 / plain TCP p50 (1 x 91 B): ${(reference[0] / plain[0]).toFixed(0)}x`,
    );
  }
  console.log(
    `medians of ${rounds} rounds of ${seconds} s; load average ${load[0].toFixed(2)} before, ` +
      `${load[1].toFixed(2)} after`,
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
