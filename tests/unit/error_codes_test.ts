import { equal, ok, rejects, throws } from "node:assert/strict";
import {
  connect,
  EchoError,
  type ErrorCode,
  GreetingError,
  IllegalTransitionError,
  InterruptedError,
  makeSelfSignedCertificates,
  parseProxyHeader,
  ping,
  ProxyHeaderError,
  runLoad,
  RuntimeError,
  sendAndVerify,
  startEchoServer,
  TcpechoError,
  TlsHandshakeError,
  UnknownHostError,
  UsageError,
} from "../../lib/mod.ts";
import { moveTo } from "../../lib/server/connection_state.ts";

/** Checks that `promise` rejects with an error of `code` (and class `type`); returns it. */
async function rejectsWith<T extends TcpechoError>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => T,
  code: ErrorCode,
): Promise<T> {
  let caught: unknown;
  await rejects(promise.catch((err) => {
    caught = err;
    throw err;
  }));
  ok(caught instanceof type, `${caught}`);
  equal((caught as T).code, code);
  return caught as T;
}

/** A loopback server whose every connection is handled by `handle`; closed by `await using`. */
function tcpServer(handle: (conn: Deno.TcpConn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const handled: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      handled.push(
        handle(conn).catch(() => {}).finally(() => {
          try {
            conn.close();
          } catch { /* closed by handle */ }
        }),
      );
    }
  })();
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      await Promise.all(handled);
    },
  };
}

const message = new TextEncoder().encode("hello");

/** A port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

Deno.test("USAGE: a call the library cannot run as asked", async () => {
  const err = await rejectsWith(
    ping({ port: 7, message: new Uint8Array(0) }),
    UsageError,
    "USAGE",
  );
  equal(err.message, "cannot ping with an empty message");
});

Deno.test("RUNTIME: the network said no, and no code is more precise", async () => {
  const err = await rejectsWith(
    connect({ hostname: "127.0.0.1", port: closedPort() }),
    RuntimeError,
    "RUNTIME",
  );
  ok(err.message.endsWith(": connection refused"), err.message);
});

Deno.test("INTERRUPTED: a connection attempt stopped by its signal", async () => {
  await rejectsWith(
    connect({ hostname: "127.0.0.1", port: closedPort(), signal: AbortSignal.abort() }),
    InterruptedError,
    "INTERRUPTED",
  );
});

Deno.test("UNKNOWN_HOST: a name that does not resolve, over Deno.connect and node:net", async () => {
  const plain = await rejectsWith(
    connect({ hostname: "nosuch.invalid", port: 7 }),
    UnknownHostError,
    "UNKNOWN_HOST",
  );
  equal(plain.message, "cannot connect to nosuch.invalid port 7: unknown host");
  const node = await rejectsWith(
    connect({ hostname: "nosuch.invalid", port: 7, tls: { insecure: true } }),
    UnknownHostError,
    "UNKNOWN_HOST",
  );
  equal(node.message, plain.message);
});

Deno.test("TLS_HANDSHAKE: a server certificate the client does not trust", async () => {
  const { cert, key } = await makeSelfSignedCertificates({ names: ["127.0.0.1"] });
  await using server = await startEchoServer({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert, key },
  });
  const err = await rejectsWith(
    connect({ hostname: "127.0.0.1", port: server.addr.port, tls: true }),
    TlsHandshakeError,
    "TLS_HANDSHAKE",
  );
  ok(
    err.message.startsWith(
      `cannot connect to 127.0.0.1 port ${server.addr.port}: TLS handshake failed: `,
    ),
  );
  ok(err.message.endsWith(err.reason), err.message);
});

Deno.test("PROXY_HEADER: bytes that cannot begin a PROXY header", () => {
  throws(
    () => parseProxyHeader(new TextEncoder().encode("GET / HTTP/1.1\r\n"), "any"),
    (err: unknown) => err instanceof ProxyHeaderError && err.code === "PROXY_HEADER",
  );
});

Deno.test("GREETING: bytes after a greeting line, before anything was sent", async () => {
  const err = new GreetingError("bytes after the greeting");
  ok(err instanceof RuntimeError);
  equal(err.code, "GREETING");
  await using server = tcpServer(async (conn) => {
    await conn.write(new TextEncoder().encode("hi\nX"));
    await conn.read(new Uint8Array(16));
  });
  await rejects(
    runLoad({ hostname: "127.0.0.1", port: server.port, count: 1, expectGreeting: true }),
    {
      message:
        `cannot connect to 127.0.0.1 port ${server.port}: no greeting: bytes after the greeting`,
    },
  );
});

Deno.test("ECHO_MISMATCH: an echo that differs from what was sent", async () => {
  await using server = tcpServer(async (conn) => {
    const buffer = new Uint8Array(5);
    const n = await conn.read(buffer);
    await conn.write(new Uint8Array(n ?? 0).fill(0x58));
  });
  await rejectsWith(
    sendAndVerify({ hostname: "127.0.0.1", port: server.port, message }),
    EchoError,
    "ECHO_MISMATCH",
  );
});

Deno.test("ECHO_CLOSED: a server that closes before echoing", async () => {
  await using server = tcpServer(async (conn) => {
    await conn.read(new Uint8Array(5));
  });
  await rejectsWith(
    sendAndVerify({ hostname: "127.0.0.1", port: server.port, message }),
    EchoError,
    "ECHO_CLOSED",
  );
});

Deno.test("ECHO_TIMEOUT: a server that never answers", async () => {
  const replied = Promise.withResolvers<void>();
  await using server = tcpServer(async (conn) => {
    await conn.read(new Uint8Array(5));
    await replied.promise;
  });
  try {
    await rejectsWith(
      sendAndVerify({ hostname: "127.0.0.1", port: server.port, message, timeout: 100 }),
      EchoError,
      "ECHO_TIMEOUT",
    );
  } finally {
    replied.resolve();
  }
});

Deno.test("ECHO_FAILED: a connection reset during the exchange", async () => {
  await using server = await startEchoServer({
    hostname: "127.0.0.1",
    port: 0,
    faults: { resetAfter: 1 },
  });
  const err = await rejectsWith(
    sendAndVerify({ hostname: "127.0.0.1", port: server.addr.port, message }),
    EchoError,
    "ECHO_FAILED",
  );
  ok(/reset/.test(err.message), err.message);
});

Deno.test("ILLEGAL_TRANSITION: a connection moved to a state its life does not have", () => {
  throws(
    () => moveTo({ state: "closed" }, "open"),
    (err: unknown) => err instanceof IllegalTransitionError && err.code === "ILLEGAL_TRANSITION",
  );
});
