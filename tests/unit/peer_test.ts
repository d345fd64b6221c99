import { equal } from "node:assert/strict";
import { formatAddress, formatPeer } from "../../lib/net/peer.ts";

Deno.test("formatPeer writes addresses as Python's socket address tuples", () => {
  equal(
    formatPeer({ transport: "tcp", hostname: "127.0.0.1", port: 49964 }),
    "('127.0.0.1', 49964)",
  );
  equal(formatPeer({ transport: "tcp", hostname: "::1", port: 49964 }), "('::1', 49964, 0, 0)");
  equal(formatPeer({ transport: "unix", path: "/tmp/echo.sock" }), "'/tmp/echo.sock'");
  equal(formatPeer({ transport: "unix", path: "" }), "''");
  equal(formatPeer({ transport: "unix", path: "/tmp/it's\n" }), "'/tmp/it\\'s\\n'");
});

Deno.test("formatAddress writes host:port, brackets IPv6, and paths as they are", () => {
  equal(formatAddress({ transport: "tcp", hostname: "127.0.0.1", port: 7 }), "127.0.0.1:7");
  equal(formatAddress({ transport: "tcp", hostname: "::1", port: 7 }), "[::1]:7");
  equal(formatAddress({ transport: "unix", path: "/tmp/echo.sock" }), "/tmp/echo.sock");
});
