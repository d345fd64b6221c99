/**
 * The flags of `send` and `bench` that send a PROXY protocol header first on every connection,
 * as a proxy or load balancer does, turned into the header to send.
 *
 * @module
 */

import { isIPv4, isIPv6 } from "node:net";
import { oneOf } from "./args.ts";
import { type FlagValues, option, toggle } from "./flags.ts";
import { UsageError } from "../lib/base/errors.ts";
import { PROXY_TLV, type ProxyHeaderInit, type ProxyTlv } from "../lib/proxy/header.ts";

/** `ADDR:PORT` with an IP literal, IPv6 in brackets: `203.0.113.7:4242`, `[2001:db8::7]:443`. */
function socketAddress(text: string, flag: string): Deno.NetAddr {
  const match = text.match(/^(?:\[([^\]]*)\]|([^:]*)):(\d{1,5})$/);
  const hostname = match?.[1] ?? match?.[2] ?? "";
  const port = Number(match?.[3]);
  const valid = match?.[1] !== undefined ? isIPv6(hostname) : isIPv4(hostname);
  if (!match || !valid || port > 65535) {
    throw new UsageError(
      `${flag} must be an IP address and port, such as 203.0.113.7:4242 or [2001:db8::7]:443, ` +
        `not '${text}'`,
    );
  }
  return { transport: "tcp", hostname, port };
}

const TLV_TYPES: Record<string, number> = {
  alpn: PROXY_TLV.ALPN,
  authority: PROXY_TLV.AUTHORITY,
  crc32c: PROXY_TLV.CRC32C,
  noop: PROXY_TLV.NOOP,
  unique_id: PROXY_TLV.UNIQUE_ID,
  ssl: PROXY_TLV.SSL,
  netns: PROXY_TLV.NETNS,
};

/** `TYPE=HEX[,TYPE=HEX...]`, each TYPE a byte (`0xea`, `234`) or a name (`alpn`). */
function tlvList(text: string, flag: string): ProxyTlv[] {
  return text.split(",").map((item) => {
    const [name, hex, extra] = item.split("=");
    const type = TLV_TYPES[name.toLowerCase()] ??
      (/^(0x[\da-f]{1,2}|\d{1,3})$/i.test(name) ? Number(name) : NaN);
    if (extra !== undefined || hex === undefined || !(type <= 0xff)) {
      throw new UsageError(
        `${flag} takes TYPE=HEX pairs separated by commas, TYPE a byte such as 0xea or a name ` +
          `(${Object.keys(TLV_TYPES).join(", ")}), not '${item}'`,
      );
    }
    if (!/^([\da-f]{2})*$/i.test(hex)) {
      throw new UsageError(
        `${flag}: the value of ${name} must be hex digits in pairs, not '${hex}'`,
      );
    }
    const value = Uint8Array.from(hex.match(/../g) ?? [], (byte) => parseInt(byte, 16));
    return { type, value };
  });
}

/** The PROXY flags of `send` and `bench`. */
export const SEND_PROXY_FLAGS = {
  "send-proxy": option({
    value: "VERSION",
    help: "send a PROXY protocol header (v1 or v2) first on every connection, before TLS, as " +
      "a proxy does",
    absent: "off",
    parse: oneOf("v1", "v2"),
  }),
  "proxy-source": option({
    value: "ADDRESS",
    help: "with --send-proxy: the client the header claims, IP:PORT with IPv6 in brackets " +
      "(203.0.113.7:4242, [2001:db8::7]:4242)",
    absent: "the connection's own address",
    parse: socketAddress,
  }),
  "proxy-dest": option({
    value: "ADDRESS",
    help: "with --send-proxy: the IP:PORT the header says the client connected to",
    absent: "the server's address",
    parse: socketAddress,
  }),
  "proxy-tlv": option({
    value: "TLVS",
    help: "with --send-proxy v2: TLVs to send as TYPE=HEX,TYPE=HEX..., TYPE a byte (0xea) or " +
      "a name (alpn, authority, crc32c, unique_id, ssl, netns), the value in hex; crc32c gets " +
      "the header's checksum",
    parse: tlvList,
  }),
  "proxy-local": toggle({
    help: "with --send-proxy v2: send the LOCAL command (the proxy speaking for itself, as a " +
      "health check does) instead of PROXY",
  }),
};

/**
 * The header the flags ask for, or undefined without `--send-proxy`; refuses flags that need
 * `--send-proxy`, or its version 2, without them.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { proxyHeaderFromFlags } from "./proxy_flags.ts";
 *
 * deepEqual(proxyHeaderFromFlags("send", { "send-proxy": "v2", "proxy-local": true }), {
 *   version: 2,
 *   command: "LOCAL",
 *   source: undefined,
 *   destination: undefined,
 *   tlvs: undefined,
 * });
 * ```
 */
export function proxyHeaderFromFlags(
  command: string,
  values: Partial<FlagValues<typeof SEND_PROXY_FLAGS>>,
): ProxyHeaderInit | undefined {
  const version = values["send-proxy"];
  const given = (["proxy-source", "proxy-dest", "proxy-tlv", "proxy-local"] as const)
    .filter((name) => values[name] !== undefined && values[name] !== false);
  const usage = (message: string) => new UsageError(`${message} (see 'tcpecho ${command} --help')`);
  if (version === undefined) {
    if (given.length > 0) throw usage(`--${given[0]} needs --send-proxy`);
    return undefined;
  }
  const v2Only = given.find((name) => name === "proxy-tlv" || name === "proxy-local");
  if (version === "v1" && v2Only) throw usage(`--${v2Only} needs --send-proxy v2`);
  const address = given.find((name) => name === "proxy-source" || name === "proxy-dest");
  if (values["proxy-local"] && address) {
    throw usage(`--proxy-local sends no client address: drop --${address}`);
  }
  return {
    version: version === "v1" ? 1 : 2,
    command: values["proxy-local"] ? "LOCAL" : "PROXY",
    source: values["proxy-source"],
    destination: values["proxy-dest"],
    tlvs: values["proxy-tlv"],
  };
}
