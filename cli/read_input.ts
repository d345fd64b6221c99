/**
 * Reading what the user points at: a file, or standard input for `-`, with one-line errors.
 *
 * @module
 */

import { errorReason, RuntimeError } from "../lib/errors.ts";

/**
 * Reads the file at `path`, or standard input for `-`. Throws a {@linkcode RuntimeError} such as
 * `cannot read TLS key 'server.key': no such file or directory`, naming the Deno permission to
 * add when that is what is missing. `what` names the file's role in that message.
 *
 * @example
 * ```ts
 * import { equal, rejects } from "node:assert/strict";
 * import { readInput } from "./read_input.ts";
 *
 * await rejects(
 *   readInput("/no/such/file", "TLS key"),
 *   { message: "cannot read TLS key '/no/such/file': no such file or directory" },
 * );
 * ```
 */
export async function readInput(path: string, what?: string): Promise<Uint8Array> {
  try {
    return path === "-"
      ? await new Response(Deno.stdin.readable).bytes()
      : await Deno.readFile(path);
  } catch (err) {
    const reason = err instanceof Deno.errors.NotCapable
      ? `missing permission, run deno with --allow-read=${path}`
      : errorReason(err);
    const name = path === "-" ? "standard input" : `${what ? `${what} ` : ""}'${path}'`;
    throw new RuntimeError(`cannot read ${name}: ${reason}`);
  }
}

/** Reads a text file (PEM certificates and keys) the way {@linkcode readInput} does. */
export async function readTextInput(path: string, what: string): Promise<string> {
  return new TextDecoder().decode(await readInput(path, what));
}
