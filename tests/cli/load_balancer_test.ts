import { deepEqual, equal } from "node:assert/strict";
import {
  connect,
  hasProgram,
  LineCollector,
  pattern,
  readToEnd,
  ServeProcess,
  writeAll,
} from "../helpers.ts";

const CLIENTS = 10;
const SIZE = 3000;

/** A loopback port that was free a moment ago, for a program that cannot be told port 0. */
function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return listener.addr.port;
}

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
  name: `HAProxy in TCP mode spreads clients over two tcpecho instances and every byte comes back${
    hasProgram("haproxy") ? "" : " (skipped: haproxy is not installed)"
  }`,
  ignore: !hasProgram("haproxy"),
  async fn() {
    await using first = await ServeProcess.start(["--host", "127.0.0.1"]);
    await using second = await ServeProcess.start(["--host", "127.0.0.1"]);
    const port = freePort();
    const config = await Deno.makeTempFile({ suffix: ".cfg" });
    await Deno.writeTextFile(config, haproxyConfig(port, [first.port, second.port]));
    // -W: the master says "Loading success." once its listener is bound.
    const haproxy = new Deno.Command("haproxy", {
      args: ["-W", "-db", "-f", config],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const log = new LineCollector(haproxy.stderr);
    try {
      await log.waitFor("Loading success.");
      // Each client sends its own bytes, so a reply crossing over to another client would show.
      await Promise.all(Array.from({ length: CLIENTS }, async (_, client) => {
        using conn = await connect(port);
        const message = pattern(SIZE + client);
        await writeAll(conn, message);
        await conn.closeWrite();
        deepEqual(await readToEnd(conn), message);
      }));
    } finally {
      haproxy.kill("SIGTERM");
      await haproxy.status;
      await log.done;
      await Deno.remove(config);
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
