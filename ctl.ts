/**
 * `tcpecho ctl`: the control API of a running `serve --control` from the command line. Each call
 * is one HTTP request and prints one line (one per connection for `connections`), or the API's
 * own JSON answer with `--json`.
 *
 * @module
 */

import { anyText } from "./cli/args.ts";
import { type Command, command, option, parseCommand, toggle } from "./cli/flags.ts";
import { renderHelp } from "./cli/help.ts";
import { printLine } from "./cli/output.ts";
import { readTextInput } from "./cli/read_input.ts";
import { errorReason, RuntimeError, UsageError } from "./lib/base/errors.ts";
import { bytes } from "./lib/base/format.ts";

/** `tcpecho ctl`: what it does and the flags it takes. */
export const CTL = command({
  name: "ctl",
  summary: "change a running server's faults, readiness, limits and connections",
  description: `Talk to the control API of a running 'tcpecho serve --control HOST:PORT'
(see docs/control.md). ACTION is one of the following.

faults: show the faults new connections get.

faults set NAME=VALUE ...: replace them, by the fault flags' names and units (delay=50ms
jitter=10ms); scope=all reaches open connections too, count=N the next N connections only,
for=30s undoes the change after 30 s.

faults add NAME=VALUE ...: merge into them (NAME=off removes one). faults clear [scope=all]:
remove every fault.

ready [true|false]: show or set what /readyz reports.

limits [max-connections=N] [idle-timeout=S]: show or change the limits (off removes one).

connections: list the open connections, one a line.

close [--reset] [--peer PEER]: close every open connection (FIN), or reset it (RST).`,
  arguments: [
    { name: "URL", usage: "URL", help: "the control API: http://HOST:PORT, HOST:PORT or a port" },
    { name: "ACTION", usage: "ACTION", help: "what to do: see above" },
    {
      name: "ARG",
      usage: "[ARG ...]",
      help: "the action's words: set, add or clear; NAME=VALUE; true or false",
      repeatable: true,
    },
  ],
  flags: {
    json: toggle({ help: "print the API's JSON answer, one line, instead of the summary" }),
    "token-file": option({
      value: "FILE",
      help: "send the bearer token in FILE (its first line), for serve --control-token-file",
      absent: "none",
      parse: anyText,
    }),
    reset: toggle({ help: "with close: reset the connections (RST) instead of closing them" }),
    peer: option({
      value: "PEER",
      help: "with close: only the connections from PEER, a host or HOST:PORT",
      absent: "every connection",
      parse: anyText,
    }),
  },
  examples: [
    "tcpecho ctl 9000 faults set delay=50ms jitter=10ms scope=all",
    "tcpecho ctl 9000 faults add reset-after=1KiB count=1",
    "tcpecho ctl 9000 faults set delay=200ms for=5s",
    "tcpecho ctl 9000 faults clear scope=all",
    "tcpecho ctl 9000 ready false",
    "tcpecho ctl 9000 limits max-connections=100 idle-timeout=30s",
    "tcpecho ctl 9000 connections --json",
    "tcpecho ctl http://127.0.0.1:9000 close --reset",
  ],
});

type CtlFlags = typeof CTL extends Command<infer F> ? F : never;
type Values = ReturnType<typeof parseCommand<CtlFlags>>["flags"];

/** One request of the API, and how its answer is printed. */
interface Call {
  method: string;
  path: string;
  body?: unknown;
  summary(answer: Record<string, unknown>): string;
}

/** Runs `tcpecho ctl` with `args`; returns the exit code. */
export async function ctl(args: string[]): Promise<number> {
  const { flags, positionals } = parseCommand(CTL, args);
  if (flags.help) {
    printLine(renderHelp(CTL));
    return 0;
  }
  const [url, action, ...words] = positionals;
  if (url === undefined || action === undefined) {
    throw new UsageError("give the control API's URL and an action (see 'tcpecho ctl --help')");
  }
  const call = callOf(action, words, flags);
  const token = flags["token-file"] === undefined
    ? undefined
    : (await readTextInput(flags["token-file"], "the control token")).split(/\r?\n/)[0].trim();
  const answer = await request(baseUrl(url), call, token);
  printLine(flags.json ? JSON.stringify(answer) : call.summary(answer));
  return 0;
}

/** The request an action makes. */
function callOf(action: string, words: string[], flags: Values): Call {
  const servers = (answer: Record<string, unknown>) =>
    answer.servers === 1 ? "" : ` (${answer.servers} servers)`;
  const faults = (answer: Record<string, unknown>) =>
    `faults: ${answer.description}${servers(answer)}`;
  if (action !== "close" && (flags.reset || flags.peer !== undefined)) {
    throw new UsageError("--reset and --peer go with close (see 'tcpecho ctl --help')");
  }
  switch (action) {
    case "faults": {
      const [verb, ...pairs] = words;
      if (verb === undefined) return { method: "GET", path: "/faults", summary: faults };
      if (verb === "set" || verb === "add") {
        if (pairs.length === 0) throw new UsageError(`faults ${verb} needs NAME=VALUE words`);
        const method = verb === "set" ? "PUT" : "PATCH";
        return { method, path: "/faults", body: namedValues(pairs), summary: faults };
      }
      if (verb === "clear") {
        const { scope, ...rest } = namedValues(pairs);
        if (Object.keys(rest).length > 0) throw new UsageError("faults clear takes scope=all only");
        const query = scope === undefined ? "" : `?scope=${encodeURIComponent(String(scope))}`;
        return { method: "DELETE", path: `/faults${query}`, summary: faults };
      }
      throw new UsageError(`faults takes set, add or clear, not '${verb}'`);
    }
    case "ready": {
      const summary = (answer: Record<string, unknown>) =>
        `ready: ${answer.ready}${servers(answer)}`;
      if (words.length === 0) return { method: "GET", path: "/ready", summary };
      if (words.length > 1 || (words[0] !== "true" && words[0] !== "false")) {
        throw new UsageError(`ready takes true or false, not '${words.join(" ")}'`);
      }
      return { method: "PUT", path: "/ready", body: words[0] === "true", summary };
    }
    case "limits": {
      const summary = (answer: Record<string, unknown>) =>
        `limits: ${
          Object.entries(answer.limits as Record<string, unknown>)
            .map(([name, value]) => `${name} ${value ?? "none"}`).join(", ")
        }${servers(answer)}`;
      if (words.length === 0) return { method: "GET", path: "/limits", summary };
      return { method: "PUT", path: "/limits", body: namedValues(words), summary };
    }
    case "connections":
      noWords(action, words);
      return {
        method: "GET",
        path: "/connections",
        summary: (answer) => {
          const list = answer.connections as Record<string, unknown>[];
          if (list.length === 0) return "no open connections";
          return list.map((c) =>
            `#${c.id} ${c.peer} ${c.state}, ${bytes(c.received as number)} in, ` +
            `${bytes(c.echoed as number)} out, ${((c.age as number) / 1000).toFixed(1)} s` +
            ((c.faults as string[]).length ? `, ${(c.faults as string[]).join(", ")}` : "")
          ).join("\n");
        },
      };
    case "close":
      noWords(action, words);
      return {
        method: "POST",
        path: "/close",
        body: { reset: flags.reset, ...(flags.peer === undefined ? {} : { peer: flags.peer }) },
        summary: (answer) =>
          `${answer.reset ? "reset" : "closed"} ${answer.closed} connection${
            answer.closed === 1 ? "" : "s"
          }${servers(answer)}`,
      };
    default:
      throw new UsageError(
        `unknown action '${action}': faults, ready, limits, connections or close`,
      );
  }
}

function noWords(action: string, words: string[]): void {
  if (words.length > 0) throw new UsageError(`${action} takes no '${words[0]}'`);
}

/**
 * `NAME=VALUE` words as the API's JSON: numbers as numbers, true and false as switches, off or
 * none as null (removed), anything else as the text, which the server reads with its units.
 */
function namedValues(words: string[]): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const word of words) {
    const at = word.indexOf("=");
    if (at <= 0) throw new UsageError(`expected NAME=VALUE, not '${word}'`);
    const text = word.slice(at + 1);
    values[word.slice(0, at)] = /^\d+(\.\d+)?$/.test(text)
      ? Number(text)
      : text === "true" || text === "false"
      ? text === "true"
      : text === "off" || text === "none"
      ? null
      : text;
  }
  return values;
}

/** `9000`, `host:9000` or a whole URL, as the API's base URL. */
function baseUrl(text: string): URL {
  const whole = /^\d+$/.test(text)
    ? `http://127.0.0.1:${text}`
    : /^https?:\/\//.test(text)
    ? text
    : `http://${text}`;
  try {
    return new URL(whole);
  } catch {
    throw new UsageError(`URL must be http://HOST:PORT, HOST:PORT or a port, not '${text}'`);
  }
}

/** Makes `call`; a refusal of the API is a usage error (400) or a runtime error. */
async function request(base: URL, call: Call, token?: string): Promise<Record<string, unknown>> {
  const url = new URL(call.path, base);
  let response: Response;
  try {
    response = await fetch(url, {
      method: call.method,
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
    });
  } catch (err) {
    throw new RuntimeError(`cannot reach the control API at ${base.origin}: ${errorReason(err)}`);
  }
  const text = await response.text();
  let answer: Record<string, unknown>;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new RuntimeError(
      `${base.origin} is not a tcpecho control API: HTTP ${response.status} ${text.slice(0, 60)}`,
    );
  }
  if (response.status === 400) throw new UsageError(String(answer.error));
  if (!response.ok) {
    throw new RuntimeError(`the control API refused: ${answer.error ?? response.status}`);
  }
  return answer;
}
