/**
 * Hints for protocol mix-ups: the first bytes a server sends back, or the way a TLS handshake
 * fails, often show that the client and the server speak different protocols on that port.
 *
 * @module
 */

const PROXY_V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

function startsWith(bytes: Uint8Array, prefix: readonly number[] | string): boolean {
  const expected = typeof prefix === "string" ? new TextEncoder().encode(prefix) : prefix;
  const length = Math.min(bytes.length, expected.length);
  // A few bytes are enough to tell, but not one alone.
  if (length < Math.min(4, expected.length)) return false;
  for (let i = 0; i < length; i++) if (bytes[i] !== expected[i]) return false;
  return true;
}

/**
 * What the first bytes a server sent on a connection say, when they are not an echo but another
 * protocol's: a TLS record, the PROXY header the client sent, an HTTP response. Undefined when
 * they look like nothing known.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { mixUpHint } from "./mix_up.ts";
 *
 * // A TLS alert record: content type 21, version 3.3.
 * equal(mixUpHint(new Uint8Array([0x15, 0x03, 0x03, 0x00, 0x02])), "the server speaks TLS: add --tls");
 * equal(
 *   mixUpHint(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n")),
 *   "the server speaks HTTP, not echo: check the port",
 * );
 * equal(mixUpHint(new TextEncoder().encode("hello")), undefined);
 * ```
 */
export function mixUpHint(firstBytes: Uint8Array): string | undefined {
  const [type, major, minor] = firstBytes;
  // A TLS record: change_cipher_spec, alert, handshake or application_data, version 3.x.
  if (firstBytes.length >= 3 && type >= 0x14 && type <= 0x17 && major === 3 && minor <= 4) {
    return "the server speaks TLS: add --tls";
  }
  if (startsWith(firstBytes, "PROXY ") || startsWith(firstBytes, PROXY_V2_SIGNATURE)) {
    return "the server echoed the PROXY header back: it does not expect --send-proxy " +
      "(leave it out, or run the server with --proxy-protocol)";
  }
  if (startsWith(firstBytes, "HTTP/")) return "the server speaks HTTP, not echo: check the port";
  return undefined;
}

/**
 * What a failed TLS handshake's reason says when the server does not speak TLS at all: an echo
 * server sends the client's own hello back, another server plain text. Undefined otherwise.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { handshakeMixUpHint } from "./mix_up.ts";
 *
 * equal(
 *   handshakeMixUpHint(
 *     "received unexpected handshake message: got ClientHello when expecting ServerHello",
 *   ),
 *   "the server does not speak TLS (it sent the client's hello back, as an echo server does): " +
 *     "leave out --tls",
 * );
 * ```
 */
export function handshakeMixUpHint(reason: string): string | undefined {
  if (reason.includes("got ClientHello")) {
    return "the server does not speak TLS (it sent the client's hello back, as an echo server " +
      "does): leave out --tls";
  }
  if (
    /InvalidContentType|wrong version number|corrupt message|packet length too long/i.test(reason)
  ) {
    return "the server does not speak TLS (it answered in plain text): leave out --tls";
  }
  return undefined;
}
