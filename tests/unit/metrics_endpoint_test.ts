import { equal, match, throws } from "node:assert/strict";
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

Deno.test("the endpoint closes a connection that sends half a header by its deadline, and caps its connections", async () => {
  await using endpoint = serveMetrics({
    hostname: "127.0.0.1",
    port: 0,
    metrics: () => "",
    ready: () => true,
    headerTimeout: 200,
    maxConnections: 2,
  });
  const { port } = endpoint.addr;
  const slow = await Deno.connect({ hostname: "127.0.0.1", port });
  await slow.write(new TextEncoder().encode("GET /metrics HTTP/1.1\r\nHost: x\r\n"));
  const second = await Deno.connect({ hostname: "127.0.0.1", port });
  // Two open: a third is closed at once, with no answer.
  const third = await Deno.connect({ hostname: "127.0.0.1", port });
  equal(await third.read(new Uint8Array(1)), null);
  third.close();
  // The half header gets no answer: the connection is closed at its deadline.
  equal(await slow.read(new Uint8Array(1)), null);
  slow.close();
  second.close();
  equal((await get(`http://127.0.0.1:${port}/healthz`)).status, 200);
});

Deno.test("a busy port names the metrics endpoint", () => {
  using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  throws(
    () =>
      serveMetrics({
        hostname: "127.0.0.1",
        port: busy.addr.port,
        metrics: () => "",
        ready: () => true,
      }),
    new RegExp(
      `^RuntimeError: metrics endpoint: cannot listen on 127\\.0\\.0\\.1 port ${busy.addr.port}: the address is already in use$`,
    ),
  );
});
