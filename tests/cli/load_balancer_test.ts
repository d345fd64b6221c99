import { deepEqual, equal, match, ok } from "node:assert/strict";
import {
  benchJson,
  connect,
  freePort,
  needs,
  pattern,
  readToEnd,
  runCli,
  ServeProcess,
  startHaproxy,
  writeAll,
} from "../helpers.ts";

const CLIENTS = 10;
const SIZE = 3000;

function haproxyConfig(port: number, backends: number[]): string {
  return `global
  maxconn 256
defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend echo
  bind 127.0.0.1:${port}
  default_backend tcpecho
backend tcpecho
  balance roundrobin
${backends.map((backend, i) => `  server echo${i + 1} 127.0.0.1:${backend}`).join("\n")}
`;
}

Deno.test({
  ...needs(
    "haproxy",
    "HAProxy in TCP mode spreads clients over two tcpecho instances and every byte comes back",
  ),
  async fn() {
    await using first = await ServeProcess.start(["--host", "127.0.0.1"]);
    await using second = await ServeProcess.start(["--host", "127.0.0.1"]);
    const port = freePort();
    {
      await using _haproxy = await startHaproxy(haproxyConfig(port, [first.port, second.port]));
      // Each client sends its own bytes, so a reply crossing over to another client would show.
      await Promise.all(Array.from({ length: CLIENTS }, async (_, client) => {
        using conn = await connect(port);
        const message = pattern(SIZE + client);
        await writeAll(conn, message);
        await conn.closeWrite();
        deepEqual(await readToEnd(conn), message);
      }));
    }
    const served = [];
    for (const server of [first, second]) {
      equal((await server.stop()).code, 0);
      const summary = server.stdout.lines.at(-1)!.match(
        /^shut down: (\d+) connections?, ([\d,]+) bytes echoed$/,
      );
      served.push({
        connections: Number(summary![1]),
        bytes: Number(summary![2].replaceAll(",", "")),
      });
    }
    // Round robin: half the clients each, and together every byte of every client.
    deepEqual(served.map((s) => s.connections), [CLIENTS / 2, CLIENTS / 2]);
    equal(
      served[0].bytes + served[1].bytes,
      CLIENTS * SIZE + (CLIENTS * (CLIENTS - 1)) / 2,
    );
  },
});

Deno.test({
  ...needs(
    "haproxy",
    "bench --expect-greeting behind HAProxy round robin splits the report by backend",
  ),
  async fn() {
    const greeting = ["--greeting", "backend {port}"];
    await using first = await ServeProcess.start(["--host", "127.0.0.1", "--quiet", ...greeting]);
    await using second = await ServeProcess.start(["--host", "127.0.0.1", "--quiet", ...greeting]);
    const port = freePort();
    {
      await using _haproxy = await startHaproxy(haproxyConfig(port, [first.port, second.port]));
      const { code, stderr, report } = await benchJson(
        port,
        "--expect-greeting",
        "-c",
        "4",
        "--reconnect",
        "5",
        "-n",
        "50",
      );
      equal(code, 0, stderr);
      // 4 connections x 50 messages, 5 per connection: 40 connections, alternated by HAProxy.
      equal(report.messages, 200);
      equal(report.connects.made, 40);
      const backends = report.backends.map((b: { greeting: string }) => b.greeting).sort();
      deepEqual(backends, [`backend ${first.port}`, `backend ${second.port}`].sort());
      for (const backend of report.backends) {
        equal(backend.connections, 20, JSON.stringify(report.backends));
        equal(backend.messages, 100);
        ok(backend.latency_us.p50 > 0 && backend.latency_us.p50 <= backend.latency_us.max);
      }
      const text = await runCli([
        "bench",
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        "--expect-greeting",
        "-c",
        "2",
        "-n",
        "10",
      ]);
      equal(text.code, 0, text.stderr);
      match(
        text.stdout,
        /\n\| backend \| connections \| messages \| p50 \| p90 \| p99 \| p99\.9 \| max \|\n/,
      );
      match(text.stdout, new RegExp(`\\n\\| backend ${first.port} \\| 1 \\| 10 \\| `));
      match(text.stdout, new RegExp(`\\n\\| backend ${second.port} \\| 1 \\| 10 \\| `));
    }
    // Each backend echoed its half: 100 + 10 messages of 16 bytes, the greetings not counted.
    for (const server of [first, second]) {
      equal((await server.stop()).code, 0);
      match(server.stdout.lines.at(-1)!, /^shut down: 21 connections, 1,760 bytes echoed$/);
    }
  },
});
