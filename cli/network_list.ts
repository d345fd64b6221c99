/**
 * The value of `serve --proxy-trust`: a list of networks, checked without loading anything, so
 * that the command loads an address library only when it reads PROXY headers.
 *
 * @module
 */

import { UsageError } from "../lib/base/errors.ts";

const IPV4 = /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** True for an IPv6 address, as the URL parser reads one (no zone). */
function isIPv6(text: string): boolean {
  if (!text.includes(":") || !/^[\da-f:.]+$/i.test(text)) return false;
  try {
    new URL(`http://[${text}]/`);
    return true;
  } catch {
    return false;
  }
}

/**
 * `CIDR[,CIDR...]`: networks such as `10.0.0.0/8` or `2001:db8::/32`, a bare address standing
 * for itself; checked here without the address library, which only a PROXY server loads.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { networkList } from "./network_list.ts";
 *
 * deepEqual(networkList("10.0.0.0/8, 2001:db8::7", "--proxy-trust"), ["10.0.0.0/8", "2001:db8::7"]);
 * ```
 */
export function networkList(text: string, flag: string): string[] {
  return text.split(",").map((item) => {
    const network = item.trim();
    const [address, bits, extra] = network.split("/");
    const most = IPV4.test(address) ? 32 : isIPv6(address) ? 128 : -1;
    const prefixOk = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= most);
    if (most < 0 || !prefixOk || extra !== undefined) {
      throw new UsageError(
        `${flag} takes networks in CIDR notation separated by commas, such as ` +
          `10.0.0.0/8,2001:db8::/32, not '${network}'`,
      );
    }
    return network;
  });
}
