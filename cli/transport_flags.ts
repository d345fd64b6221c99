/**
 * The transport flags the subcommands share (`--host`, `--port`, `--unix`, `--udp` and the TLS
 * flags), checked for combinations that make no sense and turned into {@linkcode ListenOptions}
 * or {@linkcode ConnectOptions}.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import type { ParsedArgs } from "./args.ts";
import { parsePort } from "./args.ts";
import { UsageError } from "../lib/errors.ts";
import { readTextInput } from "./read_input.ts";
import { type ConnectOptions, DEFAULT_PORT, type ListenOptions } from "../lib/transport.ts";

const COMMON_FLAGS: ParseArgsOptionsConfig = {
  host: { type: "string" },
  port: { type: "string", short: "p" },
  unix: { type: "string" },
  udp: { type: "boolean" },
};

/** The `parseArgs` configuration of a server's transport flags. */
export const SERVER_TRANSPORT_FLAGS: ParseArgsOptionsConfig = {
  ...COMMON_FLAGS,
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
};

/** The `parseArgs` configuration of a client's transport flags. */
export const CLIENT_TRANSPORT_FLAGS: ParseArgsOptionsConfig = {
  ...COMMON_FLAGS,
  tls: { type: "boolean" },
  ca: { type: "string" },
  insecure: { type: "boolean" },
};

/** A transport chosen on the command line: a stream endpoint, or UDP when `udp` is set. */
export interface ChosenTransport<T> {
  /** Where to listen or connect. */
  endpoint: T;
  /** UDP instead of a stream. */
  udp: boolean;
}

/**
 * The server's transport from parsed flags; reads the certificate and key files.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { serverTransport } from "./transport_flags.ts";
 *
 * deepEqual(await serverTransport("serve", { unix: "/tmp/echo.sock" }), {
 *   endpoint: { unix: "/tmp/echo.sock" },
 *   udp: false,
 * });
 * ```
 */
export async function serverTransport(
  command: string,
  values: ParsedArgs["values"],
): Promise<ChosenTransport<ListenOptions>> {
  const certFile = values["tls-cert"] as string | undefined;
  const keyFile = values["tls-key"] as string | undefined;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw usage(command, "--tls-cert and --tls-key go together: give both");
  }
  const { endpoint, udp } = commonTransport(command, values, certFile ? "--tls-cert" : undefined);
  if (certFile === undefined || keyFile === undefined) return { endpoint, udp };
  const tls = {
    cert: await readTextInput(certFile, "TLS certificate"),
    key: await readTextInput(keyFile, "TLS key"),
  };
  return { endpoint: { ...endpoint, tls }, udp };
}

/**
 * The client's transport from parsed flags; reads the `--ca` file.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { clientTransport } from "./transport_flags.ts";
 *
 * deepEqual(await clientTransport("send", { host: "::1", port: "7", tls: true, insecure: true }), {
 *   endpoint: { hostname: "::1", port: 7, tls: { insecure: true } },
 *   udp: false,
 * });
 * ```
 */
export async function clientTransport(
  command: string,
  values: ParsedArgs["values"],
): Promise<ChosenTransport<ConnectOptions>> {
  const caFile = values.ca as string | undefined;
  const insecure = values.insecure === true;
  if (!values.tls && (caFile !== undefined || insecure)) {
    throw usage(command, `${caFile !== undefined ? "--ca" : "--insecure"} needs --tls`);
  }
  if (caFile !== undefined && insecure) {
    throw usage(command, "give either --ca or --insecure, not both");
  }
  const { endpoint, udp } = commonTransport(command, values, values.tls ? "--tls" : undefined);
  if (!values.tls) return { endpoint, udp };
  const tls = insecure
    ? { insecure }
    : caFile === undefined
    ? {}
    : { caCerts: [await readTextInput(caFile, "CA certificate")] };
  return { endpoint: { ...endpoint, tls }, udp };
}

function commonTransport(
  command: string,
  values: ParsedArgs["values"],
  tlsFlag: string | undefined,
): ChosenTransport<Pick<ListenOptions, "hostname" | "port" | "unix">> {
  const unix = values.unix as string | undefined;
  const udp = values.udp === true;
  if (unix !== undefined) {
    const tcpFlag = values.host !== undefined
      ? "--host"
      : values.port !== undefined
      ? "--port"
      : "";
    if (tcpFlag) throw usage(command, `--unix and ${tcpFlag} do not go together`);
    if (udp) throw usage(command, "--unix and --udp do not go together");
    if (unix === "") throw usage(command, "--unix needs a path");
  }
  if (tlsFlag && (udp || unix !== undefined)) {
    throw usage(command, `${tlsFlag} works over TCP only, not with ${udp ? "--udp" : "--unix"}`);
  }
  if (unix !== undefined) return { endpoint: { unix }, udp };
  const hostname = (values.host as string | undefined) ?? "localhost";
  const port = values.port === undefined ? DEFAULT_PORT : parsePort(values.port as string);
  return { endpoint: { hostname, port }, udp };
}

function usage(command: string, message: string): UsageError {
  return new UsageError(`${message} (see 'tcpecho ${command} --help')`);
}
