import { deepEqual, throws } from "node:assert/strict";
import { networkList } from "../../cli/network_list.ts";

Deno.test("--proxy-trust takes IPv4 and IPv6 networks and bare addresses, and nothing else", () => {
  deepEqual(
    networkList("127.0.0.1,10.0.0.0/8,::1,2001:db8::/32,::ffff:10.0.0.0/104", "--proxy-trust"),
    ["127.0.0.1", "10.0.0.0/8", "::1", "2001:db8::/32", "::ffff:10.0.0.0/104"],
  );
  for (
    const bad of [
      "10.0.0.0/33",
      "::/129",
      "256.0.0.1",
      "10.0.0/8",
      "example.com",
      "",
      "1.2.3.4/8/1",
      "fe80::1%eth0",
      "::1/",
    ]
  ) {
    throws(
      () => networkList(bad, "--proxy-trust"),
      /^UsageError: --proxy-trust takes networks in CIDR notation/,
      bad,
    );
  }
});
