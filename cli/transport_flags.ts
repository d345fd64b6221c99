/**
 * The transport flags the subcommands share (`--host`, `--port`, `--unix`, `--udp` and the TLS
 * flags), declared once for servers and once for clients, checked for combinations that make no
 * sense and turned into {@linkcode ListenOptions} or {@linkcode ConnectOptions}. The certificate
 * checks are loaded only when TLS is asked for.
 *
 * @module
 */

import { alpnList, anyText, duration, hostAndPort, portNumber } from "./args.ts";
import { type FlagValues, option, toggle } from "./flags.ts";
import { errorReason, RuntimeError, UsageError } from "../lib/base/errors.ts";
import { readTextInput } from "./read_input.ts";
import { DEFAULT_PORT, type ListenOptions, MAX_UDP_PAYLOAD } from "../lib/net/transport.ts";
import type { ConnectOptions, TlsClientOptions } from "../lib/client/connect.ts";

/** The host name used without `--host`. */
const DEFAULT_HOST = "localhost";

/** The longest Unix socket path, in bytes: `sun_path` holds 108 on Linux, 104 elsewhere, with its NUL. */
const MAX_UNIX_PATH = Deno.build.os === "linux" ? 107 : 103;

/** The transport flags of `serve`. */
export const SERVER_TRANSPORT_FLAGS = {
  host: option({
    value: "HOST",
    help: "address to listen on: a name, an IPv4 or an IPv6 address such as ::1 " +
      "(HOST:PORT and [IPV6]:PORT also work); 0.0.0.0 or :: opens the port to the network",
    absent: DEFAULT_HOST,
    parse: hostAndPort(0),
  }),
  port: option({
    short: "p",
    value: "PORT",
    help: "port to listen on, 0 for any free port",
    absent: String(DEFAULT_PORT),
    parse: portNumber(0),
  }),
  unix: option({
    value: "PATH",
    help: "listen on a Unix domain socket instead of TCP; an existing file at PATH is never " +
      "replaced (remove a stale one yourself); the socket file is removed at shutdown; " +
      "deno needs --allow-read=PATH --allow-write=PATH --allow-net=unix:PATH",
    parse: anyText,
  }),
  "tls-cert": option({
    value: "FILE",
    help: "speak TLS with this certificate chain (PEM, leaf first)",
    parse: anyText,
  }),
  "tls-key": option({ value: "FILE", help: "the private key of --tls-cert (PEM)", parse: anyText }),
  "tls-self-signed": toggle({
    help: "speak TLS with a throw-away CA and a certificate it signs for --host and loopback, " +
      "made at start-up (for tests and demos); clients trust it with --ca FILE from --tls-ca-out",
  }),
  "tls-ca-out": option({
    value: "FILE",
    help: "with --tls-self-signed: write the CA certificate to FILE (named on the start-up line)",
    absent: "a new file in the temporary directory, removed at shutdown",
    parse: anyText,
  }),
  "tls-client-ca": option({
    value: "FILE",
    help: "mutual TLS: require a client certificate signed by a CA certificate in FILE (PEM) " +
      "and log its subject",
    parse: anyText,
  }),
  alpn: option({
    value: "LIST",
    help: "with TLS: the ALPN protocols agreed to, by preference, separated by commas (h2,echo)",
    parse: alpnList,
  }),
  "tls-handshake-timeout": option({
    value: "TIME",
    help: "with TLS: how long a client has to complete its handshake before it is closed " +
      "(counted in /metrics), so that a silent client holds no slot",
    default: "10",
    parse: duration(),
  }),
  udp: toggle({
    help: "echo UDP datagrams instead (RFC 862): each one is sent back whole to its sender; " +
      "needs deno --unstable-net",
  }),
};

/** The transport flags of `send` and `bench`. */
export const CLIENT_TRANSPORT_FLAGS = {
  host: option({
    value: "HOST",
    help: "server to connect to: a name, an IPv4 or an IPv6 address " +
      "(HOST:PORT and [IPV6]:PORT also work)",
    absent: DEFAULT_HOST,
    parse: hostAndPort(1),
  }),
  port: option({
    short: "p",
    value: "PORT",
    help: "port to connect to",
    absent: String(DEFAULT_PORT),
    parse: portNumber(1),
  }),
  ipv4: toggle({
    short: "4",
    help: "connect over IPv4 only (without -4 or -6, every address of the name is tried, " +
      "both families taking turns)",
  }),
  ipv6: toggle({ short: "6", help: "connect over IPv6 only" }),
  unix: option({
    value: "PATH",
    help: "connect to a Unix domain socket instead of TCP",
    parse: anyText,
  }),
  tls: toggle({ help: "speak TLS; the server's certificate must chain to a trusted root" }),
  ca: option({
    value: "FILE",
    help: "with --tls: also trust this CA certificate (PEM)",
    parse: anyText,
  }),
  insecure: toggle({
    help: "with --tls: accept any certificate (encrypts, but proves nothing about the server; " +
      "for tests only)",
  }),
  "tls-cert": option({
    value: "FILE",
    help: "with --tls: present this client certificate chain (PEM, leaf first) to a server " +
      "that asks for one (mutual TLS)",
    parse: anyText,
  }),
  "tls-key": option({ value: "FILE", help: "the private key of --tls-cert (PEM)", parse: anyText }),
  alpn: option({
    value: "LIST",
    help: "with --tls: offer these ALPN protocols, separated by commas (h2,echo)",
    parse: alpnList,
  }),
  udp: toggle({
    help:
      `send the message as one UDP datagram (at most ${MAX_UDP_PAYLOAD} bytes) and check the datagram ` +
      "that comes back; needs deno --unstable-net",
  }),
};

type ServerTransportValues = Partial<FlagValues<typeof SERVER_TRANSPORT_FLAGS>>;
type ClientTransportValues = Partial<FlagValues<typeof CLIENT_TRANSPORT_FLAGS>>;

/** A transport chosen on the command line: a stream endpoint, or UDP when `udp` is set. */
export interface ChosenTransport<T> {
  /** Where to listen or connect. */
  endpoint: T;
  /** UDP instead of a stream. */
  udp: boolean;
}

/** A server's transport, with what `--tls-self-signed` made and what the operator should know. */
export interface ServerTransport extends ChosenTransport<ListenOptions> {
  /** With `--tls-self-signed`: where the CA certificate was written. */
  caFile?: string;
  /** True when `caFile` is a temporary file to remove at shutdown. */
  caFileTemporary?: boolean;
  /** Things to warn about at start-up, such as a CA certificate used as the server's. */
  warnings: string[];
}

/**
 * The server's transport from parsed flags; reads and checks the certificate and key files, or
 * makes throw-away ones for `--tls-self-signed` and writes their CA certificate out.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { serverTransport } from "./transport_flags.ts";
 *
 * deepEqual(await serverTransport("serve", { unix: "/tmp/echo.sock" }), {
 *   endpoint: { unix: "/tmp/echo.sock" },
 *   udp: false,
 *   warnings: [],
 * });
 * ```
 */
export async function serverTransport(
  command: string,
  values: ServerTransportValues,
): Promise<ServerTransport> {
  const certFile = values["tls-cert"];
  const keyFile = values["tls-key"];
  const selfSigned = values["tls-self-signed"] === true;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw usage(command, "--tls-cert and --tls-key go together: give both");
  }
  if (selfSigned && certFile !== undefined) {
    throw usage(command, "give either --tls-self-signed or --tls-cert and --tls-key, not both");
  }
  const tlsFlag = certFile !== undefined ? "--tls-cert" : selfSigned ? "--tls-self-signed" : "";
  for (const flag of ["tls-client-ca", "alpn"] as const) {
    if (values[flag] !== undefined && !tlsFlag) {
      throw usage(
        command,
        `--${flag} needs TLS: add --tls-cert and --tls-key, or --tls-self-signed`,
      );
    }
  }
  if (values["tls-ca-out"] !== undefined && !selfSigned) {
    throw usage(command, "--tls-ca-out goes with --tls-self-signed");
  }
  const { endpoint, udp } = commonTransport(command, values, tlsFlag || undefined);
  if (!tlsFlag) return { endpoint, udp, warnings: [] };
  const clientCaFile = values["tls-client-ca"];
  const settings = {
    ...(clientCaFile === undefined ? {} : {
      clientCa: await checkedCertificates(
        await readTextInput(clientCaFile, "client CA certificate"),
        clientCaFile,
        "--tls-client-ca",
      ),
    }),
    ...(values.alpn === undefined ? {} : { alpn: values.alpn }),
    handshakeTimeout: values["tls-handshake-timeout"],
  };
  if (certFile !== undefined && keyFile !== undefined) {
    const files = { certFile: `${certFile} (--tls-cert)`, keyFile: `${keyFile} (--tls-key)` };
    const tls = {
      cert: await readTextInput(certFile, "TLS certificate"),
      key: await readTextInput(keyFile, "TLS key"),
      ...settings,
    };
    const { checkCertifiedKey, serverCertificateProblem } = await import(
      "../lib/net/certificates.ts"
    );
    const problem = serverCertificateProblem(checkCertifiedKey({ ...tls, ...files }), certFile);
    return { endpoint: { ...endpoint, tls }, udp, warnings: problem ? [problem] : [] };
  }
  // Loaded only when asked for: the X.509 library is large, and every other start skips it.
  const { LOOPBACK_NAMES, makeSelfSignedCertificates } = await import("../lib/net/self_signed.ts");
  const host = endpoint.hostname ?? DEFAULT_HOST;
  const names = [...(isWildcard(host) ? [] : [host]), ...LOOPBACK_NAMES];
  const { caCert, cert, key } = await makeSelfSignedCertificates({ names });
  const caOut = values["tls-ca-out"];
  const caFile = caOut ?? await makeTempCaFile();
  try {
    await Deno.writeTextFile(caFile, caCert);
  } catch (err) {
    const reason = err instanceof Deno.errors.NotCapable
      ? `missing permission, run deno with --allow-write=${caFile}`
      : errorReason(err);
    throw new RuntimeError(`cannot write the CA certificate to '${caFile}': ${reason}`);
  }
  return {
    endpoint: { ...endpoint, tls: { cert, key, ...settings } },
    udp,
    caFile,
    caFileTemporary: caOut === undefined,
    warnings: [],
  };
}

async function makeTempCaFile(): Promise<string> {
  try {
    return await Deno.makeTempFile({ prefix: "tcpecho-ca-", suffix: ".pem" });
  } catch (err) {
    const reason = err instanceof Deno.errors.NotCapable
      ? "missing permission to write to the temporary directory: run deno with --allow-write, " +
        "or name the file with --tls-ca-out FILE and --allow-write=FILE"
      : errorReason(err);
    throw new RuntimeError(`cannot make a file for the CA certificate: ${reason}`);
  }
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}

/** `text` if it holds a certificate; a one-line error naming `file` and `flag` if not. */
async function checkedCertificates(text: string, file: string, flag: string): Promise<string> {
  const { parseCertificates } = await import("../lib/net/certificates.ts");
  parseCertificates(text, `${file} (${flag})`);
  return text;
}

/**
 * The client's transport from parsed flags; reads and checks the `--ca`, `--tls-cert` and
 * `--tls-key` files.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { clientTransport } from "./transport_flags.ts";
 *
 * deepEqual(await clientTransport("send", { host: { hostname: "::1", port: 7 }, tls: true, insecure: true }), {
 *   endpoint: { hostname: "::1", port: 7, tls: { insecure: true } },
 *   udp: false,
 * });
 * ```
 */
export async function clientTransport(
  command: string,
  values: ClientTransportValues,
): Promise<ChosenTransport<ConnectOptions>> {
  const caFile = values.ca;
  const insecure = values.insecure === true;
  const certFile = values["tls-cert"];
  const keyFile = values["tls-key"];
  const tlsOnly = caFile !== undefined
    ? "--ca"
    : insecure
    ? "--insecure"
    : certFile !== undefined
    ? "--tls-cert"
    : keyFile !== undefined
    ? "--tls-key"
    : values.alpn !== undefined
    ? "--alpn"
    : undefined;
  if (!values.tls && tlsOnly) throw usage(command, `${tlsOnly} needs --tls`);
  if (caFile !== undefined && insecure) {
    throw usage(command, "give either --ca or --insecure, not both");
  }
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw usage(command, "--tls-cert and --tls-key go together: give both");
  }
  const { endpoint: where, udp } = commonTransport(
    command,
    values,
    values.tls ? "--tls" : undefined,
  );
  const family = addressFamily(command, values, where.unix !== undefined || udp);
  const endpoint = family === undefined ? where : { ...where, family };
  if (!values.tls) return { endpoint, udp };
  const tls: TlsClientOptions = insecure ? { insecure } : {};
  if (caFile !== undefined) {
    tls.caCerts = [
      await checkedCertificates(await readTextInput(caFile, "CA certificate"), caFile, "--ca"),
    ];
  }
  if (certFile !== undefined && keyFile !== undefined) {
    tls.cert = await readTextInput(certFile, "TLS certificate");
    tls.key = await readTextInput(keyFile, "TLS key");
    const { checkCertifiedKey } = await import("../lib/net/certificates.ts");
    checkCertifiedKey({
      cert: tls.cert,
      key: tls.key,
      certFile: `${certFile} (--tls-cert)`,
      keyFile: `${keyFile} (--tls-key)`,
    });
  }
  if (values.alpn !== undefined) tls.alpn = values.alpn;
  return { endpoint: { ...endpoint, tls }, udp };
}

/** The IP version `-4` or `-6` asks for: only one of them, and only over TCP. */
function addressFamily(
  command: string,
  values: ClientTransportValues,
  notTcp: boolean,
): 4 | 6 | undefined {
  if (values.ipv4 && values.ipv6) throw usage(command, "give either -4 or -6, not both");
  const family = values.ipv4 ? 4 : values.ipv6 ? 6 : undefined;
  if (family !== undefined && notTcp) {
    throw usage(command, `-${family} chooses a TCP address: leave it out with --unix or --udp`);
  }
  return family;
}

function commonTransport(
  command: string,
  values: ServerTransportValues & ClientTransportValues,
  tlsFlag: string | undefined,
): ChosenTransport<Pick<ListenOptions, "hostname" | "port" | "unix">> {
  const unix = values.unix;
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
  // Without the unstable API the library would fail only once it tries; this is how it was run.
  if (udp && !("listenDatagram" in Deno)) {
    throw new UsageError("--udp needs the --unstable-net flag: deno run --unstable-net ...");
  }
  if (unix !== undefined) {
    const bytes = new TextEncoder().encode(unix).length;
    if (bytes > MAX_UNIX_PATH) {
      throw usage(
        command,
        `the --unix path is ${bytes} bytes long: a Unix socket path can have at most ` +
          `${MAX_UNIX_PATH} bytes, so choose a shorter one`,
      );
    }
    return { endpoint: { unix }, udp };
  }
  if (values.host?.port !== undefined && values.port !== undefined) {
    throw usage(command, "give the port once: in --host HOST:PORT or with --port, not both");
  }
  const hostname = values.host?.hostname ?? DEFAULT_HOST;
  const port = values.host?.port ?? values.port ?? DEFAULT_PORT;
  return { endpoint: { hostname, port }, udp };
}

function usage(command: string, message: string): UsageError {
  return new UsageError(`${message} (see 'tcpecho ${command} --help')`);
}
