/**
 * What happens on an echo server, as events: a connection accepted, secured, echoing, closed and
 * why; one refused for its PROXY header or turned away at the limit; a fault injected; a UDP
 * datagram. The TCP and UDP servers send them; the log, the stats and the metrics read them.
 *
 * @module
 */

import type { FaultKind } from "../faults/settings.ts";
import type { TlsDetails } from "../net/tls_server.ts";
import type { ProxyInfo } from "../proxy/reader.ts";

/**
 * Why a connection ended: the client closed or half-closed it (`eof`), reset or vanished
 * (`reset`), stayed silent past the idle timeout (`idle`), failed its TLS handshake (`tls`), was
 * cut by the server at the drain deadline or by `EchoServer.abort` (`shutdown`), was closed
 * (`closed`) or reset (`server-reset`) on request (`EchoServer.closeConnections`, the control
 * API's `POST /close`), a reset fault ended it (`fault`), or something else failed (`error`). On a server with a
 * handshake (TLS or PROXY): the client ended the connection before its first byte, as a TCP or
 * HAProxy health check does, or right after a PROXY LOCAL header (`health-check`); closed or
 * reset it during the handshake (`early`); or did not complete the TLS handshake in time
 * (`handshake-timeout`).
 */
export type CloseReason =
  | "eof"
  | "reset"
  | "idle"
  | "tls"
  | "shutdown"
  | "closed"
  | "server-reset"
  | "fault"
  | "error"
  | "health-check"
  | "early"
  | "handshake-timeout";

/** One open connection, as events describe it. */
export interface ConnectionInfo {
  /** 1 for the first connection the server accepted, 2 for the next, and so on. */
  readonly id: number;
  /** The client's address: the one its PROXY header names, when the server reads one. */
  readonly peer: Deno.Addr;
  /** What the connection's PROXY header said, when the server reads one. */
  readonly proxy?: ProxyInfo;
  /** What the TLS handshake showed, once it is done (TLS servers only). */
  readonly tls?: TlsDetails;
}

/** What happens on the server, in order, as it happens. */
export type EchoEvent =
  | { type: "connected"; conn: ConnectionInfo; open: number }
  /** The TLS handshake is done; `tls` says what it showed (also in `conn.tls` from now on). */
  | { type: "secured"; conn: ConnectionInfo; open: number; tls: TlsDetails }
  /** `data` is only valid during the callback: the buffer is reused for the next read. */
  | { type: "received"; conn: ConnectionInfo; open: number; data: Uint8Array }
  | { type: "sending"; conn: ConnectionInfo; open: number; bytes: number }
  | {
    type: "closed";
    conn: ConnectionInfo;
    open: number;
    reason: CloseReason;
    /** For `reset`, `idle`, `tls` and `error`: what went wrong, in a few words. */
    detail?: string;
  }
  /** A connection beyond `maxConnections`, closed at once without an id or any echo. */
  | { type: "rejected"; peer: Deno.Addr; open: number; limit: number }
  /**
   * A connection closed before any echo because its PROXY header was malformed, cut short, late
   * or missing; `conn.peer` is the proxy (or whoever connected), `reason` says what was wrong.
   */
  | { type: "proxy-refused"; conn: ConnectionInfo; open: number; reason: string }
  /** A fault was injected on the connection: `detail` says which, as a phrase. */
  | {
    type: "fault";
    conn: ConnectionInfo;
    open: number;
    fault: FaultKind;
    detail: string;
  }
  /** UDP: a fault was injected on datagram number `id` from `peer`. */
  | { type: "datagram-fault"; id: number; peer: Deno.Addr; fault: FaultKind; detail: string }
  /**
   * A connection ended before the server could accept it, as a health check's may: counted in
   * `closed["health-check"]`, never an error.
   */
  | { type: "health-check"; open: number }
  /** The last open connection closed: the server waits for the next one. */
  | { type: "idle" }
  /**
   * UDP: datagram number `id` arrived from `peer` and is echoed right away (later under a delay
   * fault), or not at all when `dropped`. `data` is only valid during the callback.
   */
  | {
    type: "datagram";
    id: number;
    peer: Deno.Addr;
    data: Uint8Array;
    /** Set when a fault drops the datagram: no echo follows. */
    dropped?: true;
  };
