import { equal, match } from "node:assert/strict";
import { serveMetrics } from "../../lib/metrics_endpoint.ts";
import { PROMETHEUS_CONTENT_TYPE, PrometheusText } from "../../lib/prometheus.ts";
import { freePort, needs } from "../helpers.ts";

async function get(
  url: string,
  method = "GET",
): Promise<{ status: number; type: string; body: string }> {
  const response = await fetch(url, { method });
  return {
    status: response.status,
    type: response.headers.get("content-type") ?? "",
    body: await response.text(),
  };
}

Deno.test("the endpoint answers /metrics, /healthz and /readyz, and nothing else", async () => {
  let ready = true;
  await using endpoint = serveMetrics({
    hostname: "127.0.0.1",
    port: 0,
    metrics: () => new PrometheusText().gauge("demo_up", "Up.", 1).toString(),
    ready: () => ready,
  });
  const base = `http://127.0.0.1:${endpoint.addr.port}`;
  const metrics = await get(`${base}/metrics`);
  equal(metrics.status, 200);
  equal(metrics.type, PROMETHEUS_CONTENT_TYPE);
  equal(metrics.body, "# HELP demo_up Up.\n# TYPE demo_up gauge\ndemo_up 1\n");
  equal((await get(`${base}/healthz`)).status, 200);
  equal((await get(`${base}/readyz`)).status, 200);
  ready = false;
  const notReady = await get(`${base}/readyz`);
  equal(notReady.status, 503);
  equal(notReady.body, "not ready: shutting down\n");
  equal((await get(`${base}/healthz`)).status, 200);
  equal((await get(`${base}/readyz`, "HEAD")).status, 503);
  equal((await get(`${base}/`)).status, 404);
  equal((await get(`${base}/metrics`, "POST")).status, 405);
});

Deno.test("a metrics source that throws gives the scrape a 500 and the operator a message", async () => {
  const errors: string[] = [];
  await using endpoint = serveMetrics({
    hostname: "127.0.0.1",
    port: 0,
    metrics: () => {
      throw new Error("worker 2 did not answer");
    },
    ready: () => true,
    onError: (message) => errors.push(message),
  });
  const response = await get(`http://127.0.0.1:${endpoint.addr.port}/metrics`);
  equal(response.status, 500);
  equal(errors.length, 1);
  match(errors[0], /^metrics endpoint: worker 2 did not answer$/);
});

/** A real Prometheus server on loopback scraping `target` every 100 ms, with its data in a temporary directory. */
class PrometheusServer implements AsyncDisposable {
  readonly port = freePort();
  readonly #dir: string;
  readonly #child: Deno.ChildProcess;

  constructor(target: string) {
    this.#dir = Deno.makeTempDirSync({ prefix: "tcpecho-prometheus-" });
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
  async query(query: string, timeout = 20_000): Promise<string> {
    const deadline = Date.now() + timeout;
    const url = `http://127.0.0.1:${this.port}/api/v1/query?query=${encodeURIComponent(query)}`;
    for (;;) {
      try {
        const response = await fetch(url);
        const body = await response.json();
        const value = body?.data?.result?.[0]?.value?.[1];
        if (typeof value === "string") return value;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`Prometheus had no value for ${query}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#child.kill("SIGTERM");
    await this.#child.status;
    await Deno.remove(this.#dir, { recursive: true });
  }
}

Deno.test({
  ...needs("prometheus", "a real Prometheus server scrapes the endpoint and serves the value back"),
  async fn() {
    let accepted = 41;
    await using endpoint = serveMetrics({
      hostname: "127.0.0.1",
      port: 0,
      metrics: () =>
        new PrometheusText()
          .counter("demo_connections_accepted_total", "Connections accepted.", ++accepted)
          .toString(),
      ready: () => true,
    });
    await using prometheus = new PrometheusServer(`127.0.0.1:${endpoint.addr.port}`);
    const up = await prometheus.query('up{job="tcpecho"} == 1');
    equal(up, "1");
    const value = Number(await prometheus.query("demo_connections_accepted_total"));
    equal(
      value > 41 && value <= accepted,
      true,
      `Prometheus read ${value}, served up to ${accepted}`,
    );
  },
});
