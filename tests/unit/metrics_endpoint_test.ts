import { equal, match } from "node:assert/strict";
import { serveMetrics } from "../../lib/metrics/endpoint.ts";
import { PROMETHEUS_CONTENT_TYPE, PrometheusText } from "../../lib/metrics/prometheus.ts";

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
