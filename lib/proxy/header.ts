/**
 * The PROXY protocol header, version 1 (a text line) and version 2 (binary, with TLVs), as
 * HAProxy's specification defines it: a proxy or load balancer sends one first on each connection
 * it opens to a backend, to name the client it relays. Parse one from received bytes, build one
 * to send, and describe its TLVs for a log.
 *
 * @module
 */

import { ipaddr } from "../_deps/ipaddr.ts";
import { crc32c } from "./crc32c.ts";
import { ProxyHeaderError, UsageError } from "../base/errors.ts";

/** Which header versions a receiver accepts: one of them, or `any` to tell them apart. */
export type ProxyMode = "v1" | "v2" | "any";

/**
 * `PROXY` relays a client; `LOCAL` (version 2 only) is the proxy speaking for itself, as in a
 * health check: the receiver uses the connection's real addresses.
 */
export type ProxyCommand = "PROXY" | "LOCAL";

/**
 * The relayed connection's address family and transport. Version 1 knows `TCP4`, `TCP6` and
 * `UNKNOWN`, reported here as `UNSPEC`.
 */
export type ProxyFamily = "TCP4" | "TCP6" | "UDP4" | "UDP6" | "UNIX" | "UNIX_DGRAM" | "UNSPEC";

/** An address a header names: IP and port (`tcp` or `udp`), or a Unix socket path. */
export type ProxyAddr = Deno.NetAddr | Deno.UnixAddr;

/** One type-length-value field of a version 2 header, undecoded. */
export interface ProxyTlv {
  /** The type byte (see {@linkcode PROXY_TLV}). */
  type: number;
  /** The value's bytes. */
  value: Uint8Array;
}

/** What a PROXY header says. */
export interface ProxyHeader {
  /** The protocol version the header was written in. */
  version: 1 | 2;
  /** Always `PROXY` in version 1. */
  command: ProxyCommand;
  /** The relayed connection's family and transport. */
  family: ProxyFamily;
  /** The client the proxy relays, unless the family is `UNSPEC`. */
  source?: ProxyAddr;
  /** The address the client connected to, unless the family is `UNSPEC`. */
  destination?: ProxyAddr;
  /** Version 2's TLVs in the order sent (the CRC32C already verified); empty for version 1. */
  tlvs: ProxyTlv[];
}

/** What {@linkcode encodeProxyHeader} needs; the family follows from the addresses when omitted. */
export interface ProxyHeaderInit {
  /** The protocol version to write. */
  version: 1 | 2;
  /** Default `PROXY`; `LOCAL` needs version 2. */
  command?: ProxyCommand;
  /** Default: `TCP4`, `TCP6`, `UDP4`, `UDP6` or `UNIX` from the addresses, `UNSPEC` without. */
  family?: ProxyFamily;
  /** The client to claim: an IP literal and port, or a Unix socket path. */
  source?: ProxyAddr;
  /** The address the client connected to, of the same family as `source`. */
  destination?: ProxyAddr;
  /** Version 2 only. A `CRC32C` TLV gets the header's checksum, whatever value it was given. */
  tlvs?: ProxyTlv[];
}

/** The TLV types of the specification. Types 0xE0-0xEF are for vendors (AWS uses 0xEA). */
export const PROXY_TLV = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  SSL_VERSION: 0x21,
  SSL_CN: 0x22,
  SSL_CIPHER: 0x23,
  SSL_SIG_ALG: 0x24,
  SSL_KEY_ALG: 0x25,
  NETNS: 0x30,
} as const;

/** The longest version 1 header, CRLF included. */
export const PROXY_V1_MAX_LENGTH = 107;

/** The 12 bytes that open every version 2 header. */
export const PROXY_V2_SIGNATURE: Uint8Array = Uint8Array.of(
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
);

/**
 * The outcome of {@linkcode parseProxyHeader}: a whole header and its length in bytes, or how
 * many more bytes it takes at least before the header can be complete.
 */
export type ProxyParse =
  | { header: ProxyHeader; length: number; needed?: undefined }
  | { header?: undefined; length?: undefined; needed: number };

const CR = 0x0d;
const LF = 0x0a;
const V1_PREFIX = "PROXY ";
/** `PROXY UNKNOWN\r\n`: no version 1 header is shorter. */
const V1_MIN_LENGTH = 15;
const V2_FIXED_LENGTH = 16;
const UNIQUE_ID_MAX = 128;
const UNIX_PATH_BYTES = 108;
const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder();

/**
 * Parses the PROXY header at the start of `bytes` (anything after it is left alone). Throws a
 * {@linkcode ProxyHeaderError} saying why as soon as the bytes cannot begin a valid header of the
 * accepted `mode`; otherwise returns the header, or the least number of bytes still needed, so a
 * reader can ask for exactly that many and never consume a byte past the header.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { parseProxyHeader } from "./header.ts";
 *
 * const bytes = new TextEncoder().encode("PROXY TCP4 203.0.113.7 192.0.2.1 4242 443\r\nhello");
 * const { header, length } = parseProxyHeader(bytes, "any");
 * equal(length, 43);
 * deepEqual(header?.source, { transport: "tcp", hostname: "203.0.113.7", port: 4242 });
 *
 * // 20 bytes in, at least " 0.0.0.0 0 0\r\n" is still to come.
 * equal(parseProxyHeader(bytes.subarray(0, 20), "v1").needed, 14);
 * ```
 */
export function parseProxyHeader(bytes: Uint8Array, mode: ProxyMode = "any"): ProxyParse {
  if (bytes.length === 0) return { needed: mode === "v2" ? V2_FIXED_LENGTH : V1_MIN_LENGTH };
  const v1 = startsLike(bytes, V1_PREFIX_BYTES);
  const v2 = startsLike(bytes, PROXY_V2_SIGNATURE);
  if (mode !== "v2" && v1) return parseV1(bytes);
  if (mode !== "v1" && v2) return parseV2(bytes);
  if (mode === "v1" && v2) throw new ProxyHeaderError("got a PROXY v2 header, expected v1");
  if (mode === "v2" && v1) throw new ProxyHeaderError("got a PROXY v1 header, expected v2");
  throw new ProxyHeaderError(`no PROXY header: the connection starts with ${describeStart(bytes)}`);
}

const V1_PREFIX_BYTES = new TextEncoder().encode(V1_PREFIX);

/** Whether `bytes` and `expected` agree on their common length. */
function startsLike(bytes: Uint8Array, expected: Uint8Array): boolean {
  const n = Math.min(bytes.length, expected.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== expected[i]) return false;
  return true;
}

/** What a connection that did not open with a header sent instead, in a few words. */
function describeStart(bytes: Uint8Array): string {
  if (bytes[0] === 0x16 && (bytes.length === 1 || bytes[1] === 0x03)) {
    return "a TLS handshake (send-proxy missing on the proxy?)";
  }
  const start = bytes.subarray(0, 16);
  const textual = (b: number) => (b >= 0x20 && b < 0x7f) || b === CR || b === LF || b === 0x09;
  if (start.every(textual)) return JSON.stringify(latin1.decode(start));
  return [...start.subarray(0, 8)].map((b) => `0x${hex2(b)}`).join(" ");
}

function hex2(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}

// --- version 1 ---------------------------------------------------------------------------------

function parseV1(bytes: Uint8Array): ProxyParse {
  // The CRLF must end by byte 107, so a CR can be at index 105 at the latest.
  const scan = Math.min(bytes.length, PROXY_V1_MAX_LENGTH - 1);
  for (let i = 0; i < scan; i++) {
    if (bytes[i] === LF) throw v1Error("has a line feed without a carriage return before it");
    if (bytes[i] !== CR) continue;
    if (i + 1 === bytes.length) {
      // Refuse a bad line now rather than after its last byte.
      parseV1Line(latin1.decode(bytes.subarray(0, i)), false);
      return { needed: 1 };
    }
    if (bytes[i + 1] !== LF) throw v1Error("has a carriage return without a line feed after it");
    return { header: parseV1Line(latin1.decode(bytes.subarray(0, i)), true), length: i + 2 };
  }
  if (bytes.length >= PROXY_V1_MAX_LENGTH - 1) throw v1TooLong();
  return { needed: parseV1Line(latin1.decode(bytes), false) };
}

function v1Error(what: string): ProxyHeaderError {
  return new ProxyHeaderError(`PROXY v1 header ${what}`);
}

function v1TooLong(): ProxyHeaderError {
  return v1Error(`has no CRLF within ${PROXY_V1_MAX_LENGTH} bytes`);
}

/** Shortest complete header for each protocol keyword. */
const V1_SHORTEST: Record<string, number> = {
  UNKNOWN: V1_MIN_LENGTH,
  TCP4: "PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n".length,
  TCP6: "PROXY TCP6 :: :: 0 0\r\n".length,
};

/**
 * A whole line (CRLF excluded) becomes a header; a line still arriving is checked as far as it
 * goes, and the answer is the least number of bytes that can complete it.
 */
function parseV1Line(line: string, complete: true): ProxyHeader;
function parseV1Line(line: string, complete: false): number;
function parseV1Line(line: string, complete: boolean): ProxyHeader | number {
  if (line.length < V1_PREFIX.length) return V1_MIN_LENGTH - line.length;
  const rest = line.slice(V1_PREFIX.length);
  const space = rest.indexOf(" ");
  const protocol = space < 0 ? rest : rest.slice(0, space);
  if (space < 0 && !complete) {
    const candidates = Object.keys(V1_SHORTEST).filter((p) => p.startsWith(protocol));
    if (candidates.length === 0) throw v1UnknownProtocol(protocol);
    return Math.min(...candidates.map((p) => V1_SHORTEST[p])) - line.length;
  }
  // The specification lets anything follow UNKNOWN up to the CRLF.
  if (protocol === "UNKNOWN") {
    return complete ? { version: 1, command: "PROXY", family: "UNSPEC", tlvs: [] } : 2;
  }
  if (protocol !== "TCP4" && protocol !== "TCP6") throw v1UnknownProtocol(protocol);
  const v6 = protocol === "TCP6";
  const fields = space < 0 ? [] : rest.slice(space + 1).split(" ");
  fields.forEach((field, i) => {
    if (i === 4) throw v1Error(`has more than 4 fields after ${protocol}`);
    const whole = complete || i < fields.length - 1;
    if (i < 2) checkV1Address(field, v6, whole, i === 0 ? "source" : "destination");
    else checkV1Port(field, whole, i === 2 ? "source" : "destination");
  });
  if (!complete) {
    const shortest = (i: number) => i >= 2 ? 1 : v6 ? 2 : 7;
    const last = fields.length - 1;
    let needed = 2 + Math.max(0, shortest(last) - fields[last].length);
    for (let i = last + 1; i < 4; i++) needed += 1 + shortest(i);
    if (line.length + needed > PROXY_V1_MAX_LENGTH) throw v1TooLong();
    return needed;
  }
  if (fields.length < 4) {
    throw v1Error(`has ${fields.length} of the 4 fields after ${protocol} (addresses and ports)`);
  }
  const [source, destination] = [0, 1].map((i): Deno.NetAddr => ({
    transport: "tcp",
    hostname: canonicalIp(fields[i]),
    port: Number(fields[i + 2]),
  }));
  return { version: 1, command: "PROXY", family: protocol, source, destination, tlvs: [] };
}

function v1UnknownProtocol(protocol: string): ProxyHeaderError {
  return v1Error(`names an unknown protocol ${JSON.stringify(protocol.slice(0, 16))}`);
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_CHARS = /^[0-9a-fA-F:.]*$/;

function checkV1Address(field: string, v6: boolean, whole: boolean, which: string): void {
  const valid = whole
    ? (v6 ? isIpv6(field) : IPV4.test(field))
    : (v6 ? IPV6_CHARS.test(field) && field.length <= 45 : /^[\d.]{0,15}$/.test(field));
  if (!valid) {
    throw v1Error(
      `has a bad ${which} ${v6 ? "IPv6" : "IPv4"} address ${JSON.stringify(field.slice(0, 48))}`,
    );
  }
}

function checkV1Port(field: string, whole: boolean, which: string): void {
  const valid = whole
    ? /^(0|[1-9]\d{0,4})$/.test(field) && Number(field) <= 65535
    : /^(0|[1-9]\d{0,4})?$/.test(field) && Number(field) <= 65535;
  if (!valid) throw v1Error(`has a bad ${which} port ${JSON.stringify(field.slice(0, 16))}`);
}

function isIpv6(text: string): boolean {
  // ipaddr.js lets an embedded IPv4 address have leading zeros, which inet_pton refuses.
  const embedded = text.includes(".") ? text.slice(text.lastIndexOf(":") + 1) : undefined;
  return IPV6_CHARS.test(text) && ipaddr.IPv6.isValid(text) &&
    (embedded === undefined || IPV4.test(embedded));
}

/** An IP address as the runtime writes peers: RFC 5952 for IPv6, dotted for mapped IPv4. */
function canonicalIp(text: string): string {
  return text.includes(":") ? formatIpv6(ipaddr.IPv6.parse(text).toByteArray()) : text;
}

function formatIpv6(bytes: ArrayLike<number>): string {
  const address = ipaddr.fromByteArray(Array.from(bytes)) as ipaddr.IPv6;
  return address.isIPv4MappedAddress()
    ? `::ffff:${address.toIPv4Address().toString()}`
    : address.toRFC5952String();
}

// --- version 2 ---------------------------------------------------------------------------------

interface V2Family {
  family: ProxyFamily;
  /** Bytes of the address block: two addresses, and two ports for IP. */
  addressLength: number;
}

const V2_FAMILIES = new Map<number, V2Family>([
  [0x00, { family: "UNSPEC", addressLength: 0 }],
  [0x11, { family: "TCP4", addressLength: 12 }],
  [0x12, { family: "UDP4", addressLength: 12 }],
  [0x21, { family: "TCP6", addressLength: 36 }],
  [0x22, { family: "UDP6", addressLength: 36 }],
  [0x31, { family: "UNIX", addressLength: 2 * UNIX_PATH_BYTES }],
  [0x32, { family: "UNIX_DGRAM", addressLength: 2 * UNIX_PATH_BYTES }],
]);

const V2_FAMILY_BYTES = new Map([...V2_FAMILIES].map(([byte, { family }]) => [family, byte]));

function v2Error(what: string): ProxyHeaderError {
  return new ProxyHeaderError(`PROXY v2 header ${what}`);
}

function parseV2(bytes: Uint8Array): ProxyParse {
  if (bytes.length < V2_FIXED_LENGTH) return { needed: V2_FIXED_LENGTH - bytes.length };
  const version = bytes[12] >> 4;
  if (version !== 2) throw v2Error(`has version ${version}, expected 2`);
  const commandCode = bytes[12] & 0x0f;
  if (commandCode > 1) throw v2Error(`has an unknown command 0x${hex2(commandCode)}`);
  const command: ProxyCommand = commandCode === 1 ? "PROXY" : "LOCAL";
  const family = V2_FAMILIES.get(bytes[13]);
  const bodyLength = (bytes[14] << 8) | bytes[15];
  if (command === "PROXY") {
    if (!family) throw v2Error(`has an unknown address family and protocol 0x${hex2(bytes[13])}`);
    if (bodyLength < family.addressLength) {
      throw v2Error(
        `for ${family.family} declares ${bodyLength} bytes of addresses and TLVs, ` +
          `less than the ${family.addressLength} its addresses take`,
      );
    }
  }
  const length = V2_FIXED_LENGTH + bodyLength;
  if (bytes.length < length) return { needed: length - bytes.length };
  // LOCAL tells the receiver to ignore the address block, whatever family it claims.
  if (!family || bodyLength < family.addressLength) {
    return { header: { version: 2, command, family: "UNSPEC", tlvs: [] }, length };
  }
  const addresses = bytes.subarray(V2_FIXED_LENGTH, V2_FIXED_LENGTH + family.addressLength);
  const tlvs = readTlvs(bytes, V2_FIXED_LENGTH + family.addressLength, length, "header");
  checkTlvs(tlvs, bytes.subarray(0, length));
  const header: ProxyHeader = {
    version: 2,
    command,
    family: family.family,
    ...decodeV2Addresses(family.family, addresses),
    tlvs,
  };
  return { header, length };
}

function decodeV2Addresses(
  family: ProxyFamily,
  block: Uint8Array,
): Pick<ProxyHeader, "source" | "destination"> {
  if (family === "UNSPEC") return {};
  if (family === "UNIX" || family === "UNIX_DGRAM") {
    const path = (at: number): Deno.UnixAddr => {
      const field = block.subarray(at, at + UNIX_PATH_BYTES);
      const end = field.indexOf(0);
      return { transport: "unix", path: utf8.decode(end < 0 ? field : field.subarray(0, end)) };
    };
    return { source: path(0), destination: path(UNIX_PATH_BYTES) };
  }
  const transport = family.startsWith("UDP") ? "udp" : "tcp";
  const size = family.endsWith("6") ? 16 : 4;
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const address = (at: number, portAt: number): Deno.NetAddr => ({
    transport,
    hostname: size === 4
      ? block.subarray(at, at + 4).join(".")
      : formatIpv6(block.subarray(at, at + 16)),
    port: view.getUint16(portAt),
  });
  return {
    source: address(0, 2 * size),
    destination: address(size, 2 * size + 2),
  };
}

/** The TLVs in `bytes[start..end)`, which they must fill exactly. */
function readTlvs(bytes: Uint8Array, start: number, end: number, where: string): ProxyTlv[] {
  const tlvs: ProxyTlv[] = [];
  for (let at = start; at < end;) {
    if (end - at < 3) {
      throw v2Error(`ends its ${where} with ${end - at} stray byte(s) after its TLVs`);
    }
    const type = bytes[at];
    const length = (bytes[at + 1] << 8) | bytes[at + 2];
    if (at + 3 + length > end) {
      throw v2Error(
        `has a TLV ${tlvName(type)} of ${length} bytes running past the end of its ${where}`,
      );
    }
    tlvs.push({ type, value: bytes.slice(at + 3, at + 3 + length) });
    at += 3 + length;
  }
  return tlvs;
}

/** Rejects the known TLVs whose content breaks the specification, and checks the CRC32C. */
function checkTlvs(tlvs: ProxyTlv[], header: Uint8Array): void {
  const checksums = tlvs.filter((tlv) => tlv.type === PROXY_TLV.CRC32C);
  if (checksums.length > 1) throw v2Error(`has ${checksums.length} CRC32C TLVs`);
  for (const { type, value } of tlvs) {
    if (type === PROXY_TLV.CRC32C && value.length !== 4) {
      throw v2Error(`has a CRC32C TLV of ${value.length} bytes, expected 4`);
    }
    if (type === PROXY_TLV.UNIQUE_ID && value.length > UNIQUE_ID_MAX) {
      throw v2Error(`has a UNIQUE_ID TLV of ${value.length} bytes, at most ${UNIQUE_ID_MAX}`);
    }
    if (type === PROXY_TLV.SSL) {
      if (value.length < 5) throw v2Error(`has an SSL TLV of ${value.length} bytes, at least 5`);
      readTlvs(value, 5, value.length, "SSL TLV");
    }
  }
  if (checksums.length === 1) {
    const claimed = new DataView(checksums[0].value.buffer).getUint32(0);
    const actual = checksumOf(header);
    if (claimed !== actual) {
      throw v2Error(
        `fails its CRC32C check (it says 0x${hex8(claimed)}, its bytes give 0x${hex8(actual)})`,
      );
    }
  }
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/** The CRC32C of a whole version 2 header, with the value of its CRC32C TLV taken as zeros. */
function checksumOf(header: Uint8Array): number {
  const copy = header.slice();
  const at = crcValueOffset(copy);
  copy.fill(0, at, at + 4);
  return crc32c(copy);
}

/** Where the 4 bytes of the CRC32C TLV's value sit in a well-formed version 2 header. */
function crcValueOffset(header: Uint8Array): number {
  const family = V2_FAMILIES.get(header[13]);
  let at = V2_FIXED_LENGTH + (family?.addressLength ?? 0);
  while (header[at] !== PROXY_TLV.CRC32C) at += 3 + ((header[at + 1] << 8) | header[at + 2]);
  return at + 3;
}

// --- building ----------------------------------------------------------------------------------

/**
 * Writes a PROXY header. Throws a {@linkcode UsageError} when the header cannot be written: a
 * `LOCAL` command or TLVs in version 1, addresses that are not IP literals, families that differ.
 *
 * @example A version 2 header for a TLS client, as a TLS-terminating proxy sends it
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { encodeProxyHeader, parseProxyHeader, PROXY_TLV } from "./header.ts";
 *
 * const bytes = encodeProxyHeader({
 *   version: 2,
 *   source: { transport: "tcp", hostname: "2001:db8::7", port: 4242 },
 *   destination: { transport: "tcp", hostname: "2001:db8::1", port: 443 },
 *   tlvs: [{ type: PROXY_TLV.ALPN, value: new TextEncoder().encode("h2") }],
 * });
 * deepEqual(parseProxyHeader(bytes).header?.source, {
 *   transport: "tcp",
 *   hostname: "2001:db8::7",
 *   port: 4242,
 * });
 * ```
 */
export function encodeProxyHeader(init: ProxyHeaderInit): Uint8Array {
  const command = init.command ?? "PROXY";
  const family = init.family ?? inferFamily(init);
  // The checksum's own 4 bytes, whatever was given, hold zeros until the checksum is known.
  const tlvs = (init.tlvs ?? []).map((tlv) =>
    tlv.type === PROXY_TLV.CRC32C ? { type: tlv.type, value: new Uint8Array(4) } : tlv
  );
  if (init.version === 1) {
    if (command === "LOCAL") throw new UsageError("the LOCAL command needs PROXY protocol v2");
    if (tlvs.length > 0) throw new UsageError("TLVs need PROXY protocol v2");
    if (family === "UNSPEC") return new TextEncoder().encode("PROXY UNKNOWN\r\n");
    if (family !== "TCP4" && family !== "TCP6") {
      throw new UsageError(`PROXY protocol v1 cannot name ${family} addresses: use v2`);
    }
    const [source, destination] = checkedIpAddresses(init, family);
    return new TextEncoder().encode(
      `PROXY ${family} ${source.hostname} ${destination.hostname} ` +
        `${source.port} ${destination.port}\r\n`,
    );
  }
  const addresses = encodeV2Addresses(init, family);
  const body = [addresses, ...tlvs.map(encodeTlv)];
  const bodyLength = body.reduce((sum, part) => sum + part.length, 0);
  if (bodyLength > 0xffff) {
    throw new UsageError(`a PROXY v2 header holds at most 65535 bytes after its first 16`);
  }
  if (tlvs.filter((tlv) => tlv.type === PROXY_TLV.CRC32C).length > 1) {
    throw new UsageError("a PROXY v2 header holds one CRC32C TLV at most");
  }
  const header = new Uint8Array(V2_FIXED_LENGTH + bodyLength);
  header.set(PROXY_V2_SIGNATURE);
  header[12] = 0x20 | (command === "PROXY" ? 1 : 0);
  header[13] = V2_FAMILY_BYTES.get(family)!;
  header[14] = bodyLength >> 8;
  header[15] = bodyLength & 0xff;
  let at = V2_FIXED_LENGTH;
  for (const part of body) {
    header.set(part, at);
    at += part.length;
  }
  if (tlvs.some((tlv) => tlv.type === PROXY_TLV.CRC32C)) {
    const offset = crcValueOffset(header);
    header.fill(0, offset, offset + 4);
    new DataView(header.buffer).setUint32(offset, crc32c(header));
  }
  return header;
}

/**
 * Writes the header a proxy would send on a connection from `local` to `remote`: what `init`
 * leaves out of a `PROXY` header is filled in from the connection (its local address as the
 * source, its peer as the destination), as HAProxy does. A `LOCAL` header names no addresses
 * unless given, and a Unix socket connection gives none.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { encodeProxyHeaderFor } from "./header.ts";
 *
 * const local: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 51234 };
 * const remote: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 10000 };
 * const claimed: Deno.NetAddr = { transport: "tcp", hostname: "203.0.113.7", port: 4242 };
 * const header = encodeProxyHeaderFor({ version: 1, source: claimed }, local, remote);
 * equal(new TextDecoder().decode(header), "PROXY TCP4 203.0.113.7 127.0.0.1 4242 10000\r\n");
 * ```
 */
export function encodeProxyHeaderFor(
  init: ProxyHeaderInit,
  local: Deno.Addr,
  remote: Deno.Addr,
): Uint8Array {
  const fill = (init.command ?? "PROXY") === "PROXY" && init.family !== "UNSPEC";
  const ip = (addr: Deno.Addr) => "hostname" in addr && addr.transport === "tcp" ? addr : undefined;
  const source = init.source ?? (fill ? ip(local) : undefined);
  const destination = init.destination ?? (fill ? ip(remote) : undefined);
  const v6 = (addr?: ProxyAddr) => addr && "hostname" in addr && addr.hostname.includes(":");
  const filledOne = (init.source === undefined) !== (init.destination === undefined);
  if (filledOne && source && destination && v6(source) !== v6(destination)) {
    const [given, other] = init.source ? ["source", "destination"] : ["destination", "source"];
    throw new UsageError(
      `the PROXY header's ${given} is ${v6(init.source ?? init.destination) ? "IPv6" : "IPv4"} ` +
        `but the connection is not: name the ${other} too`,
    );
  }
  return encodeProxyHeader({ ...init, source, destination });
}

function inferFamily({ source, destination }: ProxyHeaderInit): ProxyFamily {
  if (!source && !destination) return "UNSPEC";
  if (!source || !destination) {
    throw new UsageError("a PROXY header names both a source and a destination, or neither");
  }
  if (!("hostname" in source)) return "UNIX";
  const v6 = source.hostname.includes(":");
  return source.transport === "udp" ? (v6 ? "UDP6" : "UDP4") : (v6 ? "TCP6" : "TCP4");
}

function checkedIpAddresses(init: ProxyHeaderInit, family: ProxyFamily): Deno.NetAddr[] {
  const v6 = family.endsWith("6");
  return [init.source, init.destination].map((addr, i) => {
    const which = i === 0 ? "source" : "destination";
    if (!addr || !("hostname" in addr)) {
      throw new UsageError(`a ${family} PROXY header needs an IP ${which} address and port`);
    }
    const valid = v6 ? isIpv6(addr.hostname) : IPV4.test(addr.hostname);
    if (!valid) {
      throw new UsageError(
        `the PROXY header's ${which} ${JSON.stringify(addr.hostname)} is not an ` +
          `${v6 ? "IPv6" : "IPv4"} address, as ${family} needs`,
      );
    }
    if (!Number.isInteger(addr.port) || addr.port < 0 || addr.port > 65535) {
      throw new UsageError(`the PROXY header's ${which} port ${addr.port} is not 0 to 65535`);
    }
    return { ...addr, hostname: canonicalIp(addr.hostname) };
  });
}

function encodeV2Addresses(init: ProxyHeaderInit, family: ProxyFamily): Uint8Array {
  if (family === "UNSPEC") {
    if (init.source || init.destination) {
      throw new UsageError("an UNSPEC PROXY header carries no addresses");
    }
    return new Uint8Array(0);
  }
  const block = new Uint8Array(V2_FAMILIES.get(V2_FAMILY_BYTES.get(family)!)!.addressLength);
  if (family === "UNIX" || family === "UNIX_DGRAM") {
    [init.source, init.destination].forEach((addr, i) => {
      if (!addr || !("path" in addr) || addr.path === null) {
        throw new UsageError(`a ${family} PROXY header needs two socket paths`);
      }
      const path = new TextEncoder().encode(addr.path);
      if (path.length > UNIX_PATH_BYTES || path.includes(0)) {
        throw new UsageError(
          `the socket path ${JSON.stringify(addr.path)} does not fit in 108 bytes`,
        );
      }
      block.set(path, i * UNIX_PATH_BYTES);
    });
    return block;
  }
  const addresses = checkedIpAddresses(init, family);
  const size = family.endsWith("6") ? 16 : 4;
  const view = new DataView(block.buffer);
  addresses.forEach((addr, i) => {
    block.set(ipaddr.parse(addr.hostname).toByteArray(), i * size);
    view.setUint16(2 * size + 2 * i, addr.port);
  });
  return block;
}

function encodeTlv({ type, value }: ProxyTlv): Uint8Array {
  if (!Number.isInteger(type) || type < 0 || type > 0xff) {
    throw new UsageError(`a TLV type is a byte, 0x00 to 0xff, not ${type}`);
  }
  if (value.length > 0xffff) throw new UsageError(`a TLV holds at most 65535 bytes`);
  const tlv = new Uint8Array(3 + value.length);
  tlv[0] = type;
  tlv[1] = value.length >> 8;
  tlv[2] = value.length & 0xff;
  tlv.set(value, 3);
  return tlv;
}

// --- describing --------------------------------------------------------------------------------

/** A decoded TLV value: text, hex, or the SSL TLV's fields. */
export type ProxyTlvValue = string | ProxySslInfo;

/** The SSL TLV: how the client reached the proxy. */
export interface ProxySslInfo {
  /** Which of `ssl`, `cert-conn` (a certificate on this connection), `cert-sess` are set. */
  client: string[];
  /** 0 when the client's certificate was verified (or none was asked for), else an error code. */
  verify: number;
  /** The TLS version, such as `TLSv1.3`. */
  version?: string;
  /** The common name of the client certificate's subject. */
  cn?: string;
  /** The cipher suite. */
  cipher?: string;
  /** The algorithm that signed the client's certificate. */
  sig_alg?: string;
  /** The algorithm of the client certificate's key. */
  key_alg?: string;
}

const TLV_NAMES: Record<number, string> = {
  [PROXY_TLV.ALPN]: "alpn",
  [PROXY_TLV.AUTHORITY]: "authority",
  [PROXY_TLV.CRC32C]: "crc32c",
  [PROXY_TLV.UNIQUE_ID]: "unique_id",
  [PROXY_TLV.SSL]: "ssl",
  [PROXY_TLV.NETNS]: "netns",
};

const SSL_FIELDS: Record<number, keyof ProxySslInfo> = {
  [PROXY_TLV.SSL_VERSION]: "version",
  [PROXY_TLV.SSL_CN]: "cn",
  [PROXY_TLV.SSL_CIPHER]: "cipher",
  [PROXY_TLV.SSL_SIG_ALG]: "sig_alg",
  [PROXY_TLV.SSL_KEY_ALG]: "key_alg",
};

function tlvName(type: number): string {
  return TLV_NAMES[type] ?? `0x${hex2(type)}`;
}

/**
 * Decodes the TLVs a log shows, keyed by name: `alpn`, `authority`, `netns` as text, `crc32c`
 * and `unique_id` in hex, `ssl` as its fields, vendor types 0xE0-0xEF under their number
 * (`0xea`) in hex. A type sent more than once gives a list. NOOP and unknown types are left out.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { describeProxyTlvs } from "./header.ts";
 *
 * deepEqual(
 *   describeProxyTlvs([
 *     { type: 0x02, value: new TextEncoder().encode("example.test") },
 *     { type: 0xea, value: Uint8Array.of(1, 0x76, 0x70) },
 *     { type: 0x7f, value: Uint8Array.of(0) },
 *   ]),
 *   { authority: "example.test", "0xea": "017670" },
 * );
 * ```
 */
export function describeProxyTlvs(
  tlvs: ProxyTlv[],
): Record<string, ProxyTlvValue | ProxyTlvValue[]> {
  const described: Record<string, ProxyTlvValue | ProxyTlvValue[]> = {};
  for (const { type, value } of tlvs) {
    const decoded = describeTlv(type, value);
    if (decoded === undefined) continue;
    const name = tlvName(type);
    const seen = described[name];
    described[name] = seen === undefined
      ? decoded
      : [...(Array.isArray(seen) ? seen : [seen]), decoded];
  }
  return described;
}

function describeTlv(type: number, value: Uint8Array): ProxyTlvValue | undefined {
  switch (type) {
    case PROXY_TLV.ALPN:
    case PROXY_TLV.AUTHORITY:
    case PROXY_TLV.NETNS:
      return utf8.decode(value);
    case PROXY_TLV.CRC32C:
    case PROXY_TLV.UNIQUE_ID:
      return toHex(value);
    case PROXY_TLV.SSL:
      return describeSsl(value);
  }
  return type >= 0xe0 && type <= 0xef ? toHex(value) : undefined;
}

function describeSsl(value: Uint8Array): ProxySslInfo {
  const flags = value[0];
  const info: ProxySslInfo = {
    client: ["ssl", "cert-conn", "cert-sess"].filter((_, bit) => flags & (1 << bit)),
    verify: new DataView(value.buffer, value.byteOffset).getUint32(1),
  };
  for (const sub of readTlvs(value, 5, value.length, "SSL TLV")) {
    const field = SSL_FIELDS[sub.type];
    if (field) Object.assign(info, { [field]: utf8.decode(sub.value) });
  }
  return info;
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, hex2).join("");
}
