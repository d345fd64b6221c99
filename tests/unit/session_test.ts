import { deepEqual, match } from "node:assert/strict";
import {
  type EchoEvent,
  EchoServer,
  makeSelfSignedCertificates,
  startEchoServer,
  type StreamConn,
  type StreamListener,
} from "../../lib/mod.ts";
import { readToEnd } from "../helpers.ts";

/** A listener that hands out one connection, then waits until it is closed. */
function listenerOf(conn: StreamConn): StreamListener {
  const closed = Promise.withResolvers<StreamConn>();
  let accepted = false;
  return {
    addr: { transport: "tcp", hostname: "127.0.0.1", port: 9 },
    accept: () => {
      if (accepted) return closed.promise;
      accepted = true;
      return Promise.resolve(conn);
    },
    close: () => closed.reject(new Deno.errors.BadResource("closed")),
  };
}

/** A connection whose first read fails with `error`. */
function failingConn(error: Error): StreamConn {
  return {
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
    read: () => Promise.reject(error),
    write: (bytes) => Promise.resolve(bytes.length),
    closeWrite: () => Promise.resolve(),
    close: () => {},
  };
}

/** The events of a server, each as its type and, for `closed`, its reason and detail. */
function recorder() {
  const seen: string[] = [];
  const closed = Promise.withResolvers<void>();
  const onEvent = (event: EchoEvent) => {
    if (event.type === "closed") {
      seen.push(`closed ${event.reason}${event.detail ? `: ${event.detail}` : ""}`);
    } else seen.push(event.type);
    if (event.type === "closed" || event.type === "proxy-refused") closed.resolve();
  };
  return { seen, onEvent, closed: closed.promise };
}

for (
  const [error, end] of [
    // Reset before its first byte, as HAProxy's checks end: a health check, not a failure.
    [new Deno.errors.ConnectionReset("reset"), "closed health-check"],
    [new Error("Something broke"), "closed error: something broke"],
  ] as const
) {
  Deno.test(`a failed echo stage ends the session with "${end}"`, async () => {
    const { seen, onEvent, closed } = recorder();
    await using server = new EchoServer({ listener: listenerOf(failingConn(error)), onEvent });
    await closed;
    deepEqual(seen, ["connected", end, "idle"]);
    deepEqual([server.stats.open, server.stats.connections], [0, 1]);
  });
}

/**
 * Starts a server that reads a v1 PROXY header and greets, sends it `input` and FIN, and returns
 * what came back, the server's events and its counters.
 */
async function proxiedSession(input: string) {
  const { seen, onEvent, closed } = recorder();
  await using server = await startEchoServer({
    hostname: "127.0.0.1",
    port: 0,
    proxyProtocol: "v1",
    greeting: "hi {conn}",
    onEvent,
  });
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  await conn.write(new TextEncoder().encode(input));
  // The server may have refused the connection already.
  await conn.closeWrite().catch(() => {});
  const reply = new TextDecoder().decode(await readToEnd(conn));
  await closed;
  return { seen, reply, stats: server.stats };
}

Deno.test("a failed PROXY stage ends the session with proxy-refused alone", async () => {
  const { seen, reply, stats } = await proxiedSession("HELLO\r\n");
  deepEqual(seen, ["proxy-refused", "idle"]);
  deepEqual(reply, "");
  deepEqual([stats.proxyRefused, stats.open], [1, 0]);
});

Deno.test("a session runs its stages in order: PROXY header, greeting, echo", async () => {
  const { seen, reply } = await proxiedSession("PROXY TCP4 203.0.113.7 192.0.2.1 4242 7\r\nping");
  deepEqual(seen, ["connected", "received", "sending", "received", "closed eof", "idle"]);
  deepEqual(reply, "hi 1\nping");
});

Deno.test("a failed TLS stage ends the session with closed tls and why", async () => {
  const { seen, onEvent, closed } = recorder();
  const { cert, key } = await makeSelfSignedCertificates({ names: ["127.0.0.1"] });
  await using server = await startEchoServer({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert, key },
    onEvent,
  });
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  await conn.write(new TextEncoder().encode("not a TLS client hello\r\n"));
  await readToEnd(conn).catch(() => {});
  await closed;
  deepEqual(seen.length, 3);
  deepEqual([seen[0], seen[2]], ["connected", "idle"]);
  match(seen[1], /^closed tls: TLS handshake failed: /);
});
