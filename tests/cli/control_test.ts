/**
 * `serve --control` and `tcpecho ctl`, end to end: the weather changes while connections stay
 * open, over HTTP from our own client, from `tcpecho ctl` and from curl.
 */

import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import {
  benchJson,
  connect,
  needs,
  readExactly,
  runCli,
  runProgram,
  ServeProcess,
  within,
  writeAll,
} from "../helpers.ts";
import { CONTROL_OPENAPI } from "../../lib/control/openapi.ts";

/** A server with the control API on a free loopback port, and the API's base URL. */
async function serveWithControl(args: string[] = []) {
  const server = await ServeProcess.start(["--host", "127.0.0.1", "--control", "0", ...args]);
  const line = await server.stdout.waitFor(/control API at/);
  return { server, api: line.match(/http:\/\/[^/]+/)![0] };
}

/** As {@linkcode serveWithControl}, with `--log json`. */
async function serveWithControlJson() {
  const server = await ServeProcess.start([
    "--host",
    "127.0.0.1",
    "--control",
    "0",
    "--log",
    "json",
  ]);
  const started = JSON.parse(await server.stdout.waitFor(/"event":"control"/));
  return { server, api: `http://${started.address}` };
}

/** One request of the API: its status and JSON answer. */
async function call(
  api: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; answer: Record<string, unknown> }> {
  const response = await within(
    `${method} ${path}`,
    fetch(`${api}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  return { status: response.status, answer: await response.json() };
}

/** Milliseconds for one 16-byte round trip on `conn`. */
async function roundTrip(conn: Deno.Conn): Promise<number> {
  const started = performance.now();
  await writeAll(conn, new Uint8Array(16).fill(7));
  await readExactly(conn, 16);
  return performance.now() - started;
}

Deno.test("a delay set mid-run reaches an open connection, and clearing it takes it away", async () => {
  const { server, api } = await serveWithControl(["--quiet"]);
  await using _ = server;
  using conn = await connect(server.port);
  const before = await roundTrip(conn);
  const { status } = await call(api, "PUT", "/faults", { delay: "200ms", scope: "all" });
  equal(status, 200);
  // The server was waiting for this chunk when the change came: it is held too, as are the next.
  const during = [await roundTrip(conn), await roundTrip(conn)];
  ok(during.every((ms) => ms >= 200), `round trips with the delay: ${during}`);
  const listed = await call(api, "GET", "/connections");
  const [open] = listed.answer.connections as { faults: string[]; received: number }[];
  deepEqual(open.faults, [`delay 200 ms`]);
  equal(open.received, 16 * 3);
  equal((await call(api, "DELETE", "/faults?scope=all")).status, 200);
  // The faulted loop was waiting for this chunk: it takes the delay still; the next ones do not.
  await roundTrip(conn);
  const after = (await call(api, "GET", "/connections")).answer.connections as {
    faults: string[];
  }[];
  deepEqual(after[0].faults, []);
  const back = await roundTrip(conn);
  ok(before < 200 && back < 200, `plain round trips took ${before} and ${back} ms`);
  await server.stdout.waitFor(/control: faults cleared/);
  match(
    server.stdout.text,
    /control: faults delay 200 ms, seed \d+, open connections too \(PUT \/faults from 127\.0\.0\.1:\d+\)/,
  );
  match(server.stdout.text, /control: faults cleared, open connections too \(DELETE \/faults/);
});

// Until bench prints per-second figures, short bench runs before, during and after show the step.
Deno.test("bench runs show the latency step of a delay set through the API, and the step back", async () => {
  const { server, api } = await serveWithControl(["--quiet"]);
  await using _ = server;
  const p50 = async () => {
    const { code, report } = await benchJson(server.port, "-c", "2", "-n", "5");
    equal(code, 0);
    return report.latency_us.p50 as number;
  };
  const before = await p50();
  equal((await runCli(["ctl", api, "faults", "set", "delay=100ms"])).code, 0);
  const during = await p50();
  equal((await runCli(["ctl", api, "faults", "clear"])).code, 0);
  const after = await p50();
  ok(during >= 100_000, `p50 with the delay: ${during} µs`);
  ok(before < 100_000 && after < 100_000, `p50 without: ${before} and ${after} µs`);
});

Deno.test("--log json: a change is one JSON event", async () => {
  const { server, api } = await serveWithControlJson();
  await using _ = server;
  await call(api, "PUT", "/ready", false);
  const event = JSON.parse(await server.stdout.waitFor(/"event":"control-change"/));
  deepEqual({ ...event, peer: undefined, time: undefined }, {
    event: "control-change",
    peer: undefined,
    time: undefined,
    call: "PUT /ready",
    change: "ready false",
  });
  match(event.peer, /^127\.0\.0\.1:\d+$/);
});

Deno.test("POST /close with reset: the open connections see a TCP reset, counted as such", async () => {
  const { server, api } = await serveWithControl(["--control-resets", "--metrics", "0"]);
  await using _ = server;
  const metricsLine = await server.stdout.waitFor(/metrics at/);
  const metrics = `${metricsLine.match(/http:\/\/[^/]+/)![0]}/metrics`;
  const clients = [await connect(server.port), await connect(server.port)];
  for (const client of clients) await roundTrip(client);
  const { answer } = await call(api, "POST", "/close", { reset: true });
  deepEqual(answer, { closed: 2, reset: true, servers: 1 });
  for (const client of clients) {
    await rejects(client.read(new Uint8Array(1)), Deno.errors.ConnectionReset);
    client.close();
  }
  await server.stdout.waitForCount(/resetting connection from .* on request$/, 2);
  const text = await (await within("GET /metrics", fetch(metrics))).text();
  match(text, /^tcpecho_connections_closed_total\{reason="server_reset"\} 2$/m);
  match(text, /^tcpecho_connections_closed_total\{reason="drain_deadline"\} 0$/m);
  equal((await server.stop()).code, 0);
  match(server.stdout.text, /^shut down: 2 connections, 32 bytes echoed, 2 reset on request$/m);
});

Deno.test("without --control-resets, a reset is refused and nothing is closed", async () => {
  const { server, api } = await serveWithControl(["--quiet"]);
  await using _ = server;
  using client = await connect(server.port);
  await roundTrip(client);
  const { code, stderr } = await runCli(["ctl", api, "close", "--reset"]);
  deepEqual([code, stderr], [
    2,
    "error: a reset needs serve --control-resets (over plain TCP); nothing changed\n",
  ]);
  equal((await call(api, "PUT", "/faults", { "reset-after": 1 })).status, 400);
  // Still open, still echoing.
  await roundTrip(client);
  const { connections } = (await call(api, "GET", "/connections")).answer;
  equal((connections as unknown[]).length, 1);
});

Deno.test("tcpecho ctl close without --reset closes cleanly: the client reads its end", async () => {
  const { server, api } = await serveWithControlJson();
  await using _ = server;
  using client = await connect(server.port);
  await roundTrip(client);
  const { code, stdout } = await runCli(["ctl", api, "close"]);
  deepEqual([code, stdout], [0, "closed 1 connection\n"]);
  equal(await client.read(new Uint8Array(1)), null);
  const closed = JSON.parse(await server.stdout.waitFor(/"event":"closed"/));
  deepEqual([closed.reason, closed.detail], ["closed", "closed on request"]);
  equal((await server.stop()).code, 0);
  const summary = JSON.parse(server.stdout.text.trim().split("\n").at(-1)!);
  deepEqual([summary.event, summary.cut, summary.closed_on_request], ["shutdown", 0, 1]);
});

Deno.test(needs("curl", "curl flips /readyz through PUT /ready, and back"), async () => {
  const { server, api } = await serveWithControl(["--metrics", "0", "--quiet"]);
  await using _ = server;
  const metricsLine = await server.stdout.waitFor(/metrics at/);
  const readyz = `${metricsLine.match(/http:\/\/[^/]+/)![0]}/readyz`;
  const status = async () =>
    (await runProgram("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", readyz])).stdout;
  equal(await status(), "200");
  const put = await runProgram("curl", ["-s", "-X", "PUT", "-d", "false", `${api}/ready`]);
  deepEqual(JSON.parse(put.stdout), { ready: false, servers: 1 });
  equal(await status(), "503");
  equal((await runCli(["ctl", api, "ready", "true"])).stdout, "ready: true\n");
  equal(await status(), "200");
  const metrics = await runProgram("curl", ["-s", readyz.replace("readyz", "metrics")]);
  match(metrics.stdout, /^tcpecho_control_changes_total 2$/m);
});

Deno.test('a fault set "for": "1s" removes itself', async () => {
  const { server, api } = await serveWithControl(["--quiet"]);
  await using _ = server;
  const set = await call(api, "PUT", "/faults", { delay: "50ms", for: "1s" });
  equal((set.answer.faults as Record<string, unknown>).delay, "50ms");
  using conn = await connect(server.port);
  ok(await roundTrip(conn) >= 50, "a connection accepted in the window is delayed");
  const ended = await server.stdout.waitFor(/control: faults back to/);
  equal(ended, 'control: faults back to none after 1 s (the end of "for" from the server)');
  equal((await call(api, "GET", "/faults")).answer.description, "none");
});

Deno.test("the next N connections only: count=1 faults one connection, not the next", async () => {
  const { server, api } = await serveWithControl(["--quiet", "--control-resets"]);
  await using _ = server;
  await call(api, "PUT", "/faults", { "reset-after": 16, count: 1 });
  using first = await connect(server.port);
  await writeAll(first, new Uint8Array(32));
  await readExactly(first, 16);
  await rejects(first.read(new Uint8Array(16)), Deno.errors.ConnectionReset);
  using second = await connect(server.port);
  await writeAll(second, new Uint8Array(32));
  equal((await readExactly(second, 32)).length, 32);
  equal((await call(api, "GET", "/faults")).answer.description, "none");
  const ended = await server.stdout.waitFor(/control: faults back to/);
  equal(
    ended,
    'control: faults back to none after 1 connection (the end of "count" from the server)',
  );
});

Deno.test("the same changes at the same connection numbers with the same --seed fault the same connections", async () => {
  /** Which of 8 connections a reset fault with fault-rate 0.5 hits, on a new server. */
  const hits = async () => {
    const { server, api } = await serveWithControl(["--quiet", "--control-resets", "--seed", "7"]);
    await using _ = server;
    match(server.stdout.text, /faults on seed 7/);
    using plain = await connect(server.port);
    await roundTrip(plain);
    await call(api, "PUT", "/faults", { "reset-after": 16, "fault-rate": 0.5 });
    const pattern: boolean[] = [];
    for (let i = 0; i < 8; i++) {
      using conn = await connect(server.port);
      await writeAll(conn, new Uint8Array(32));
      await readExactly(conn, 16);
      pattern.push(await conn.read(new Uint8Array(16)).then(() => false, () => true));
    }
    return pattern;
  };
  const first = await hits();
  ok(first.includes(true) && first.includes(false), `a share of them: ${first}`);
  deepEqual(await hits(), first);
});

Deno.test("a bad value is refused with the flag's message, and changes nothing", async () => {
  const { server, api } = await serveWithControl(["--quiet", "--delay", "20"]);
  await using _ = server;
  const before = await call(api, "GET", "/faults");
  const bad = await call(api, "PATCH", "/faults", { delay: "10ms", "corrupt-rate": 2 });
  deepEqual(bad, { status: 400, answer: { error: "corrupt-rate must be from 0 to 1, not 2" } });
  deepEqual(await call(api, "GET", "/faults"), before);
  const cli = await runCli(["ctl", api, "faults", "add", "jitter=soon"]);
  equal(cli.code, 2);
  match(cli.stderr, /^error: jitter must be a duration such as 250ms/);
  deepEqual(await call(api, "GET", "/faults"), before);
  server.child.kill("SIGTERM");
  await server.exited();
  ok(!server.stdout.text.includes("control:"), "no change was logged");
});

Deno.test(
  needs("curl", "with --control-token-file, a request without the token is refused"),
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/token`, "s3cret\n");
      const { server, api } = await serveWithControl([
        "--quiet",
        "--control-token-file",
        `${dir}/token`,
      ]);
      await using _ = server;
      const refused = await runProgram("curl", ["-s", "-w", " %{http_code}", `${api}/faults`]);
      match(refused.stdout, /"error":"this API needs a token.* 401$/s);
      const wrong = await call(api, "PUT", "/ready", false, { authorization: "Bearer guess" });
      equal(wrong.status, 401);
      const allowed = await runProgram("curl", [
        "-s",
        "-H",
        "Authorization: Bearer s3cret",
        `${api}/ready`,
      ]);
      deepEqual(JSON.parse(allowed.stdout), { ready: true, servers: 1 });
      const ctl = await runCli(["ctl", api, "ready", "--token-file", `${dir}/token`]);
      equal(ctl.stdout, "ready: true\n");
      const without = await runCli(["ctl", api, "ready"]);
      deepEqual([without.code, without.stderr], [
        1,
        "error: the control API refused: this API needs a token: Authorization: Bearer TOKEN\n",
      ]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("--control beyond loopback needs a token", async () => {
  const { code, stderr } = await runCli(["serve", "--control", "0.0.0.0:0"]);
  deepEqual([code, stderr], [
    2,
    "error: --control on 0.0.0.0 is reachable from the network: give --control-token-file\n",
  ]);
});

Deno.test("concurrent PATCHes to two workers lose no update, and each answer says both have it", async () => {
  const { server, api } = await serveWithControl(["--quiet", "--workers", "2"]);
  await using _ = server;
  const patches: Record<string, unknown>[] = [
    { delay: "100ms" },
    { bandwidth: "1MiB" },
    { slice: 8 },
    { "close-after": "1MiB" },
    { "corrupt-rate": 0 },
    { "fault-rate": 1 },
  ];
  const answers = await Promise.all(patches.map((patch) => call(api, "PATCH", "/faults", patch)));
  for (const { status, answer } of answers) deepEqual([status, answer.servers], [200, 2]);
  const { answer } = await call(api, "GET", "/faults");
  deepEqual(
    Object.keys(answer.faults as object).sort(),
    [...patches.flatMap(Object.keys), "seed"].sort(),
  );
  // Every new connection, whichever worker takes it, is delayed.
  for (let i = 0; i < 4; i++) {
    using conn = await connect(server.port);
    ok(await roundTrip(conn) >= 100, "a new connection is delayed");
  }
  const listed = (await runCli(["ctl", api, "connections"])).stdout;
  equal(listed, "no open connections\n");
});

/** Checks `value` against `schema` of the OpenAPI description; returns what differs. */
function conforms(value: unknown, schema: Record<string, unknown>, at = "$"): string[] {
  if (typeof schema.$ref === "string") {
    const name = schema.$ref.split("/").pop()!;
    const schemas = CONTROL_OPENAPI.components.schemas as Record<string, Record<string, unknown>>;
    return conforms(value, schemas[name], at);
  }
  const types = schema.type === undefined ? [] : [schema.type].flat() as string[];
  const typeOf = value === null
    ? "null"
    : Array.isArray(value)
    ? "array"
    : Number.isInteger(value)
    ? "integer"
    : typeof value;
  if (
    types.length > 0 && !types.includes(typeOf) &&
    !(typeOf === "integer" && types.includes("number"))
  ) {
    return [`${at} is ${typeOf}, not ${types.join(" or ")}`];
  }
  const problems: string[] = [];
  for (const name of (schema.required ?? []) as string[]) {
    if (!(name in (value as object))) problems.push(`${at}.${name} is missing`);
  }
  const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
  for (const [name, property] of Object.entries(properties)) {
    if (value && typeof value === "object" && name in value) {
      problems.push(
        ...conforms((value as Record<string, unknown>)[name], property, `${at}.${name}`),
      );
    }
  }
  if (schema.items && Array.isArray(value)) {
    value.forEach((item, i) =>
      problems.push(...conforms(item, schema.items as Record<string, unknown>, `${at}[${i}]`))
    );
  }
  return problems;
}

Deno.test("every answer conforms to the OpenAPI description served at /openapi.json", async () => {
  const { server, api } = await serveWithControl(["--quiet"]);
  await using _ = server;
  const served = await call(api, "GET", "/openapi.json");
  deepEqual(served.answer, JSON.parse(JSON.stringify(CONTROL_OPENAPI)));
  using conn = await connect(server.port);
  await roundTrip(conn);
  const calls: [string, string, unknown, number][] = [
    ["GET", "/faults", undefined, 200],
    ["PUT", "/faults", { delay: "1ms", scope: "all" }, 200],
    ["PATCH", "/faults", { jitter: "1ms" }, 200],
    ["PATCH", "/faults", { jitter: -1 }, 400],
    ["DELETE", "/faults", undefined, 200],
    ["GET", "/ready", undefined, 200],
    ["PUT", "/ready", { ready: true }, 200],
    ["GET", "/limits", undefined, 200],
    ["PUT", "/limits", { "max-connections": 10, "idle-timeout": "1m" }, 200],
    ["PUT", "/limits", { "max-connections": 0 }, 400],
    ["GET", "/connections", undefined, 200],
    ["POST", "/close", {}, 200],
  ];
  const paths = served.answer.paths as Record<string, Record<string, Record<string, unknown>>>;
  for (const [method, path, body, expected] of calls) {
    const { status, answer } = await call(api, method, path, body);
    equal(status, expected, `${method} ${path}`);
    const operation = paths[path][method.toLowerCase()];
    const responses = operation.responses as Record<string, Record<string, unknown>>;
    const response = responses[String(status)];
    ok(response, `${method} ${path} ${status} is described`);
    const content = response.content as Record<string, { schema: Record<string, unknown> }>;
    deepEqual(conforms(answer, content["application/json"].schema), [], `${method} ${path}`);
  }
});

Deno.test("over UDP, a change reaches the next datagram; stream faults and close are refused", async () => {
  const { server, api } = await serveWithControl(["--quiet", "--udp"]);
  await using _ = server;
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  using _socket = { [Symbol.dispose]: () => socket.close() };
  const target = { transport: "udp" as const, hostname: "127.0.0.1", port: server.port };
  equal((await call(api, "PUT", "/faults", { "duplicate-rate": 1 })).status, 200);
  await socket.send(new Uint8Array([1, 2, 3]), target);
  const [echo] = await within("an echo", socket.receive());
  const [copy] = await within("its copy", socket.receive());
  deepEqual([[...echo], [...copy]], [[1, 2, 3], [1, 2, 3]]);
  const refused = await call(api, "PATCH", "/faults", { "no-read": true });
  deepEqual(refused, { status: 400, answer: { error: "no-read works on streams, not over UDP" } });
  equal((await call(api, "POST", "/close", {})).status, 400);
});
