/**
 * A small HTTP endpoint for operators and orchestrators: `/metrics` in the Prometheus text format,
 * `/healthz` (200 while the process runs) and `/readyz` (200 while the server accepts, 503 once it
 * stops), on Deno's own HTTP server.
 *
 * @example Serve metrics and readiness on a free loopback port
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { serveMetrics } from "./endpoint.ts";
 *
 * let ready = true;
 * await using endpoint = serveMetrics({
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   metrics: () => "# TYPE demo_up gauge\ndemo_up 1\n",
 *   ready: () => ready,
 * });
 * const base = `http://127.0.0.1:${endpoint.addr.port}`;
 * equal((await (await fetch(`${base}/metrics`)).text()).endsWith("demo_up 1\n"), true);
 * ready = false;
 * const readyz = await fetch(`${base}/readyz`);
 * await readyz.body?.cancel();
 * equal(readyz.status, 503);
 * ```
 *
 * @module
 */

import { explainNetworkError, netPermission } from "../base/errors.ts";
import { PROMETHEUS_CONTENT_TYPE } from "./prometheus.ts";

/** Where the endpoint listens and what it reports. */
export interface MetricsEndpointOptions {
  /** The address to listen on. */
  hostname: string;
  /** The port to listen on; 0 for any free port. */
  port: number;
  /** The body of `/metrics`, in the Prometheus text format. */
  metrics: () => string | Promise<string>;
  /** Whether `/readyz` answers 200 (ready for new connections) or 503. */
  ready: () => boolean;
  /** Called when building the metrics fails; the scrape then gets a 500. */
  onError?: (message: string) => void;
}

/** A running metrics endpoint; dispose of it (`await using`) or call `shutdown` to stop it. */
export interface MetricsEndpoint extends AsyncDisposable {
  /** The address it listens on, with the real port when port 0 was asked for. */
  readonly addr: Deno.NetAddr;
  /** Stops listening and waits for requests in flight. */
  shutdown(): Promise<void>;
}

const TEXT = { "content-type": "text/plain; charset=utf-8" };

/**
 * Starts the endpoint at once; throws a `RuntimeError` that says why when the address cannot be
 * used.
 */
export function serveMetrics(options: MetricsEndpointOptions): MetricsEndpoint {
  const { hostname, port } = options;
  try {
    return start(options);
  } catch (err) {
    throw explainNetworkError(err, "listen", {
      hostname,
      port,
      permission: netPermission(hostname, port),
    });
  }
}

function start(options: MetricsEndpointOptions): MetricsEndpoint {
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    onListen: () => {},
    onError: (err) => {
      options.onError?.(`metrics endpoint: ${err instanceof Error ? err.message : String(err)}`);
      return new Response("internal error\n", { status: 500, headers: TEXT });
    },
  }, (request) => answer(request, options));
  return {
    addr: server.addr,
    shutdown: () => server.shutdown(),
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

async function answer(request: Request, options: MetricsEndpointOptions): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("method not allowed\n", {
      status: 405,
      headers: { ...TEXT, allow: "GET, HEAD" },
    });
  }
  switch (new URL(request.url).pathname) {
    case "/metrics":
      return new Response(await options.metrics(), {
        headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
      });
    case "/healthz":
      return new Response("ok\n", { headers: TEXT });
    case "/readyz":
      return options.ready()
        ? new Response("ready\n", { headers: TEXT })
        : new Response("not ready: shutting down\n", { status: 503, headers: TEXT });
    default:
      return new Response("not found: try /metrics, /healthz or /readyz\n", {
        status: 404,
        headers: TEXT,
      });
  }
}
