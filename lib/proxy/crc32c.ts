/**
 * CRC-32C (Castagnoli), the checksum of the PROXY protocol v2 `CRC32C` TLV.
 *
 * @module
 */

/** Table-driven, one byte at a time: headers are at most a few hundred bytes. */
const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * The CRC-32C of `bytes`, as an unsigned 32-bit number.
 *
 * @example The check value of the CRC catalogue
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { crc32c } from "./crc32c.ts";
 *
 * equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
 * ```
 */
export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
