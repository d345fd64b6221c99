/**
 * Peer addresses written the way Python prints a socket address tuple.
 *
 * @module
 */

/**
 * Formats an address as Python's `repr()` of the matching socket address: `('127.0.0.1', 49964)`
 * for IPv4, `('::1', 49964, 0, 0)` for IPv6 (flow info and scope id are always 0 here), and the
 * quoted path for a Unix socket (`''` for an unnamed client).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { formatPeer } from "./peer.ts";
 *
 * equal(formatPeer({ transport: "tcp", hostname: "127.0.0.1", port: 49964 }), "('127.0.0.1', 49964)");
 * equal(formatPeer({ transport: "tcp", hostname: "::1", port: 50000 }), "('::1', 50000, 0, 0)");
 * equal(formatPeer({ transport: "unix", path: "/tmp/echo.sock" }), "'/tmp/echo.sock'");
 * ```
 */
export function formatPeer(addr: Deno.Addr): string {
  // An unnamed Unix client has no path (null): Python shows it as ''.
  if ("path" in addr) return pythonString(addr.path ?? "");
  if ("cid" in addr) return `(${addr.cid}, ${addr.port})`;
  return addr.hostname.includes(":")
    ? `(${pythonString(addr.hostname)}, ${addr.port}, 0, 0)`
    : `(${pythonString(addr.hostname)}, ${addr.port})`;
}

/**
 * Formats an address for machines and humans alike: `127.0.0.1:49964`, `[::1]:49964`, or the
 * socket path.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { formatAddress } from "./peer.ts";
 *
 * equal(formatAddress({ transport: "tcp", hostname: "::1", port: 7 }), "[::1]:7");
 * ```
 */
export function formatAddress(addr: Deno.Addr): string {
  if ("path" in addr) return addr.path ?? "";
  if ("cid" in addr) return `vsock:${addr.cid}:${addr.port}`;
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

/**
 * Whether `hostname` names this machine's loopback: `localhost`, 127.0.0.0/8 or `::1`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { isLoopback } from "./peer.ts";
 *
 * equal(isLoopback("127.0.0.1"), true);
 * equal(isLoopback("[::1]"), true);
 * equal(isLoopback("192.168.1.10"), false);
 * ```
 */
export function isLoopback(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return host === "localhost" || host.endsWith(".localhost") || host === "::1" ||
    /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(host);
}

/** Python's `repr()` of a str: quotes and backslashes escaped, control characters as `\xNN`. */
function pythonString(text: string): string {
  // deno-lint-ignore no-control-regex -- control characters are exactly what must be escaped
  const escaped = text.replace(/[\\'\x00-\x1f\x7f]/g, (char) => ESCAPES[char] ?? hexEscape(char));
  return `'${escaped}'`;
}

const ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  "'": "\\'",
  "\t": "\\t",
  "\n": "\\n",
  "\r": "\\r",
};

function hexEscape(char: string): string {
  return "\\x" + char.charCodeAt(0).toString(16).padStart(2, "0");
}
