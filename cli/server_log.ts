/**
 * The server's log: the classic echo transcript, or one JSON object per event.
 *
 * @module
 */

import { formatBytesLiteral } from "../lib/base/bytes_literal.ts";
import { count } from "../lib/base/format.ts";
import type { ConnectionInfo, EchoEvent } from "../lib/server/events.ts";
import type { EchoStats } from "../lib/server/stats.ts";
import type { FaultSettings } from "../lib/faults/settings.ts";
import type { LineWriter } from "./line_writer.ts";
import { formatAddress, formatPeer } from "../lib/net/peer.ts";
import type { ProxyMode, ProxyTlv, ProxyTlvValue } from "../lib/proxy/header.ts";
import type { ProxyInfo } from "../lib/proxy/reader.ts";
import type { TlsDetails } from "../lib/net/tls_server.ts";
import { transportField, transportLabel } from "./transport_label.ts";

/** How much the log says, and how. */
export interface ServerLogOptions {
  /** `text`: the classic transcript; `json`: one JSON object per line. */
  format: "text" | "json";
  /** Only the start-up line, errors and the shutdown summary. */
  quiet: boolean;
  /** Where the log goes (standard output). */
  out: LineWriter;
  /** Where warnings and errors go (standard error). */
  err: LineWriter;
  /**
   * The number of the worker this log speaks for, when several serve the same port: every line
   * names it (`[w2 #5]` in text, `"worker": 2` in JSON), as connection numbers repeat across them.
   */
  worker?: number;
  /** Bytes of a UDP datagram per `received` line, like a stream server's reads. Default 16. */
  chunkSize?: number;
  /**
   * Given when the server reads PROXY headers: how the log describes a header's TLVs (lib's
   * `describeProxyTlvs`, passed in so that a server without PROXY never loads the codec). The
   * JSON summary then always counts the refused headers.
   */
  describeProxyTlvs?: DescribeProxyTlvs;
}

/** The TLVs of a PROXY header by name, as the log shows them. */
export type DescribeProxyTlvs = (
  tlvs: ProxyTlv[],
) => Record<string, ProxyTlvValue | ProxyTlvValue[]>;

/**
 * {@linkcode ServerLogOptions.describeProxyTlvs} for a server that reads PROXY headers in
 * `proxyProtocol` mode, or undefined for one that reads none: the codec is loaded only then.
 */
export async function proxyTlvsDescriber(
  proxyProtocol: ProxyMode | undefined,
): Promise<DescribeProxyTlvs | undefined> {
  if (proxyProtocol === undefined) return undefined;
  return (await import("../lib/proxy/header.ts")).describeProxyTlvs;
}

/** The faults a server injects, as its start-up line shows them. */
export interface InjectedFaults {
  /** The settings, as the JSON line gives them. */
  settings: Readonly<FaultSettings>;
  /** One phrase per fault, as the text line gives them. */
  description: string[];
}

/**
 * The log line that stands where a {@linkcode LineWriter} dropped lines because its output could
 * not keep up: a sentence in text form, an object in JSON form, so every JSON line still parses.
 */
export function droppedLinesNote(format: "text" | "json"): (dropped: number) => string {
  return format === "json"
    ? (dropped) =>
      JSON.stringify({ time: new Date().toISOString(), event: "dropped", lines: dropped })
    : (dropped) =>
      `(${count(dropped)} log line${dropped === 1 ? "" : "s"} dropped: the output was too slow)`;
}

/**
 * Writes the server's log. In text form, a single client gives exactly the classic transcript;
 * while more than one connection is open, each connection's lines start with `[#id]`.
 */
export class ServerLog {
  readonly #format: "text" | "json";
  readonly #out: LineWriter;
  readonly #err: LineWriter;
  readonly #worker?: number;
  readonly #chunkSize: number;
  readonly #describeProxyTlvs?: DescribeProxyTlvs;
  #datagrams = false;
  /** The per-event handler, or undefined when quiet, so the server skips per-chunk work. */
  readonly onEvent?: (event: EchoEvent) => void;

  constructor(options: ServerLogOptions) {
    this.#format = options.format;
    this.#out = options.out;
    this.#err = options.err;
    this.#worker = options.worker;
    this.#chunkSize = options.chunkSize ?? 16;
    // The server goes on without its log (a fixture whose reader went away): say so, once.
    this.#out.failed.then((err) => this.warn(`${err.message}: serving on without a log`));
    this.#describeProxyTlvs = options.describeProxyTlvs;
    if (!options.quiet) {
      this.onEvent = options.format === "json"
        ? (event) => this.#json(event)
        : (event) => this.#text(event);
    }
  }

  /**
   * The start-up line: where the server listens, with the host as the user named it, how many
   * workers share the port when there are several, the protocol when it is not plain TCP, and
   * for TLS the file holding the CA certificate that clients should trust, if one was made.
   */
  listening(
    host: string,
    addr: Deno.Addr,
    workers = 1,
    tls?: { caFile?: string },
    faults?: InjectedFaults,
  ): void {
    this.#datagrams = addr.transport === "udp";
    const transport = addr.transport === "unix" || addr.transport === "udp"
      ? addr.transport
      : tls
      ? "tls"
      : "tcp";
    if (this.#format === "json") {
      this.#jsonLine({
        event: "listening",
        address: formatAddress(addr),
        ...transportField(transport),
        workers: workers > 1 ? workers : undefined,
        ca_file: tls?.caFile,
        faults: faults?.settings,
      }, true);
      return;
    }
    const where = addr.transport === "tcp" || addr.transport === "udp"
      ? `${host} port ${addr.port}`
      : formatAddress(addr);
    const injected = faults ? ` with faults: ${faults.description.join(", ")}` : "";
    this.#out.line(
      `Starting up on ${where}${
        transportLabel(transport, tls?.caFile && `CA certificate in ${tls.caFile}`)
      }${workers > 1 ? ` with ${workers} workers` : ""}${injected}`,
      true,
    );
  }

  /** Where `--metrics` serves `/metrics`, `/healthz` and `/readyz`; shown even when quiet. */
  metricsAt(addr: Deno.NetAddr): void {
    if (this.#format === "json") {
      return this.#jsonLine({ event: "metrics", address: formatAddress(addr) }, true);
    }
    this.#out.line(`metrics at http://${formatAddress(addr)}/metrics, /healthz, /readyz`, true);
  }

  /**
   * Where the control API listens, and the seed of the faults it sets without one; shown even
   * when quiet.
   */
  controlAt(addr: Deno.NetAddr, seed: number): void {
    if (this.#format === "json") {
      return this.#jsonLine({ event: "control", address: formatAddress(addr), seed }, true);
    }
    this.#out.line(`control API at http://${formatAddress(addr)}/, faults on seed ${seed}`, true);
  }

  /** A change made through the control API, and who asked for it; shown even when quiet. */
  controlChange(peer: string, call: string, what: string): void {
    if (this.#format === "json") {
      return this.#jsonLine({ event: "control-change", peer, call, change: what }, true);
    }
    this.#out.line(`control: ${what} (${call} from ${peer})`, true);
  }

  /** A server-level failure that ended no connection; shown even when quiet. */
  error(message: string): void {
    if (this.#format === "json") this.#jsonLine({ event: "error", message }, true);
    else this.#err.line(`error: ${message}`, true);
  }

  /** A warning for the operator, on standard error. */
  warn(message: string): void {
    this.#err.line(`warning: ${message}`, true);
  }

  /**
   * The first signal with a shutdown delay: the server goes on accepting for `delay` ms while it
   * reports not ready, then drains. Shown even when quiet, on standard error.
   */
  stopping(delay: number): void {
    this.#err.line(
      `shutting down in ${seconds(delay)} s: still accepting, reporting not ready ` +
        "(send the signal again to stop now)",
      true,
    );
    if (this.#format === "json") this.#jsonLine({ event: "stopping", delay_s: delay / 1000 }, true);
  }

  /**
   * The listeners closed with `open` connections still open, which get up to `timeout` ms to end
   * by themselves; only said when there are some. Shown even when quiet, on standard error.
   */
  draining(open: number, timeout: number): void {
    if (open === 0) return;
    this.#err.line(
      `draining ${plural(open, "connection")} (up to ${seconds(timeout)} s; ` +
        "send the signal again to stop now)",
      true,
    );
    if (this.#format === "json") {
      this.#jsonLine({ event: "draining", open, timeout_s: timeout / 1000 }, true);
    }
  }

  /**
   * The one-line summary printed at shutdown. Connections the server cut (`closed.shutdown`) were
   * cut at the drain deadline, or at once by a second signal when `aborted`; those closed or
   * reset on request (the control API) are counted apart.
   */
  summary(stats: EchoStats, aborted = false): void {
    const cut = stats.closed.shutdown;
    const { closed, "server-reset": reset } = stats.closed;
    const faults = Object.entries(stats.faults).filter(([, injected]) => injected > 0);
    if (this.#format === "json") {
      this.#jsonLine({
        event: "shutdown",
        ...(this.#datagrams ? { datagrams: stats.datagrams } : { connections: stats.connections }),
        bytes_received: stats.bytesReceived,
        bytes_echoed: stats.bytesEchoed,
        bytes_discarded: stats.bytesDiscarded,
        rejected: stats.rejected,
        proxy_refused: this.#describeProxyTlvs || stats.proxyRefused > 0
          ? stats.proxyRefused
          : undefined,
        ...(this.#datagrams ? {} : { cut }),
        closed_on_request: closed > 0 ? closed : undefined,
        reset_on_request: reset > 0 ? reset : undefined,
        aborted: aborted || undefined,
        faults: faults.length > 0 ? Object.fromEntries(faults) : undefined,
      }, true);
    } else {
      const notes = [
        this.#datagrams
          ? plural(stats.datagrams, "datagram")
          : plural(stats.connections, "connection"),
        `${count(stats.bytesEchoed)} bytes echoed`,
        ...(cut > 0
          ? [
            `${count(cut)} cut ${aborted ? "by the second signal" : "at the drain deadline"}`,
          ]
          : []),
        ...(closed > 0 ? [`${count(closed)} closed on request`] : []),
        ...(reset > 0 ? [`${count(reset)} reset on request`] : []),
        ...(stats.bytesDiscarded > 0
          ? [`${count(stats.bytesDiscarded)} bytes sent after the cut dropped`]
          : []),
        ...(stats.rejected > 0
          ? [`${count(stats.rejected)} turned away at the connection limit`]
          : []),
        ...(stats.proxyRefused > 0
          ? [`${count(stats.proxyRefused)} dropped for a bad or missing PROXY header`]
          : []),
        ...(faults.length > 0
          ? [
            `faults injected: ${
              faults.map(([kind, injected]) => `${count(injected)} ${kind}`).join(", ")
            }`,
          ]
          : []),
      ];
      this.#out.line(`shut down: ${notes.join(", ")}`, true);
    }
  }

  /**
   * Writes lines another log already formatted, such as a worker's: `lines` ends in a newline,
   * and goes to standard error when `toErr`.
   */
  relay(lines: string, toErr = false): void {
    // Warnings and errors are kept even when a stalled output makes the log drop lines.
    (toErr ? this.#err : this.#out).line(lines.slice(0, -1), toErr);
  }

  /** Writes everything queued. */
  async flush(): Promise<void> {
    await Promise.all([this.#out.flush(), this.#err.flush()]);
  }

  #text(event: EchoEvent): void {
    const worker = this.#worker === undefined ? "" : `w${this.#worker}`;
    if (event.type === "idle") {
      const waiting = this.#datagrams ? "waiting for a datagram" : "waiting for a connection";
      return this.#out.line(`${worker ? `[${worker}] ` : ""}${waiting}`);
    }
    if (event.type === "rejected") {
      return this.#out.line(
        `${worker ? `[${worker}] ` : ""}turned away connection from ${formatPeer(event.peer)}: ` +
          `${count(event.limit)} connection${event.limit === 1 ? "" : "s"} already open`,
      );
    }
    if (event.type === "health-check") {
      return this.#out.line(
        `${worker ? `[${worker}] ` : ""}health check (ended before its accept)`,
      );
    }
    if (event.type === "datagram") {
      return this.#textDatagram(event.peer, event.data, event.dropped === undefined);
    }
    if (event.type === "datagram-fault") return this.#out.line(`fault: ${event.detail}`);
    const others = event.type === "closed" ? event.open : event.open - 1;
    const prefix = worker
      ? `[${worker} #${event.conn.id}] `
      : others > 0
      ? `[#${event.conn.id}] `
      : "";
    const out = this.#out;
    switch (event.type) {
      case "connected":
        return out.line(
          `${prefix}connection from ${describeClient(event.conn, this.#describeProxyTlvs)}`,
        );
      case "proxy-refused":
        return out.line(
          `${prefix}dropped connection from ${formatPeer(event.conn.peer)}: ${
            escapeControls(event.reason)
          }`,
        );
      case "secured":
        return out.line(`${prefix}${describeTls(event.tls)}`);
      case "received":
        return out.line(`${prefix}received ${formatBytesLiteral(event.data)}`);
      case "sending":
        return out.line(`${prefix}sending data back to the client`);
      case "fault":
        return out.line(`${prefix}fault: ${event.detail}`);
      case "closed":
        switch (event.reason) {
          case "health-check":
            return out.line(`${prefix}health check from ${formatPeer(event.conn.peer)}`);
          case "fault":
            return out.line(`${prefix}reset connection from ${formatPeer(event.conn.peer)}`);
          case "eof":
            out.line(`${prefix}no data from ${formatPeer(event.conn.peer)}`);
            return out.line(`${prefix}Closing current connection`);
          case "shutdown":
            return out.line(`${prefix}closing connection from ${formatPeer(event.conn.peer)}`);
          case "closed":
          case "server-reset":
            return out.line(
              `${prefix}${event.reason === "closed" ? "closing" : "resetting"} connection from ${
                formatPeer(event.conn.peer)
              } on request`,
            );
          case "idle":
            return out.line(
              `${prefix}closing idle connection from ${
                formatPeer(event.conn.peer)
              }: ${event.detail}`,
            );
          default:
            return out.line(
              `${prefix}lost connection from ${formatPeer(event.conn.peer)}: ${
                escapeControls(event.detail ?? "")
              }`,
            );
        }
    }
  }

  /** A datagram in the classic shape: its bytes in `chunkSize` pieces, then the echo if any. */
  #textDatagram(peer: Deno.Addr, data: Uint8Array, echoed: boolean): void {
    const out = this.#out;
    out.line(`datagram from ${formatPeer(peer)}`);
    let offset = 0;
    do {
      out.line(`received ${formatBytesLiteral(data.subarray(offset, offset + this.#chunkSize))}`);
      offset += this.#chunkSize;
    } while (offset < data.length);
    if (echoed) out.line("sending data back to the client");
  }

  #json(event: EchoEvent): void {
    switch (event.type) {
      case "idle":
        return this.#jsonLine({ event: "waiting" });
      case "health-check":
        return this.#jsonLine({ event: "health_check" });
      case "rejected":
        return this.#jsonLine({
          event: "rejected",
          peer: formatAddress(event.peer),
          open: event.open,
          limit: event.limit,
        });
      case "datagram-fault":
        return this.#jsonLine({
          datagram: event.id,
          peer: formatAddress(event.peer),
          event: "fault",
          fault: event.fault,
          detail: event.detail,
        });
      case "datagram":
        return this.#jsonLine({
          datagram: event.id,
          peer: formatAddress(event.peer),
          event: "datagram",
          bytes: event.data.length,
          data: formatBytesLiteral(event.data),
        });
    }
    const base = { conn: event.conn.id, peer: formatAddress(event.conn.peer) };
    switch (event.type) {
      case "connected":
        return this.#jsonLine({
          ...base,
          event: "connected",
          ...proxyFields(event.conn.proxy, this.#describeProxyTlvs),
        });
      case "proxy-refused":
        return this.#jsonLine({ ...base, event: "proxy_refused", reason: event.reason });
      case "fault":
        return this.#jsonLine({
          ...base,
          event: "fault",
          fault: event.fault,
          detail: event.detail,
        });
      case "secured":
        return this.#jsonLine({
          ...base,
          event: "tls",
          version: event.tls.version,
          cipher: event.tls.cipher,
          sni: event.tls.serverName,
          alpn: event.tls.alpn,
          client_subject: event.tls.clientSubject,
          handshake_ms: round(event.tls.handshakeMs),
        });
      case "received":
        return this.#jsonLine({
          ...base,
          event: "received",
          bytes: event.data.length,
          data: formatBytesLiteral(event.data),
        });
      case "sending":
        return this.#jsonLine({ ...base, event: "sending", bytes: event.bytes });
      case "closed":
        return this.#jsonLine({
          ...base,
          event: "closed",
          reason: event.reason,
          detail: event.detail,
        });
    }
  }

  #jsonLine(fields: Record<string, unknown>, keep = false): void {
    this.#out.line(
      JSON.stringify({ time: new Date().toISOString(), worker: this.#worker, ...fields }),
      keep,
    );
  }
}

/**
 * The client of a connection as the text log names it: its address, and behind a proxy also the
 * proxy's address and the TLVs the header carried.
 */
function describeClient(conn: ConnectionInfo, describeProxyTlvs?: DescribeProxyTlvs): string {
  const { proxy } = conn;
  if (!proxy || !describeProxyTlvs) return formatPeer(conn.peer);
  const { header } = proxy;
  const via = header.command === "LOCAL"
    ? ", the proxy itself (PROXY LOCAL)"
    : header.family === "UNSPEC"
    ? `, a client the PROXY header does not name`
    : ` via ${formatPeer(proxy.proxy)}`;
  const tlvs = Object.entries(describeProxyTlvs(header.tlvs)).flatMap(([name, value]) =>
    (Array.isArray(value) ? value : [value]).flatMap((one) => formatTlv(name, one))
  );
  return `${formatPeer(conn.peer)}${via}${tlvs.length > 0 ? ` (${tlvs.join(", ")})` : ""}`;
}

/** `name=value` pairs of a TLV for the text log; the SSL TLV gives one per field. */
function formatTlv(name: string, value: ProxyTlvValue): string[] {
  if (typeof value === "string") return [`${name}=${logText(value)}`];
  return Object.entries(value).map(([field, part]) =>
    `${name}.${field}=${logText(Array.isArray(part) ? part.join("+") : String(part))}`
  );
}

/**
 * Text that may hold what a peer chose (a certificate's subject, a refusal that quotes it) with
 * its control and bidirectional formatting characters as `\xNN` or `\uNNNN`, so that it can
 * neither forge a log line nor hide one.
 */
function escapeControls(text: string): string {
  // deno-lint-ignore no-control-regex -- control characters are exactly what must be escaped
  return text.replace(/[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** Text from a peer, quoted when it has spaces, quotes or control characters. */
function logText(text: string): string {
  return /^[\x21-\x7e]*$/.test(text) && !text.includes('"') ? text : JSON.stringify(text);
}

/** What the JSON `connected` event adds for a connection that came through a proxy. */
function proxyFields(
  proxy: ProxyInfo | undefined,
  describeProxyTlvs?: DescribeProxyTlvs,
): Record<string, unknown> {
  if (!proxy || !describeProxyTlvs) return {};
  const { header } = proxy;
  return {
    proxied_peer: header.command === "PROXY" && header.source
      ? formatAddress(header.source)
      : undefined,
    proxy: formatAddress(proxy.proxy),
    proxy_version: header.version,
    proxy_command: header.command,
    tlvs: header.version === 2 ? describeProxyTlvs(header.tlvs) : undefined,
  };
}

/** Milliseconds as seconds, without trailing zeros: 5000 -> "5", 2500 -> "2.5". */
function seconds(ms: number): string {
  return String(ms / 1000);
}

function plural(n: number, noun: string): string {
  return `${count(n)} ${noun}${n === 1 ? "" : "s"}`;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * A TLS handshake in one line: `TLS TLSv1.3 TLS_AES_128_GCM_SHA256, SNI localhost, ALPN echo,
 * client CN=alice, handshake 1.234 ms`.
 */
export function describeTls(tls: TlsDetails): string {
  return [
    `TLS ${tls.version} ${tls.cipher}`,
    `SNI ${escapeControls(tls.serverName ?? "none")}`,
    ...(tls.alpn === undefined ? [] : [`ALPN ${escapeControls(tls.alpn)}`]),
    ...(tls.clientSubject === undefined ? [] : [`client ${escapeControls(tls.clientSubject)}`]),
    `handshake ${round(tls.handshakeMs)} ms`,
  ].join(", ");
}
