/**
 * tcpecho: a TCP echo server, client and load generator. This file only dispatches: it picks the
 * subcommand, runs it, and turns any error into one `error: ...` line and an exit code.
 *
 * @module
 */

import { styleText } from "node:util";
import config from "./deno.json" with { type: "json" };
import type { CommandSpec, Flags } from "./cli/flags.ts";
import { renderHelp } from "./cli/help.ts";
import { ExitCode } from "./cli/exit_codes.ts";
import { InterruptedError, RuntimeError, UsageError } from "./lib/base/errors.ts";
import { OutputError, printLine } from "./cli/output.ts";
import { isWorker, runServeWorker } from "./cli/serve_worker.ts";

/** A command: its declaration (flags, help) and what runs it. */
export interface Command {
  spec: CommandSpec<Flags>;
  run: (args: string[]) => Promise<number>;
}

/**
 * Each command, loaded only when it is chosen: a command brings the modules it uses, and the
 * others must not pay for them in memory or start-up time.
 */
export const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => {
    const { SERVE, serve } = await import("./server.ts");
    return { spec: SERVE, run: serve };
  },
  send: async () => {
    const { SEND, send } = await import("./client.ts");
    return { spec: SEND, run: send };
  },
  bench: async () => {
    const { BENCH, bench } = await import("./bench.ts");
    return { spec: BENCH, run: bench };
  },
  ctl: async () => {
    const { CTL, ctl } = await import("./ctl.ts");
    return { spec: CTL, run: ctl };
  },
};

/** Every command, loaded: for the help and the docs, which name them all. */
export async function allCommands(): Promise<Command[]> {
  return await Promise.all(Object.values(COMMANDS).map((load) => load()));
}

/** The help text of `tcpecho` itself. */
export async function help(): Promise<string> {
  return `tcpecho ${config.version}: a known-good TCP echo server and client

Usage: tcpecho <command> [options]

Commands:
${await commandList()}

Options:
  -h, --help       show this help (tcpecho <command> --help for a command's own)
  -V, --version    show the version

Exit codes: 0 success, 1 runtime failure, 2 usage error, 70 internal error (a bug),
99 a bench threshold failed (--assert), 130 interrupted.`;
}

async function commandList(): Promise<string> {
  return (await allCommands()).map(({ spec }) => `  ${spec.name.padEnd(9)}${spec.summary}`)
    .join("\n");
}

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === "-h" || command === "--help") {
    printLine(await help());
    return 0;
  }
  if (command === "-V" || command === "--version") {
    printLine(`tcpecho ${config.version}`);
    return 0;
  }
  if (command === "help") {
    if (rest[0] === undefined) {
      printLine(await help());
      return 0;
    }
    const topic = commandNamed(rest[0]);
    if (!topic) throw unknownCommand(rest[0]);
    printLine(renderHelp((await topic()).spec));
    return 0;
  }
  const load = commandNamed(command);
  if (!load && command.startsWith("-")) {
    throw new UsageError(`unknown flag ${command}: a command comes first (see 'tcpecho --help')`);
  }
  if (!load) throw unknownCommand(command);
  return await (await load()).run(rest);
}

function commandNamed(name: string): (() => Promise<Command>) | undefined {
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}

function unknownCommand(name: string): UsageError {
  const names = Object.keys(COMMANDS);
  const expected = `${names.slice(0, -1).join(", ")} or ${names.at(-1)}`;
  return new UsageError(`unknown command '${name}': expected ${expected} (see 'tcpecho --help')`);
}

/**
 * Prints `err` on standard error and returns the exit code. An expected failure is one
 * `error: ...` line: 2 for a usage error, 1 for the rest. Anything else is a bug, and says so:
 * `error: internal error: MESSAGE`, exit 70, with its stack when `TCPECHO_DEBUG=1`.
 */
export function reportError(err: unknown): number {
  const label = Deno.noColor || !Deno.stderr.isTerminal() ? "error:" : styleText("red", "error:");
  const message = err instanceof Error ? err.message : String(err);
  // The reader of standard output went away: like cat, stop without a word no one would read.
  if (err instanceof OutputError && err.closed) return ExitCode.failure;
  if (!isBug(err)) {
    console.error(`${label} ${message.split("\n")[0]}`);
    if (err instanceof UsageError) return ExitCode.usage;
    return err instanceof InterruptedError ? ExitCode.interrupted : ExitCode.failure;
  }
  console.error(`${label} internal error: ${message.split("\n")[0]}`);
  if (debugging()) {
    console.error(err instanceof Error && err.stack ? err.stack : String(err));
  } else {
    console.error(
      "this is a bug in tcpecho: TCPECHO_DEBUG=1 (with deno --allow-env) shows where it happened",
    );
  }
  return ExitCode.internal;
}

/**
 * A failure the code did not expect: what JavaScript throws for a programming error, or a thrown
 * value that is not an `Error`. Errors from the network, the files and the checks are expected.
 */
function isBug(err: unknown): boolean {
  if (err instanceof UsageError || err instanceof RuntimeError) return false;
  return !(err instanceof Error) || err instanceof TypeError || err instanceof RangeError ||
    err instanceof ReferenceError || err instanceof SyntaxError || err instanceof URIError ||
    err instanceof EvalError;
}

function debugging(): boolean {
  const permission = Deno.permissions.querySync({ name: "env", variable: "TCPECHO_DEBUG" });
  return permission.state === "granted" && Deno.env.get("TCPECHO_DEBUG") === "1";
}

/** Prints `err` and exits with its code. */
function fail(err: unknown): never {
  Deno.exit(reportError(err));
}

if (import.meta.main && isWorker()) {
  // `serve --workers N` runs this same program in each worker.
  runServeWorker();
} else if (import.meta.main) {
  // A failure in a connection's own task must still end as one line, never a stack trace.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    fail(event.reason);
  });
  try {
    // Exit now: a read of standard input may still be pending, and nothing else matters.
    Deno.exit(await main(Deno.args));
  } catch (err) {
    fail(err);
  }
}
