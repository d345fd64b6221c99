/**
 * The control API: a small JSON HTTP API that changes a running echo server's weather (its
 * faults, readiness, limits and open connections) without a restart, on Deno's own HTTP server.
 * See docs/control.md for every call, and {@linkcode CONTROL_OPENAPI} for its OpenAPI
 * description, which it serves at `/openapi.json`.
 *
 * Changes are applied one at a time, in the order they arrive, each after the one before has
 * reached every server: two `PATCH /faults` at once both land, neither undoing the other.
 *
 * @example Set a delay over HTTP, then clear it
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { serveControl, serverTarget, startEchoServer } from "../mod.ts";
 *
 * await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
 * await using control = serveControl({ hostname: "127.0.0.1", port: 0, target: serverTarget(server) });
 * const url = `http://127.0.0.1:${control.addr.port}/faults`;
 * const set = await fetch(url, { method: "PUT", body: JSON.stringify({ delay: "50ms" }) });
 * equal((await set.json()).faults.delay, "50ms");
 * equal(server.faults?.delay, 50);
 * const bad = await fetch(url, { method: "PATCH", body: JSON.stringify({ jitter: "soon" }) });
 * equal(bad.status, 400);
 * equal(server.faults?.jitter, undefined);
 * await (await fetch(url, { method: "DELETE" })).body?.cancel();
 * equal(server.faults, undefined);
 * ```
 *
 * @module
 */

import { errorReason, explainNetworkError, netPermission, UsageError } from "../base/errors.ts";
import { formatAddress } from "../net/peer.ts";
import { checkFaults, describeFaults, type FaultSettings } from "../faults/settings.ts";
import type { UdpEchoServer } from "../server/udp_echo_server.ts";
import type {
  EchoServer,
  FaultChange,
  OpenConnection,
  ServerLimits,
} from "../server/echo_server.ts";
import { CONTROL_OPENAPI } from "./openapi.ts";
import {
  checkTransport,
  durationText,
  durationValue,
  faultsFromJson,
  faultsToJson,
  flagName,
  wholeValue,
} from "./values.ts";

/**
 * What the API changes: one echo server ({@linkcode serverTarget}), or several that must all
 * agree (the workers of `serve --workers`). Each change resolves once every server has it.
 */
export interface ControlTarget {
  /** How many servers a change reaches. */
  readonly servers: number;
  /** True for a UDP server: the faults that work on streams are refused, and vice versa. */
  readonly udp: boolean;
  /** The faults new connections get now, or undefined. */
  faults(): Promise<Readonly<FaultSettings> | undefined>;
  /** Replaces the faults; see `EchoServer.setFaults`. */
  setFaults(settings: FaultSettings, change: FaultChange): Promise<void>;
  /** What `/readyz` reports. */
  ready(): boolean;
  /** Sets what `/readyz` reports. */
  setReady(ready: boolean): Promise<void>;
  /** The limits in force. */
  limits(): Promise<{ maxConnections?: number; idleTimeout?: number }>;
  /** Changes limits; see `EchoServer.setLimits`. */
  setLimits(limits: ServerLimits): Promise<void>;
  /** Closes open connections; resolves with how many. */
  closeConnections(options: { reset?: boolean; peer?: string }): Promise<number>;
  /** The open connections of every server. */
  connections(): Promise<OpenConnection[]>;
  /**
   * Resolves once the change with `count` or `for` in force runs its course, saying which (see
   * `EchoServer.changeRunsOut`). Without it, the API logs only the end of `for`, by its own timer.
   */
  changeRunsOut?(): Promise<"count" | "for" | undefined>;
}

/**
 * The {@linkcode ControlTarget} of one echo server. A UDP server has no connections: it lists
 * none, and refuses limits, `close` and a change for the next N connections.
 */
export function serverTarget(server: EchoServer | UdpEchoServer): ControlTarget {
  const udp = !("connections" in server);
  const noConnections = (what: string) => () =>
    Promise.reject(new UsageError(`${what}: a UDP server has no connections`));
  return {
    servers: 1,
    udp,
    faults: () => Promise.resolve(server.faults),
    setFaults(settings, change) {
      if (udp && change.count !== undefined) return noConnections("count")();
      return Promise.resolve(server.setFaults(settings, change));
    },
    ready: () => server.ready,
    setReady: (ready) => Promise.resolve(server.setReady(ready)),
    limits: () => Promise.resolve(udp ? {} : (server as EchoServer).limits),
    setLimits: udp
      ? noConnections("limits")
      : (limits) => Promise.resolve((server as EchoServer).setLimits(limits)),
    closeConnections: udp
      ? noConnections("close")
      : (options) => Promise.resolve((server as EchoServer).closeConnections(options)),
    connections: () => Promise.resolve(udp ? [] : (server as EchoServer).connections()),
    changeRunsOut: udp ? undefined : () => (server as EchoServer).changeRunsOut(),
  };
}

/** One change made through the API, for the log. */
export interface ControlChange {
  /** Who asked: `127.0.0.1:50312`. */
  readonly peer: string;
  /** The call: `PUT /faults`. */
  readonly call: string;
  /** What changed, as a phrase: `faults: delay 50 ms, on open connections too`. */
  readonly what: string;
}

/** Where the API listens, what it changes, and who may change it. */
export interface ControlOptions {
  /** The address to listen on. */
  hostname: string;
  /** The port; 0 for any free port. */
  port: number;
  /** What the API changes. */
  target: ControlTarget;
  /** Refuse a request without `Authorization: Bearer TOKEN` (401). Default: anyone on the port. */
  token?: string;
  /** Called once for each change made. */
  onChange?: (change: ControlChange) => void;
  /** Called when the API itself fails; the request then gets a 500. */
  onError?: (message: string) => void;
}

/** A running control API; dispose of it (`await using`) or call `shutdown` to stop it. */
export interface ControlEndpoint extends AsyncDisposable {
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** How many changes it has made. */
  readonly changes: number;
  /** Stops listening and waits for requests in flight. */
  shutdown(): Promise<void>;
}

/** The names in a `/faults` body that say how a change applies rather than what it is. */
const CHANGE_NAMES = ["scope", "count", "for"];

/**
 * Starts the control API at once; throws a `RuntimeError` that says why when the address cannot
 * be used.
 */
export function serveControl(options: ControlOptions): ControlEndpoint {
  const { hostname, port } = options;
  const api = new ControlApi(options);
  try {
    const server = Deno.serve({
      hostname,
      port,
      onListen: () => {},
      onError: (err) => {
        options.onError?.(`control API: ${errorReason(err)}`);
        return json({ error: "internal error" }, 500);
      },
    }, (request, info) => api.answer(request, formatAddress(info.remoteAddr)));
    return {
      addr: server.addr,
      get changes() {
        return api.changes;
      },
      shutdown: () => {
        api.stop();
        return server.shutdown();
      },
      [Symbol.asyncDispose]: () => {
        api.stop();
        return server.shutdown();
      },
    };
  } catch (err) {
    throw explainNetworkError(err, "listen", {
      hostname,
      port,
      permission: netPermission(hostname, port),
    });
  }
}

class ControlApi {
  readonly #options: ControlOptions;
  /** The changes in order: each starts once the one before has reached every server. */
  #queue: Promise<unknown> = Promise.resolve();
  /** The timer of the last change of faults made `for` a while, which logs its end. */
  #expiry?: ReturnType<typeof setTimeout>;
  changes = 0;

  constructor(options: ControlOptions) {
    this.#options = options;
  }

  async answer(request: Request, peer: string): Promise<Response> {
    const { pathname, searchParams } = new URL(request.url);
    const call = `${request.method} ${pathname}`;
    if (pathname === "/openapi.json" && request.method === "GET") return json(CONTROL_OPENAPI);
    const { token } = this.#options;
    if (token !== undefined && !sameToken(request.headers.get("authorization"), token)) {
      await request.body?.cancel();
      return json({ error: "this API needs a token: Authorization: Bearer TOKEN" }, 401, {
        "www-authenticate": "Bearer",
      });
    }
    const route = ROUTES[pathname];
    if (!route) {
      await request.body?.cancel();
      return json({ error: `not found: the paths are ${Object.keys(ROUTES).join(", ")}` }, 404);
    }
    const handler = route[request.method];
    if (!handler) {
      await request.body?.cancel();
      return json({ error: `method not allowed: ${call}` }, 405, {
        allow: Object.keys(route).join(", "),
      });
    }
    try {
      const body = request.body ? await readJson(request) : undefined;
      const target = this.#options.target;
      const work = this.#queue.then(() => handler(target, body, searchParams));
      this.#queue = work.catch(() => {});
      const { answer, what, faults } = await work;
      if (what !== undefined) this.#changed({ peer, call, what });
      if (faults) this.#expireAfter(faults);
      return json({ ...answer, servers: target.servers });
    } catch (err) {
      if (err instanceof UsageError) return json({ error: err.message }, 400);
      throw err;
    }
  }

  /** Stops the timer of a change that undoes itself. */
  stop(): void {
    clearTimeout(this.#expiry);
  }

  #changed(change: ControlChange): void {
    this.changes++;
    this.#options.onChange?.(change);
  }

  /**
   * A change of faults was made: the one before it no longer ends by itself, and this one, when
   * it lasts `lasts` ms or `count` connections, is logged as a change of its own when the
   * servers undo it.
   */
  #expireAfter({ lasts, count, runsOut }: NonNullable<Handled["faults"]>): void {
    clearTimeout(this.#expiry);
    const { target } = this.#options;
    const ended = async (how: "count" | "for") => {
      const now = await target.faults();
      this.#changed({
        peer: "the server",
        call: `the end of "${how}"`,
        what: `faults back to ${now ? describeFaults(now).join(", ") : "none"} after ${
          how === "count" ? `${count} connection${count === 1 ? "" : "s"}` : `${lasts! / 1000} s`
        }`,
      });
    };
    if (lasts === undefined && count === undefined) return;
    if (runsOut) {
      runsOut.then((how) => how && ended(how));
    } else if (lasts !== undefined) {
      // Set after the servers' own timers of the same length, so it fires after them.
      this.#expiry = setTimeout(() => ended("for"), lasts);
    }
  }
}

/** What a call answers, and the phrase of what it changed (undefined for a read). */
interface Handled {
  answer: Record<string, unknown>;
  what?: string;
  /**
   * A change of faults, which undoes itself after `lasts` ms or `count` connections when one is
   * set; `runsOut` settles then, when the target can tell.
   */
  faults?: {
    lasts?: number;
    count?: number;
    runsOut?: Promise<"count" | "for" | undefined>;
  };
}

type Handler = (
  target: ControlTarget,
  body: unknown,
  query: URLSearchParams,
) => Promise<Handled>;

const ROUTES: Record<string, Record<string, Handler>> = {
  "/faults": {
    GET: async (target) => ({ answer: faultsAnswer(await target.faults()) }),
    PUT: (target, body) => changeFaults(target, body, false),
    PATCH: (target, body) => changeFaults(target, body, true),
    DELETE: async (target, _body, query) => {
      const change = changeOf({ scope: query.get("scope") ?? undefined });
      await target.setFaults({}, change);
      return {
        answer: faultsAnswer(undefined),
        what: `faults cleared${scopePhrase(change)}`,
        faults: {},
      };
    },
  },
  "/ready": {
    GET: (target) => Promise.resolve({ answer: { ready: target.ready() } }),
    PUT: async (target, body) => {
      const ready = typeof body === "object" && body !== null && "ready" in body
        ? (body as { ready: unknown }).ready
        : body;
      if (typeof ready !== "boolean") {
        throw new UsageError(`ready must be true or false, not ${JSON.stringify(ready)}`);
      }
      await target.setReady(ready);
      return { answer: { ready }, what: `ready ${ready}` };
    },
  },
  "/limits": {
    GET: async (target) => ({ answer: limitsAnswer(await target.limits()) }),
    PUT: async (target, body) => {
      const fields = objectOf(body, "limits");
      const limits: ServerLimits = {};
      for (const [name, value] of Object.entries(fields)) {
        if (name === "max-connections") {
          limits.maxConnections = value === null ? null : wholeValue(name, value, 1, 1_000_000);
        } else if (name === "idle-timeout") {
          limits.idleTimeout = value === null
            ? null
            : positive(name, durationValue(name, value, "s"));
        } else {
          throw new UsageError(
            `unknown limit '${name}': the names are max-connections, idle-timeout`,
          );
        }
      }
      await target.setLimits(limits);
      const answer = limitsAnswer(await target.limits());
      return { answer, what: `limits ${phrases(answer.limits as Record<string, unknown>)}` };
    },
  },
  "/close": {
    POST: async (target, body) => {
      const fields = body === undefined ? {} : objectOf(body, "close");
      for (const name of Object.keys(fields)) {
        if (name !== "reset" && name !== "peer") {
          throw new UsageError(`unknown option '${name}': the names are reset, peer`);
        }
      }
      const { reset, peer } = fields;
      if (reset !== undefined && typeof reset !== "boolean") {
        throw new UsageError(`reset must be true or false, not ${JSON.stringify(reset)}`);
      }
      if (peer !== undefined && typeof peer !== "string") {
        throw new UsageError(`peer must be a host or host:port, not ${JSON.stringify(peer)}`);
      }
      const closed = await target.closeConnections({ reset, peer });
      const how = reset ? "reset" : "closed";
      return {
        answer: { closed, reset: reset ?? false },
        what: `${closed} connection${closed === 1 ? "" : "s"} ${how}${peer ? ` from ${peer}` : ""}`,
      };
    },
  },
  "/connections": {
    GET: async (target) => ({
      answer: {
        connections: (await target.connections()).map((connection) => ({
          ...connection,
          peer: formatAddress(connection.peer),
          age: Math.round(connection.age),
        })),
      },
    }),
  },
};

/** A change of faults: replaced (`PUT`) or merged into those in force (`PATCH`). */
async function changeFaults(
  target: ControlTarget,
  body: unknown,
  merge: boolean,
): Promise<Handled> {
  const fields = objectOf(body, "faults");
  const changeFields: Record<string, unknown> = {};
  const faultFields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) {
    (CHANGE_NAMES.includes(name) ? changeFields : faultFields)[name] = value;
  }
  const change = changeOf(changeFields);
  let settings = faultsFromJson(faultFields);
  checkTransport(settings, target.udp);
  if (merge) {
    const merged: Record<string, unknown> = { ...await target.faults(), ...settings };
    // null or false removes a fault.
    for (const [name, value] of Object.entries(faultFields)) {
      if (value === null || value === false) delete merged[settingName(name)];
    }
    settings = merged as FaultSettings;
    checkFaults(settings, flagName);
  }
  await target.setFaults(settings, change);
  // Asked at once, before a connection can end a `count` change.
  const runsOut = target.changeRunsOut?.();
  const now = await target.faults();
  const phrase = now ? describeFaults(now).join(", ") : "none";
  return {
    answer: faultsAnswer(now),
    what: `faults ${phrase}${scopePhrase(change)}`,
    faults: { lasts: change.for, count: change.count, runsOut },
  };
}

/** `reset-after` is `resetAfter`. */
function settingName(name: string): string {
  return name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

function changeOf(fields: Record<string, unknown>): FaultChange {
  const { scope, count } = fields;
  if (scope !== undefined && scope !== "new" && scope !== "all") {
    throw new UsageError(`scope must be new or all, not ${JSON.stringify(scope)}`);
  }
  return {
    scope,
    count: count === undefined ? undefined : wholeValue("count", count, 1, 1_000_000_000),
    for: fields.for === undefined
      ? undefined
      : positive("for", durationValue("for", fields.for, "s")),
  };
}

function positive(name: string, ms: number): number {
  if (!(ms > 0)) throw new UsageError(`${name} must be more than 0, not ${ms} ms`);
  return ms;
}

function scopePhrase(change: FaultChange): string {
  return [
    change.scope === "all" ? ", open connections too" : "",
    change.count === undefined ? "" : `, next ${change.count} connections`,
    change.for === undefined ? "" : `, for ${change.for / 1000} s`,
  ].join("");
}

function faultsAnswer(settings: FaultSettings | undefined): Record<string, unknown> {
  return {
    faults: faultsToJson(settings),
    description: settings ? describeFaults(settings).join(", ") : "none",
  };
}

function limitsAnswer(limits: { maxConnections?: number; idleTimeout?: number }) {
  return {
    limits: {
      "max-connections": limits.maxConnections ?? null,
      "idle-timeout": limits.idleTimeout === undefined ? null : durationText(limits.idleTimeout),
    },
  };
}

function phrases(fields: Record<string, unknown>): string {
  return Object.entries(fields).map(([name, value]) => `${name} ${value ?? "none"}`).join(", ");
}

function objectOf(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new UsageError(`the body of ${what} must be a JSON object`);
  }
  return body as Record<string, unknown>;
}

async function readJson(request: Request): Promise<unknown> {
  const text = await request.text();
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`the body is not JSON: ${JSON.stringify(text.slice(0, 40))}`);
  }
}

/** Compares the whole header with what it should be, in time that does not depend on where they differ. */
function sameToken(header: string | null, token: string): boolean {
  const given = new TextEncoder().encode(header ?? "");
  const wanted = new TextEncoder().encode(`Bearer ${token}`);
  let differ = given.length ^ wanted.length;
  for (let i = 0; i < wanted.length; i++) differ |= wanted[i] ^ (given[i] ?? 0);
  return differ === 0;
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(`${JSON.stringify(body)}\n`, {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}
