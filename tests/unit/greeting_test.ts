import { equal, rejects, throws } from "node:assert/strict";
import { UsageError } from "../../lib/base/errors.ts";
import { greetingTemplate, MAX_GREETING, readGreeting } from "../../lib/server/greeting.ts";

Deno.test("greeting: placeholders are filled in, other braces left alone", () => {
  const greet = greetingTemplate("{host} {port} w{worker} c{conn} {{conn}} {} {HOST}");
  equal(
    greet({ host: "::1", port: 7, worker: 2, conn: 15 }),
    "::1 7 w2 c15 {15} {} {HOST}",
  );
  equal(greetingTemplate("plain")({ host: "a", port: 1, worker: 0, conn: 1 }), "plain");
});

Deno.test("greeting: an unknown placeholder, a line break or a long line is a usage error", () => {
  throws(() => greetingTemplate("{hostname}"), {
    name: "UsageError",
    message: "unknown greeting placeholder {hostname}: use {host}, {port}, {worker} or {conn}",
  });
  throws(() => greetingTemplate("a\nb"), UsageError);
  throws(() => greetingTemplate("a\rb"), UsageError);
  throws(() => greetingTemplate("x".repeat(MAX_GREETING)), UsageError);
});

/** Serves one connection on loopback with `serve`, and connects to it. */
async function withServer(
  serve: (conn: Deno.Conn) => Promise<void>,
  client: (conn: Deno.Conn) => Promise<void>,
): Promise<void> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = listener.accept().then(async (conn) => {
    try {
      await serve(conn);
    } finally {
      try {
        conn.close();
      } catch { /* closed by the test */ }
    }
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  try {
    await client(conn);
  } finally {
    try {
      conn.close();
    } catch { /* closed by readGreeting */ }
  }
  await served;
}

const encode = (text: string) => new TextEncoder().encode(text);

Deno.test("greeting: read over a socket in pieces, CRLF or LF, with what followed it", {
  sanitizeOps: true,
  sanitizeResources: true,
}, async () => {
  await withServer(async (conn) => {
    await conn.write(encode("backend "));
    await conn.write(encode("é 1\r"));
    await conn.write(encode("\nextra"));
    await conn.read(new Uint8Array(1));
  }, async (conn) => {
    const greeting = await readGreeting(conn, 5000);
    equal(greeting.line, "backend é 1");
    // The rest arrives with the line or later: either way it is not part of the greeting.
    equal(new TextDecoder().decode(greeting.rest), "extra".slice(0, greeting.rest.length));
  });
});

Deno.test("greeting: a close before the newline is an early close", {
  sanitizeOps: true,
  sanitizeResources: true,
}, async () => {
  await withServer(async (conn) => {
    await conn.write(encode("half a gree"));
  }, async (conn) => {
    await rejects(readGreeting(conn, 5000), {
      name: "UnexpectedEof",
      message: "the server closed the connection in the middle of its greeting, after 11 bytes",
    });
  });
  await withServer(() => Promise.resolve(), async (conn) => {
    await rejects(readGreeting(conn, 5000), {
      name: "UnexpectedEof",
      message: "the server closed the connection without a greeting",
    });
  });
});

Deno.test("greeting: a line too long or not UTF-8 is invalid data", {
  sanitizeOps: true,
  sanitizeResources: true,
}, async () => {
  await withServer(async (conn) => {
    await conn.write(new Uint8Array(MAX_GREETING + 10).fill(65));
  }, async (conn) => {
    await rejects(readGreeting(conn, 5000), {
      name: "InvalidData",
      message: `the greeting line is longer than ${MAX_GREETING} bytes`,
    });
  });
  await withServer(async (conn) => {
    await conn.write(new Uint8Array([0xff, 0xfe, 10]));
  }, async (conn) => {
    await rejects(readGreeting(conn, 5000), { name: "InvalidData" });
  });
});

Deno.test("greeting: a server that stays silent times out and the connection is closed", {
  sanitizeOps: true,
  sanitizeResources: true,
}, async () => {
  await withServer(async (conn) => {
    // Wait for the client's close: the read ends with null when it gives up.
    await conn.read(new Uint8Array(1));
  }, async (conn) => {
    await rejects(readGreeting(conn, 50), {
      name: "TimedOut",
      message: "no greeting line within 50 ms",
    });
    await rejects(conn.read(new Uint8Array(1)), Deno.errors.BadResource);
  });
});
