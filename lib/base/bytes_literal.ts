/**
 * Python `bytes` literals: how the classic echo tools print network data.
 *
 * @module
 */

/** Escapes for each byte value inside a literal quoted with `quote`. */
function escapeTable(quote: "'" | '"'): string[] {
  const table: string[] = [];
  for (let byte = 0; byte < 256; byte++) {
    const char = String.fromCharCode(byte);
    if (char === quote || char === "\\") table.push("\\" + char);
    else if (char === "\t") table.push("\\t");
    else if (char === "\n") table.push("\\n");
    else if (char === "\r") table.push("\\r");
    else if (byte < 0x20 || byte >= 0x7f) table.push("\\x" + byte.toString(16).padStart(2, "0"));
    else table.push(char);
  }
  return table;
}

const SINGLE_QUOTED = escapeTable("'");
const DOUBLE_QUOTED = escapeTable('"');
const SINGLE_QUOTE = 0x27;
const DOUBLE_QUOTE = 0x22;

/**
 * Formats bytes exactly as Python's `repr(bytes)` does: `b'...'` with printable ASCII as is,
 * `\\`, `\t`, `\n`, `\r` escaped, every other byte as `\xNN`, and `b"..."` when the data holds a
 * single quote but no double quote. No control byte survives unescaped, so the result is safe to
 * print on a terminal.
 *
 * @example Printable text and control bytes
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { formatBytesLiteral } from "./bytes_literal.ts";
 *
 * equal(formatBytesLiteral(new TextEncoder().encode("hi\n")), "b'hi\\n'");
 * equal(formatBytesLiteral(new Uint8Array([0, 255])), "b'\\x00\\xff'");
 * equal(formatBytesLiteral(new TextEncoder().encode("it's")), `b"it's"`);
 * ```
 */
export function formatBytesLiteral(bytes: Uint8Array): string {
  const doubleQuoted = bytes.includes(SINGLE_QUOTE) && !bytes.includes(DOUBLE_QUOTE);
  const table = doubleQuoted ? DOUBLE_QUOTED : SINGLE_QUOTED;
  let body = "";
  for (let i = 0; i < bytes.length; i++) body += table[bytes[i]];
  return doubleQuoted ? `b"${body}"` : `b'${body}'`;
}
