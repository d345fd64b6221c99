/**
 * Whom a server believes a PROXY header from: the networks its proxies connect from, as nginx's
 * `set_real_ip_from`. Anyone else could claim any client address.
 *
 * @module
 */

import { ipaddr } from "../_deps/ipaddr.ts";

/**
 * The networks trusted without a list of one's own: loopback and the private ranges (RFC 1918,
 * IPv6 unique local), where a load balancer in front of the server usually sits, and never the
 * open internet. Unix sockets are always trusted: file permissions guard them.
 */
export const DEFAULT_PROXY_TRUST: readonly string[] = [
  "127.0.0.0/8",
  "::1/128",
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "fc00::/7",
];

/**
 * A test of whether a connection from `peer` may send a PROXY header: true when its address is in
 * one of `networks` (CIDR blocks such as `10.0.0.0/8` or `2001:db8::/32`; a bare address is a
 * block of one), or it came over a Unix socket. IPv4-mapped IPv6 addresses count as IPv4. Throws
 * a `RangeError` for a block that is not CIDR.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { proxyTrust } from "./trust.ts";
 *
 * const trusted = proxyTrust(["10.0.0.0/8", "2001:db8::7"]);
 * equal(trusted({ transport: "tcp", hostname: "10.1.2.3", port: 4242 }), true);
 * equal(trusted({ transport: "tcp", hostname: "::ffff:10.1.2.3", port: 4242 }), true);
 * equal(trusted({ transport: "tcp", hostname: "203.0.113.9", port: 4242 }), false);
 * equal(trusted({ transport: "tcp", hostname: "2001:db8::7", port: 4242 }), true);
 * ```
 */
export function proxyTrust(networks: readonly string[]): (peer: Deno.Addr) => boolean {
  const blocks = networks.map((network) => {
    try {
      return network.includes("/")
        ? ipaddr.parseCIDR(network)
        : ipaddr.parseCIDR(`${network}/${ipaddr.parse(network).kind() === "ipv4" ? 32 : 128}`);
    } catch {
      throw new RangeError(`not a network in CIDR notation: '${network}'`);
    }
  });
  return (peer) => {
    if (peer.transport !== "tcp" && peer.transport !== "udp") return true;
    let address: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      address = ipaddr.process(peer.hostname);
    } catch {
      return false;
    }
    return blocks.some(([range, bits]) =>
      range.kind() === address.kind() && address.match(range, bits)
    );
  };
}
