import { deepEqual, equal } from "node:assert/strict";
import {
  connect,
  freePort,
  needs,
  pattern,
  readToEnd,
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
