import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import {
  connect,
  freePort,
  hasProgram,
  needs,
  pattern,
  promtoolCheck,
  readExactly,
  readToEnd,
  runCli,
  ServeProcess,
  skipUnless,
  writeAll,
} from "../helpers.ts";

/** Starts `serve --metrics 127.0.0.1:0 ARGS...`; returns it and the base URL of its endpoint. */
async function serveWithMetrics(
  args: string[] = [],
  options = {},
): Promise<{ server: ServeProcess; base: string }> {
  const server = await ServeProcess.start(
    ["--host", "127.0.0.1", "--quiet", "--metrics", "127.0.0.1:0", ...args],
    options,
  );
  const line = await server.stdout.waitFor(/^metrics at /);
  const address = line.match(/^metrics at (http:\/\/[^/]+)\/metrics, \/healthz, \/readyz$/);
  ok(address, `unexpected line: ${line}`);
  return { server, base: address[1] };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

/** The samples of a scrape, by name with labels as written: `name{label="v"}` -> value. */
async function scrape(base: string): Promise<Map<string, number>> {
  const { status, body } = await get(`${base}/metrics`);
  equal(status, 200);
  return new Map(
    body.split("\n").filter((line) => line && !line.startsWith("#")).map((line) => {
      const space = line.lastIndexOf(" ");
      return [line.slice(0, space), Number(line.slice(space + 1))];
    }),
  );
}

async function echo(port: number, bytes: Uint8Array): Promise<void> {
  using conn = await connect(port);
  await writeAll(conn, bytes);
  await conn.closeWrite();
  deepEqual(await readToEnd(conn), bytes);
}

Deno.test({
  ...needs("promtool", "serve --metrics counts connections, bytes and echo times; promtool agrees"),
  async fn() {
    const { server, base } = await serveWithMetrics(["--buffer-size", "100"]);
    await using _ = server;
    equal((await get(`${base}/healthz`)).status, 200);
    equal((await get(`${base}/readyz`)).status, 200);
    await echo(server.port, pattern(1000));
    await echo(server.port, pattern(10));
    // The server counts a connection closed before its client sees the end of the echo.
    const samples = await scrape(base);
    equal(samples.get("tcpecho_connections_open"), 0);
    equal(samples.get("tcpecho_connections_accepted_total"), 2);
    equal(samples.get('tcpecho_connections_closed_total{reason="eof"}'), 2);
    equal(samples.get('tcpecho_connections_closed_total{reason="drain_deadline"}'), 0);
    equal(samples.get("tcpecho_bytes_received_total"), 1010);
    equal(samples.get("tcpecho_bytes_echoed_total"), 1010);
    equal(samples.get('tcpecho_state{state="serving"}'), 1);
    // 1000 bytes in chunks of at most 100, then 10 in one: at least 11 timed echoes.
    const chunks = samples.get("tcpecho_echo_seconds_count")!;
    ok(chunks >= 11 && chunks <= 1010, `${chunks} echo times`);
    equal(samples.get('tcpecho_echo_seconds_bucket{le="+Inf"}'), chunks);
    ok(samples.get("tcpecho_echo_seconds_sum")! > 0);
    equal(await promtoolCheck((await get(`${base}/metrics`)).body), "");
    equal((await server.stop("SIGTERM")).code, 0);
  },
});

Deno.test("serve --shutdown-delay: not ready, yet still accepting and serving; a second signal ends it", async () => {
  const { server, base } = await serveWithMetrics(["--shutdown-delay", "600"]);
  await using _ = server;
  const early = await connect(server.port);
  await writeAll(early, pattern(10));
  await readExactly(early, 10);
  server.child.kill("SIGTERM");
  await server.stderr.waitFor(
    "shutting down in 600 s: still accepting, reporting not ready (send the signal again to stop now)",
  );
  const readyz = await get(`${base}/readyz`);
  equal(readyz.status, 503);
  equal(readyz.body, "not ready: shutting down\n");
  equal((await get(`${base}/healthz`)).status, 200);
  equal((await scrape(base)).get('tcpecho_state{state="stopping"}'), 1);
  // The load balancer may still send a client during the delay: it is served, as are the others.
  using late = await connect(server.port);
  await writeAll(late, pattern(20));
  deepEqual(await readExactly(late, 20), pattern(20));
  await writeAll(early, pattern(7));
  deepEqual(await readExactly(early, 7), pattern(7));
  early.close();
  equal((await server.stop("SIGTERM")).code, 130);
  match(server.stdout.lines.at(-1)!, /^shut down: 2 connections, 37 bytes echoed/);
});

Deno.test("serve --shutdown-delay: after the delay the server drains as without it", async () => {
  const { server, base } = await serveWithMetrics([
    "--shutdown-delay",
    "0.2",
    "--drain-timeout",
    "30",
  ]);
  await using _ = server;
  const conn = await connect(server.port);
  await writeAll(conn, pattern(10));
  await readExactly(conn, 10);
  server.child.kill("SIGTERM");
  await server.stderr.waitFor(
    "draining 1 connection (up to 30 s; send the signal again to stop now)",
  );
  equal((await scrape(base)).get('tcpecho_state{state="draining"}'), 1);
  equal((await get(`${base}/readyz`)).status, 503);
  await rejects(connect(server.port), Deno.errors.ConnectionRefused);
  await writeAll(conn, pattern(7));
  deepEqual(await readExactly(conn, 7), pattern(7));
  conn.close();
  equal((await server.exited()).code, 0);
  equal(
    server.stderr.lines[0],
    "shutting down in 0.2 s: still accepting, reporting not ready (send the signal again to stop now)",
  );
  equal(server.stdout.lines.at(-1), "shut down: 1 connection, 17 bytes echoed");
});

Deno.test({
  ...skipUnless(
    Deno.build.os === "linux" && hasProgram("promtool"),
    "needs Linux and promtool",
    "serve --workers 2 --metrics: one endpoint, counters summed, open connections per worker",
  ),
  async fn() {
    const { server, base } = await serveWithMetrics(["--workers", "2"], {
      permissions: ["-A", "--unstable-net"],
    });
    await using _ = server;
    const held = await Promise.all(Array.from({ length: 8 }, async () => {
      const conn = await connect(server.port);
      await writeAll(conn, pattern(4));
      await readExactly(conn, 4);
      return conn;
    }));
    const samples = await scrape(base);
    const perWorker = [1, 2].map((w) => samples.get(`tcpecho_connections_open{worker="${w}"}`)!);
    equal(perWorker[0] + perWorker[1], 8);
    equal(samples.get("tcpecho_connections_accepted_total"), 8);
    equal(samples.get("tcpecho_bytes_echoed_total"), 32);
    equal(samples.get("tcpecho_echo_seconds_count"), 8);
    equal(await promtoolCheck((await get(`${base}/metrics`)).body), "");
    for (const conn of held) conn.close();
    equal((await server.stop("SIGTERM")).code, 0);
  },
});

Deno.test({
  ...skipUnless(
    Deno.build.os === "linux" && hasProgram("promtool"),
    "needs Linux and promtool",
    "serve --workers 2 --metrics counts the faults injected, summed over the workers",
  ),
  async fn() {
    const { server, base } = await serveWithMetrics(["--workers", "2", "--close-after", "4"], {
      permissions: ["-A", "--unstable-net"],
    });
    await using _ = server;
    for (let i = 0; i < 6; i++) {
      using conn = await connect(server.port);
      await writeAll(conn, pattern(8));
      // Four bytes echoed, then the fault's FIN.
      deepEqual(await readToEnd(conn), pattern(4));
    }
    const samples = await scrape(base);
    equal(samples.get('tcpecho_faults_total{fault="close"}'), 6);
    equal(samples.get('tcpecho_faults_total{fault="reset"}'), 0);
    equal(samples.get("tcpecho_bytes_echoed_total"), 24);
    equal(await promtoolCheck((await get(`${base}/metrics`)).body), "");
    equal((await server.stop("SIGTERM")).code, 0);
  },
});

Deno.test("serve --metrics explains a bad address, and a busy port, in one line", async () => {
  const bad = await runCli(["serve", "--port", "0", "--metrics", "localhost:http"]);
  equal(bad.code, 2);
  equal(bad.stderr, "error: --metrics must be HOST:PORT or PORT, not 'localhost:http'\n");
  using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const taken = await runCli([
    "serve",
    "--port",
    "0",
    "--metrics",
    `127.0.0.1:${busy.addr.port}`,
  ]);
  equal(taken.code, 1);
  match(
    taken.stderr,
    new RegExp(
      `^error: metrics endpoint: cannot listen on 127.0.0.1 port ${busy.addr.port}: the address is already in use\n$`,
    ),
  );
});

/** A real Prometheus server on loopback scraping `target` every 100 ms, its data in a temporary directory. */
class PrometheusServer implements AsyncDisposable {
  readonly port = freePort();
  readonly #dir = Deno.makeTempDirSync({ prefix: "tcpecho-prometheus-" });
  readonly #child: Deno.ChildProcess;

  constructor(target: string) {
    const config = `${this.#dir}/prometheus.yml`;
    Deno.writeTextFileSync(
      config,
      [
        "global:",
        "  scrape_interval: 100ms",
        "  scrape_timeout: 100ms",
        "scrape_configs:",
        "  - job_name: tcpecho",
        "    static_configs:",
        `      - targets: ["${target}"]`,
        "",
      ].join("\n"),
    );
    this.#child = new Deno.Command("prometheus", {
      args: [
        `--config.file=${config}`,
        `--storage.tsdb.path=${this.#dir}/data`,
        `--web.listen-address=127.0.0.1:${this.port}`,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
  }

  /** Asks Prometheus for `query` until it has a value, up to `timeout` ms; returns the value. */
  async query(query: string, timeout = 30_000): Promise<string> {
    const deadline = Date.now() + timeout;
    const url = `http://127.0.0.1:${this.port}/api/v1/query?query=${encodeURIComponent(query)}`;
    for (;;) {
      try {
        const body = await (await fetch(url)).json();
        const value = body?.data?.result?.[0]?.value?.[1];
        if (typeof value === "string") return value;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`Prometheus had no value for ${query}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#child.kill("SIGTERM");
    await this.#child.status;
    await Deno.remove(this.#dir, { recursive: true });
  }
}

Deno.test({
  ...needs("prometheus", "a real Prometheus scrapes serve --metrics and serves its counts back"),
  async fn() {
    const { server, base } = await serveWithMetrics();
    await using _ = server;
    for (let i = 0; i < 3; i++) await echo(server.port, pattern(100));
    await using prometheus = new PrometheusServer(base.replace("http://", ""));
    equal(await prometheus.query('up{job="tcpecho"} == 1'), "1");
    equal(await prometheus.query("tcpecho_connections_accepted_total"), "3");
    equal(await prometheus.query('tcpecho_connections_closed_total{reason="eof"}'), "3");
    equal(await prometheus.query("tcpecho_bytes_echoed_total"), "300");
    equal((await server.stop("SIGTERM")).code, 0);
  },
});
