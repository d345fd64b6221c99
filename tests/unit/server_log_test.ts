import { deepEqual, equal } from "node:assert/strict";
import type { ConnectionInfo, EchoEvent } from "../../lib/server/events.ts";
import { noStats } from "../../lib/server/stats.ts";
import { ServerLog, type ServerLogOptions } from "../../cli/server_log.ts";
import { LineWriter } from "../../cli/line_writer.ts";
import { describeProxyTlvs } from "../../lib/proxy/header.ts";

/** A ServerLog writing into strings. */
function logInto(options: Partial<ServerLogOptions> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const into = (lines: string[]) =>
    new LineWriter({
      write: (
        bytes,
      ) => (lines.push(new TextDecoder().decode(bytes)), Promise.resolve(bytes.length)),
    });
  const log = new ServerLog({
    format: "text",
    quiet: false,
    out: into(out),
    err: into(err),
    ...options,
  });
  return {
    log,
    async lines() {
      await log.flush();
      return {
        out: out.join("").split("\n").slice(0, -1),
        err: err.join("").split("\n").slice(0, -1),
      };
    },
  };
}

const conn = (id: number, port: number): ConnectionInfo => ({
  id,
  peer: { transport: "tcp", hostname: "127.0.0.1", port },
});
const A = conn(1, 5001);
const B = conn(2, 5002);
const data = (s: string) => new TextEncoder().encode(s);

Deno.test("ServerLog tags lines with [#id] only while more than one connection is open", async () => {
  const { log, lines } = logInto();
  const events: EchoEvent[] = [
    { type: "idle" },
    { type: "connected", conn: A, open: 1 },
    { type: "received", conn: A, open: 1, data: data("a") },
    { type: "connected", conn: B, open: 2 },
    { type: "received", conn: B, open: 2, data: data("b") },
    { type: "sending", conn: B, open: 2, bytes: 1 },
    { type: "closed", conn: A, open: 1, reason: "reset", detail: "connection reset by peer" },
    { type: "received", conn: B, open: 1, data: data("") },
    { type: "closed", conn: B, open: 0, reason: "eof" },
    { type: "idle" },
  ];
  events.forEach((event) => log.onEvent!(event));
  deepEqual((await lines()).out, [
    "waiting for a connection",
    "connection from ('127.0.0.1', 5001)",
    "received b'a'",
    "[#2] connection from ('127.0.0.1', 5002)",
    "[#2] received b'b'",
    "[#2] sending data back to the client",
    "[#1] lost connection from ('127.0.0.1', 5001): connection reset by peer",
    "received b''",
    "no data from ('127.0.0.1', 5002)",
    "Closing current connection",
    "waiting for a connection",
  ]);
});

Deno.test("ServerLog says when shutdown closed a connection, and sums up", async () => {
  const { log, lines } = logInto();
  log.listening("localhost", { transport: "tcp", hostname: "127.0.0.1", port: 10000 });
  log.onEvent!({ type: "closed", conn: A, open: 0, reason: "shutdown" });
  const stats = { ...noStats(), connections: 1, bytesReceived: 1234567, bytesEchoed: 1234567 };
  log.summary(stats);
  const cut = { ...stats.closed, shutdown: 3 };
  log.summary({
    ...stats,
    connections: 5,
    bytesEchoed: 0,
    bytesDiscarded: 5,
    rejected: 3,
    closed: cut,
  });
  log.summary({ ...stats, closed: { ...stats.closed, shutdown: 1 } }, true);
  log.stopping(10_000);
  log.draining(0, 5000);
  log.draining(1, 5000);
  log.draining(100, 2500);
  log.error("accept failed: too many open files");
  log.warn("listening on every interface");
  deepEqual(await lines(), {
    out: [
      "Starting up on localhost port 10000",
      "closing connection from ('127.0.0.1', 5001)",
      "shut down: 1 connection, 1,234,567 bytes echoed",
      "shut down: 5 connections, 0 bytes echoed, 3 cut at the drain deadline, 5 bytes sent after the cut dropped, 3 turned away at the connection limit",
      "shut down: 1 connection, 1,234,567 bytes echoed, 1 cut by the second signal",
    ],
    err: [
      "shutting down in 10 s: still accepting, reporting not ready (send the signal again to stop now)",
      "draining 1 connection (up to 5 s; send the signal again to stop now)",
      "draining 100 connections (up to 2.5 s; send the signal again to stop now)",
      "error: accept failed: too many open files",
      "warning: listening on every interface",
    ],
  });
});

Deno.test("ServerLog when quiet has no per-event handler, so the server skips that work", () => {
  equal(logInto({ quiet: true }).log.onEvent, undefined);
  equal(logInto({ quiet: true, format: "json" }).log.onEvent, undefined);
});

Deno.test("ServerLog in JSON writes one object per event with time, conn, peer, bytes, data", async () => {
  const { log, lines } = logInto({ format: "json" });
  log.listening("::1", { transport: "tcp", hostname: "::1", port: 7 });
  log.onEvent!({ type: "received", conn: A, open: 1, data: data('"quoted"\x00') });
  log.onEvent!({
    type: "closed",
    conn: A,
    open: 0,
    reason: "reset",
    detail: "connection reset by peer",
  });
  log.error("accept failed");
  log.metricsAt({ transport: "tcp", hostname: "127.0.0.1", port: 9464 });
  log.stopping(2000);
  log.draining(3, 5000);
  log.summary({ ...noStats(), connections: 3, closed: { ...noStats().closed, shutdown: 1 } });
  const events = (await lines()).out.map((line) => JSON.parse(line));
  for (const event of events) equal(typeof event.time, "string");
  deepEqual(events.map(({ time: _, ...rest }) => rest), [
    { event: "listening", address: "[::1]:7" },
    { conn: 1, peer: "127.0.0.1:5001", event: "received", bytes: 9, data: `b'"quoted"\\x00'` },
    {
      conn: 1,
      peer: "127.0.0.1:5001",
      event: "closed",
      reason: "reset",
      detail: "connection reset by peer",
    },
    { event: "error", message: "accept failed" },
    { event: "metrics", address: "127.0.0.1:9464" },
    { event: "stopping", delay_s: 2 },
    { event: "draining", open: 3, timeout_s: 5 },
    {
      event: "shutdown",
      connections: 3,
      bytes_received: 0,
      bytes_echoed: 0,
      bytes_discarded: 0,
      rejected: 0,
      cut: 1,
    },
  ]);
});

Deno.test("ServerLog names a proxied client, its proxy and the TLVs, quoting what a peer could forge", async () => {
  const bytes = (s: string) => new TextEncoder().encode(s);
  const proxy: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 6000 };
  const source: Deno.NetAddr = { transport: "tcp", hostname: "203.0.113.7", port: 4242 };
  const proxied: ConnectionInfo = {
    id: 1,
    peer: source,
    proxy: {
      header: {
        version: 2,
        command: "PROXY",
        family: "TCP4",
        source,
        destination: { transport: "tcp", hostname: "192.0.2.1", port: 443 },
        tlvs: [
          { type: 0x01, value: bytes("h2") },
          { type: 0x02, value: bytes("evil\nconnection from x") },
          { type: 0x20, value: Uint8Array.of(7, 0, 0, 0, 0, 0x22, 0, 5, ...bytes("alice")) },
        ],
      },
      length: 60,
      peer: source,
      proxy,
    },
  };
  const check: ConnectionInfo = {
    id: 2,
    peer: proxy,
    proxy: {
      header: { version: 2, command: "LOCAL", family: "UNSPEC", tlvs: [] },
      length: 16,
      peer: proxy,
      proxy,
    },
  };
  for (const format of ["text", "json"] as const) {
    const { log, lines } = logInto({ format, describeProxyTlvs });
    log.onEvent!({ type: "connected", conn: proxied, open: 1 });
    log.onEvent!({ type: "closed", conn: proxied, open: 0, reason: "eof" });
    log.onEvent!({ type: "connected", conn: check, open: 1 });
    log.onEvent!({ type: "proxy-refused", conn: { id: 3, peer: proxy }, open: 0, reason: "late" });
    log.summary({ ...noStats(), connections: 3, proxyRefused: 1 });
    const { out } = await lines();
    if (format === "text") {
      deepEqual(out, [
        "connection from ('203.0.113.7', 4242) via ('127.0.0.1', 6000) (alpn=h2, " +
        'authority="evil\\nconnection from x", ssl.client=ssl+cert-conn+cert-sess, ssl.verify=0, ' +
        "ssl.cn=alice)",
        "no data from ('203.0.113.7', 4242)",
        "Closing current connection",
        "connection from ('127.0.0.1', 6000), the proxy itself (PROXY LOCAL)",
        "dropped connection from ('127.0.0.1', 6000): late",
        "shut down: 3 connections, 0 bytes echoed, 1 dropped for a bad or missing PROXY header",
      ]);
      continue;
    }
    const events = out.map((line) => JSON.parse(line)).map(({ time: _, ...rest }) => rest);
    deepEqual(events[0], {
      conn: 1,
      peer: "203.0.113.7:4242",
      event: "connected",
      proxied_peer: "203.0.113.7:4242",
      proxy: "127.0.0.1:6000",
      proxy_version: 2,
      proxy_command: "PROXY",
      tlvs: {
        alpn: "h2",
        authority: "evil\nconnection from x",
        ssl: { client: ["ssl", "cert-conn", "cert-sess"], verify: 0, cn: "alice" },
      },
    });
    deepEqual(events[2], {
      conn: 2,
      peer: "127.0.0.1:6000",
      event: "connected",
      proxy: "127.0.0.1:6000",
      proxy_version: 2,
      proxy_command: "LOCAL",
      tlvs: {},
    });
    deepEqual(events[3], {
      conn: 3,
      peer: "127.0.0.1:6000",
      event: "proxy_refused",
      reason: "late",
    });
    equal(events[4].proxy_refused, 1);
  }
});
