import { equal, ok } from "node:assert/strict";
import { connect, peerEnd, runCli, ServeProcess, within } from "../helpers.ts";

/** The server's connections to `port` in CLOSE-WAIT (its client gone, its socket not closed). */
async function closeWaitCount(port: number): Promise<number> {
  const { stdout } = await new Deno.Command("ss", {
    args: ["-Htn", "state", "close-wait", `sport = :${port}`],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(stdout).split("\n").filter((line) => line.trim()).length;
}

/** Opens a connection to `port` and closes it at once, as `nc -z` and a TCP health check do. */
async function portCheck(port: number): Promise<void> {
  const conn = await connect(port);
  conn.close();
}

Deno.test({
  name: "TLS: 1,000 port checks and 100 silent clients leave no slot taken and nothing in " +
    "CLOSE-WAIT; the next client is served at once",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await using server = await ServeProcess.start([
      "--host",
      "127.0.0.1",
      "--tls-self-signed",
      "--tls-ca-out",
      await Deno.makeTempFile({ suffix: ".pem" }),
      "--max-connections",
      "10",
      "--tls-handshake-timeout",
      "0.5",
      "--metrics",
      "127.0.0.1:0",
    ]);
    const ca = (await server.stdout.waitFor(/CA certificate in /)).match(/in (.*)\)$/)![1];
    const metrics = (await server.stdout.waitFor(/^metrics at /)).match(/(http:\/\/[^/]+)/)![1];
    const { port } = server;

    // Port checks, 5 at a time; each one is a health check, or turned away at the limit.
    for (let i = 0; i < 1000; i += 5) {
      await Promise.all(Array.from({ length: 5 }, () => portCheck(port)));
    }
    await server.stdout.waitForCount(/health check from|turned away connection/, 1000, 20_000);

    // Silent clients: each is closed by the server, at the handshake deadline or at the limit.
    const silent = await Promise.all(Array.from({ length: 100 }, () => connect(port)));
    const ends = await Promise.all(silent.map((conn) => peerEnd(conn, 20_000)));
    for (const conn of silent) conn.close();
    ok(ends.every((end) => end !== "data"), ends.join(" "));
    await server.stdout.waitForCount(
      /health check from|no handshake within 0\.5 s|turned away connection/,
      1100,
      20_000,
    );

    const send = await runCli(
      ["send", "--host", "127.0.0.1", "--port", String(port), "--tls", "--ca", ca, "hello"],
    );
    equal(send.stderr, "");
    equal(send.code, 0);
    await server.stdout.waitFor(/^Closing current connection$/);

    equal(await closeWaitCount(port), 0);
    const body = await within("a scrape", fetch(`${metrics}/metrics`).then((r) => r.text()));
    ok(body.includes("\ntcpecho_connections_open 0\n"), body);
    // Every silent client the server admitted timed out, and was counted so; the port checks
    // were health checks, not failed handshakes.
    const timedOut = server.stdout.lines.filter((line) => line.includes("no handshake within"));
    ok(timedOut.length >= 10, `${timedOut.length} timed out`);
    ok(
      body.includes(`tcpecho_tls_handshakes_failed_total{reason="timeout"} ${timedOut.length}\n`),
      body,
    );
    ok(body.includes('tcpecho_tls_handshakes_failed_total{reason="closed"} 0\n'), body);
    equal((await server.stop()).code, 0);
  },
});
