/**
 * The docs' shell transcripts, run (in the manner of cram and trycmd): every fenced block of
 * README.md and docs/*.md that shows `$ command` lines followed by their output is either run
 * here, its output compared with what the block shows, or marked as one that cannot run here,
 * with why. A marker is an HTML comment before the block (blank lines between are fine):
 *
 * - `<!-- transcript: run -->` runs the block's commands one after the other;
 * - `<!-- transcript: run with serve ARGS -->` first starts `tcpecho serve ARGS` on a free
 *   port, which the block's `send` and `bench` commands then reach (their `--port` is rewritten);
 * - `<!-- transcript: skip: WHY -->` does not run it.
 *
 * Commands are `tcpecho ...`, `deno task serve|send ...` or `deno run ... main.ts ...`, run from a
 * temporary directory. Output is stdout then stderr; before comparing, port numbers, times and
 * peers' addresses become placeholders on both sides, so that the docs keep real-looking values.
 * A line `...` matches any number of lines; `(exit N)` at the end of a line checks the exit code,
 * which is otherwise 0, or not 0 when the output shows an `error:` line.
 */

import { deepEqual, equal, fail } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ServeProcess } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url);
const MAIN = fileURLToPath(new URL("main.ts", ROOT));

/** One fenced block with commands, where it is, and what its marker says. */
interface Transcript {
  where: string;
  marker?: string;
  lines: string[];
}

async function transcripts(): Promise<Transcript[]> {
  const pages = ["README.md"];
  for await (const entry of Deno.readDir(new URL("docs/", ROOT))) {
    if (entry.name.endsWith(".md")) pages.push(`docs/${entry.name}`);
  }
  const found: Transcript[] = [];
  for (const page of pages.sort()) {
    const lines = (await Deno.readTextFile(new URL(page, ROOT))).split("\n");
    for (let i = 0; i < lines.length; i++) {
      if (!/^```(sh|console|shell)?$/.test(lines[i])) {
        if (lines[i].startsWith("```")) i = lines.indexOf("```", i + 1);
        continue;
      }
      const end = lines.indexOf("```", i + 1);
      const body = lines.slice(i + 1, end);
      const showsOutput = body.some((line) => line.trim() !== "" && !line.startsWith("$ "));
      if (body.some((line) => line.startsWith("$ ")) && showsOutput) {
        let before = i - 1;
        while (lines[before]?.trim() === "") before--;
        const marker = lines[before]?.match(/^<!-- transcript: (.*) -->$/)?.[1];
        found.push({ where: `${page}:${i + 1}`, marker, lines: body });
      }
      i = end;
    }
  }
  return found;
}

/** The placeholders: what varies from run to run (ports, times, peers), on both sides. */
function normalize(text: string): string {
  return text
    .replace(/\d+\.\d{3}\/\d+\.\d{3}\/\d+\.\d{3}\/\d+\.\d{3}/g, "<RTT>")
    .replace(/\b\d+(\.\d+)? ?(ms|µs|s)\b/g, "<TIME>")
    .replace(/\b(port|PORT) \d+/g, "$1 <PORT>")
    .replace(/', \d+\)/g, "', <PORT>)")
    .replace(/(\d+\.\d+\.\d+\.\d+|localhost|\]):\d+/g, "$1:<PORT>")
    .replace(/\s+$/, "");
}

/** Expected lines match actual ones, `...` standing for any number of lines. */
function matches(expected: string[], actual: string[]): boolean {
  if (expected.length === 0) return actual.length === 0;
  if (expected[0] === "...") {
    for (let skip = 0; skip <= actual.length; skip++) {
      if (matches(expected.slice(1), actual.slice(skip))) return true;
    }
    return false;
  }
  return actual.length > 0 && expected[0] === actual[0] &&
    matches(expected.slice(1), actual.slice(1));
}

/** The tcpecho arguments of a doc's command line, or undefined for another program. */
function tcpechoArgs(command: string): string[] | undefined {
  const words = command.match(/"[^"]*"|'[^']*'|\S+/g) ?? [];
  const args = words.map((word) => word.replace(/^(["'])(.*)\1$/, "$2"));
  if (args[0] === "tcpecho") return args.slice(1);
  if (args[0] === "deno" && args[1] === "task" && ["serve", "send"].includes(args[2])) {
    return args.slice(2);
  }
  const main = args.indexOf("main.ts");
  if (args[0] === "deno" && args[1] === "run" && main > 0) return args.slice(main + 1);
  return undefined;
}

/** Points a client command at `port` (the server the marker started). */
function toServer(args: string[], port: number): string[] {
  if (!["send", "bench"].includes(args[0])) return args;
  const at = args.findIndex((arg) => arg === "--port" || arg === "-p");
  if (at < 0) return [...args, "--port", String(port)];
  return args.map((arg, i) => (i === at + 1 ? String(port) : arg));
}

async function run(transcript: Transcript, dir: string, port?: number): Promise<void> {
  const servers: ServeProcess[] = [];
  let expected: string[] = [];
  let args: string[] | undefined;
  let exitCode: number | undefined;
  let echoStatus = false;
  const check = async () => {
    if (args === undefined) return;
    const shown = `${transcript.where}: tcpecho ${args.join(" ")}`;
    const result = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--unstable-net",
        MAIN,
        ...(port === undefined ? args : toServer(args, port)),
      ],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000), // a backstop: a command that hangs fails its test
    }).output();
    const text = new TextDecoder().decode(result.stdout) + new TextDecoder().decode(result.stderr);
    const actual = text.split("\n").map(normalize);
    while (actual.at(-1) === "") actual.pop();
    if (echoStatus) actual.push(String(result.code));
    const wanted = expected.map(normalize);
    while (wanted.at(-1) === "") wanted.pop();
    if (!matches(wanted, actual)) {
      fail(
        `${shown}: the output differs\n--- shown\n${wanted.join("\n")}\n--- got\n${
          actual.join("\n")
        }`,
      );
    }
    if (echoStatus) return;
    // Without "(exit N)", an error line means a failure, any other output success.
    const failed = expected.some((line) => line.startsWith("error: "));
    if (exitCode !== undefined) equal(result.code, exitCode, `${shown}: exit code`);
    else equal(result.code !== 0, failed, `${shown}: exit code ${result.code}`);
  };
  try {
    for (const line of transcript.lines) {
      if (line.startsWith("$ ")) {
        await check();
        args = undefined;
        // `$ tcpecho serve ... &`: a server in the background for the commands after it.
        const background = line.match(/^\$ (.*) &$/)?.[1];
        if (background !== undefined) {
          const serveArgs = tcpechoArgs(background);
          if (serveArgs?.[0] !== "serve") fail(`${transcript.where}: cannot run '${line}'`);
          // On a free port: the doc's own port may be taken here.
          const free = serveArgs.slice(1).filter((arg, i, all) =>
            !["--port", "-p"].includes(arg) && !["--port", "-p"].includes(all[i - 1])
          );
          servers.push(await ServeProcess.start(free));
          port = servers.at(-1)!.port;
          continue;
        }
        const command = line.slice(2).replace(/\s+#.*$/, "");
        echoStatus = command.endsWith("; echo $?");
        args = tcpechoArgs(command.replace(/; echo \$\?$/, ""));
        if (args === undefined) fail(`${transcript.where}: cannot run '${line}': mark it skip`);
        expected = [];
        exitCode = undefined;
        continue;
      }
      const exit = line.match(/^(.*?)\s+\(exit (\d+)\)$/);
      if (exit) exitCode = Number(exit[2]);
      expected.push(exit ? exit[1] : line);
    }
    await check();
  } finally {
    for (const server of servers) await server.stop();
  }
}

const found = await transcripts();

Deno.test("every docs transcript that shows output is run or says why it cannot be", () => {
  const unmarked = found.filter((t) =>
    !/^(run( with serve( .*)?)?|skip: .+)$/.test(t.marker ?? "")
  );
  const where = unmarked.map((t) => t.where);
  deepEqual(where, [], `add <!-- transcript: run --> or skip: WHY before ${where.join(", ")}`);
});

for (const transcript of found.filter((t) => t.marker?.startsWith("run"))) {
  Deno.test(`docs transcript ${transcript.where} runs as shown`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "tcpecho-docs-" });
    try {
      const serveArgs = transcript.marker!.match(/^run with serve(.*)$/)?.[1];
      if (serveArgs === undefined) return await run(transcript, dir);
      await using server = await ServeProcess.start(tcpechoArgs(`tcpecho${serveArgs}`)!);
      await run(transcript, dir, server.port);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
