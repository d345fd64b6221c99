/**
 * Reading what the user points at: a file, or standard input for `-`, with one-line errors.
 *
 * @module
 */

import { errorReason, RuntimeError, UsageError } from "../lib/base/errors.ts";

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
    throw cannotRead(path, err, what);
  }
}

/**
 * Reads the file at `path`, or standard input for `-`, as {@linkcode readInput} does, but stops
 * once more than `maxBytes` came: then it throws a {@linkcode UsageError} that says the input is
 * too long to be `what` (`a UDP datagram holds at most 65507 bytes: standard input has more`), so
 * an endless input cannot fill memory.
 *
 * @example
 * ```ts
 * import { rejects } from "node:assert/strict";
 * import { readInputUpTo } from "./read_input.ts";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "hello");
 * await rejects(readInputUpTo(path, 4, "a tiny message"), {
 *   message: `a tiny message holds at most 4 bytes: '${path}' has more`,
 * });
 * await Deno.remove(path);
 * ```
 */
export async function readInputUpTo(
  path: string,
  maxBytes: number,
  what: string,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of await openInput(path)) {
    size += chunk.length;
    if (size > maxBytes) {
      const name = path === "-" ? "standard input" : `'${path}'`;
      throw new UsageError(`${what} holds at most ${maxBytes} bytes: ${name} has more`);
    }
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/**
 * Opens the file at `path`, or standard input for `-`, to be read in chunks as they are needed,
 * so that any size goes through in bounded memory. Each chunk is a new array, never reused.
 * Fails as {@linkcode readInput} does: at once for a file that cannot be opened or is a
 * directory, later for a read that fails.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { openInput } from "./read_input.ts";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "hello");
 * let bytes = 0;
 * for await (const chunk of await openInput(path)) bytes += chunk.length;
 * equal(bytes, 5);
 * await Deno.remove(path);
 * ```
 */
export async function openInput(path: string): Promise<AsyncIterable<Uint8Array>> {
  let file: Deno.FsFile | undefined;
  try {
    if (path !== "-") {
      file = await Deno.open(path);
      if ((await file.stat()).isDirectory) throw new Deno.errors.IsADirectory("is a directory");
    }
  } catch (err) {
    file?.close();
    throw cannotRead(path, err);
  }
  return chunksOf(path, file);
}

async function* chunksOf(path: string, file: Deno.FsFile | undefined): AsyncGenerator<Uint8Array> {
  try {
    // A ReadableStream of a file or stdin hands out a new array for every chunk.
    yield* (file ?? Deno.stdin).readable;
  } catch (err) {
    throw cannotRead(path, err);
  }
}

function cannotRead(path: string, err: unknown, what?: string): RuntimeError {
  const reason = err instanceof Deno.errors.NotCapable
    ? `missing permission, run deno with --allow-read=${path}`
    : errorReason(err);
  const name = path === "-" ? "standard input" : `${what ? `${what} ` : ""}'${path}'`;
  return new RuntimeError(`cannot read ${name}: ${reason}`);
}

/** Reads a text file (PEM certificates and keys) the way {@linkcode readInput} does. */
export async function readTextInput(path: string, what: string): Promise<string> {
  return new TextDecoder().decode(await readInput(path, what));
}
