/**
 * How the commands name a transport: `tcp`, `tls`, `unix` or `udp` in JSON, ` (TLS)` or ` (UDP)`
 * after an address in text, and the one warning `--insecure` earns.
 *
 * @module
 */

/** The transports, as JSON output names them. */
export type TransportName = "tcp" | "tls" | "unix" | "udp";

/**
 * The transport of an endpoint: a Unix socket path, TLS settings, or UDP; plain TCP otherwise.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { transportName } from "./transport_label.ts";
 *
 * equal(transportName({}), "tcp");
 * equal(transportName({ tls: {} }), "tls");
 * equal(transportName({ unix: "/tmp/echo.sock" }), "unix");
 * equal(transportName({}, true), "udp");
 * ```
 */
export function transportName(
  endpoint: { unix?: string; tls?: unknown },
  udp = false,
): TransportName {
  if (udp) return "udp";
  if (endpoint.unix !== undefined) return "unix";
  return endpoint.tls ? "tls" : "tcp";
}

/**
 * What follows an address in text output: ` (TLS)` or ` (UDP)`, with `detail` after a comma;
 * nothing for plain TCP, the default, nor for a Unix socket, whose path says it.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { transportLabel } from "./transport_label.ts";
 *
 * equal(`localhost port 4433${transportLabel("tls")}`, "localhost port 4433 (TLS)");
 * equal(transportLabel("tcp"), "");
 * ```
 */
export function transportLabel(name: TransportName, detail?: string): string {
  if (name !== "tls" && name !== "udp") return "";
  return ` (${name.toUpperCase()}${detail ? `, ${detail}` : ""})`;
}

/** The `transport` field of JSON output: absent for plain TCP, the default. */
export function transportField(name: TransportName): { transport?: TransportName } {
  return name === "tcp" ? {} : { transport: name };
}

/** Warns on standard error, once per run, that `--insecure` checks no certificate. */
export function warnIfInsecure(endpoint: { tls?: boolean | { insecure?: boolean } }): void {
  if (typeof endpoint.tls === "object" && endpoint.tls.insecure) {
    console.error("warning: --insecure: the server's certificate is not checked");
  }
}
