/**
 * A small HTTP endpoint for operators and orchestrators: `/metrics` in the Prometheus text format,
 * `/healthz` (200 while the process runs) and `/readyz` (200 while the server accepts, 503 once it
 * stops). One request per connection (HTTP/1.1 with `Connection: close`, which Prometheus and
 * health checkers handle), so that the endpoint can hold each client to a deadline for its request
 * header and to a cap on connections: its sockets count against the same descriptor limit as the
 * echo server's, and a client that sends half a header must not keep one. (`Deno.serve` has
 * neither.)
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

import { explainNetworkError, netPermission, RuntimeError } from "../base/errors.ts";
import { writeAll } from "../base/io.ts";
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
  /** Milliseconds a client has to send its whole request header. Default 5000. */
  headerTimeout?: number;
  /** Connections served at once; more are closed at once. Default 16. */
  maxConnections?: number;
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
 * used, starting `metrics endpoint:`.
 */
export function serveMetrics(options: MetricsEndpointOptions): MetricsEndpoint {
  const { hostname, port } = options;
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname, port });
  } catch (err) {
    const explained = explainNetworkError(err, "listen", {
      hostname,
      port,
      permission: netPermission(hostname, port),
    });
    throw new RuntimeError(`metrics endpoint: ${explained.message}`, { cause: err });
  }
  const open = new Set<Promise<void>>();
  const maxConnections = options.maxConnections ?? 16;
  const accepting = (async () => {
    for await (const conn of listener) {
      if (open.size >= maxConnections) {
        conn.close();
        continue;
      }
      const served: Promise<void> = serve(conn, options).finally(() => open.delete(served));
      open.add(served);
    }
  })().catch(() => {/* the listener closed */});
  let stopped: Promise<void> | undefined;
  const shutdown = () =>
    stopped ??= (async () => {
      listener.close();
      await accepting;
      await Promise.all(open);
    })();
  return { addr: listener.addr, shutdown, [Symbol.asyncDispose]: shutdown };
}

/** The longest request header read: a scrape's is a few hundred bytes. */
const MAX_HEADER = 16 * 1024;

/** Reads one request header, answers it and closes; never rejects. */
async function serve(conn: Deno.Conn, options: MetricsEndpointOptions): Promise<void> {
  const timer = setTimeout(() => conn.close(), options.headerTimeout ?? 5000);
  try {
    const head = await readHeader(conn);
    clearTimeout(timer);
    if (head === undefined) return;
    const [method, target, version] = head.split("\r\n", 1)[0].split(" ");
    let response: Response;
    if (!/^HTTP\/1\.[01]$/.test(version ?? "") || !target?.startsWith("/")) {
      response = new Response("bad request\n", { status: 400, headers: TEXT });
    } else {
      response = await answer(method, new URL(target, "http://metrics").pathname, options)
        .catch((err) => {
          options.onError?.(
            `metrics endpoint: ${err instanceof Error ? err.message : String(err)}`,
          );
          return new Response("internal error\n", { status: 500, headers: TEXT });
        });
    }
    await writeAll(conn, await encode(response, method === "HEAD"));
  } catch {
    /* the client left, or the deadline closed the connection */
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed at the deadline */ }
  }
}

/** The request header up to its blank line; undefined when the client ends it first. */
async function readHeader(conn: Deno.Conn): Promise<string | undefined> {
  const buffer = new Uint8Array(MAX_HEADER);
  let received = 0;
  const decoder = new TextDecoder("latin1");
  while (received < buffer.length) {
    const n = await conn.read(buffer.subarray(received));
    if (n === null) return undefined;
    received += n;
    const text = decoder.decode(buffer.subarray(0, received));
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) return text.slice(0, end);
  }
  return undefined;
}

/** `response` as HTTP/1.1 bytes, closing the connection after it; no body for HEAD. */
async function encode(response: Response, head: boolean): Promise<Uint8Array> {
  const body = new Uint8Array(await response.arrayBuffer());
  const lines = [`HTTP/1.1 ${response.status} ${STATUS_TEXT[response.status] ?? ""}`];
  for (const [name, value] of response.headers) lines.push(`${name}: ${value}`);
  lines.push(`content-length: ${body.length}`, "connection: close", "", "");
  const header = new TextEncoder().encode(lines.join("\r\n"));
  if (head) return header;
  const bytes = new Uint8Array(header.length + body.length);
  bytes.set(header);
  bytes.set(body, header.length);
  return bytes;
}

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

async function answer(
  method: string,
  path: string,
  options: MetricsEndpointOptions,
): Promise<Response> {
  if (method !== "GET" && method !== "HEAD") {
    return new Response("method not allowed\n", {
      status: 405,
      headers: { ...TEXT, allow: "GET, HEAD" },
    });
  }
  switch (path) {
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
