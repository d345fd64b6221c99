/**
 * `serve --control HOST:PORT` and `--control-token-file FILE`: the flags, their checks, and the
 * start of the control API (loaded only when `--control` is given) with its log lines and its
 * counter in `/metrics`.
 *
 * @module
 */

import { anyText, listenAddress } from "./args.ts";
import { option, toggle } from "./flags.ts";
import { readTextInput } from "./read_input.ts";
import type { ServerLog } from "./server_log.ts";
import { UsageError } from "../lib/base/errors.ts";
import { isLoopback } from "../lib/net/peer.ts";
import { needsReset } from "../lib/faults/settings.ts";
import type { ControlEndpoint, ControlTarget } from "../lib/control/api.ts";
import type { EchoServer } from "../lib/server/echo_server.ts";
import type { UdpEchoServer } from "../lib/server/udp_echo_server.ts";

/** The control flags of `serve`. */
export const CONTROL_FLAGS = {
  control: option({
    value: "HOST:PORT",
    help: "serve the control API (JSON over HTTP: faults, readiness, limits, connections; see " +
      "docs/control.md and 'tcpecho ctl') at HOST:PORT, or at 127.0.0.1:PORT given a port alone",
    absent: "off",
    parse: listenAddress,
  }),
  "control-token-file": option({
    value: "FILE",
    help: "require the bearer token in FILE (its first line) on every control request; needed " +
      "when --control listens beyond loopback",
    absent: "none (anyone who reaches the port)",
    parse: anyText,
  }),
  "control-resets": toggle({
    help: "with --control over plain TCP: listen with node:net so that the API can reset " +
      "connections (POST /close with reset, reset faults set at run time); costs throughput",
  }),
};

/** What `--control` asks for, checked. */
export interface ControlSetup {
  at: { hostname: string; port: number };
  token?: string;
  /** `--control-resets`: the server's connections can be reset. */
  resets: boolean;
}

/**
 * The control API's settings from the flags, the token read; undefined without `--control`.
 * Throws a `UsageError` for a token without `--control`, an address beyond loopback without a
 * token.
 */
export async function controlSetup(
  flags: {
    control?: { hostname: string; port: number };
    "control-token-file"?: string;
    "control-resets": boolean;
  },
): Promise<ControlSetup | undefined> {
  const at = flags.control;
  const tokenFile = flags["control-token-file"];
  const resets = flags["control-resets"];
  if (at === undefined) {
    if (tokenFile !== undefined) throw new UsageError("--control-token-file needs --control");
    if (resets) throw new UsageError("--control-resets needs --control");
    return undefined;
  }
  if (tokenFile === undefined) {
    if (!isLoopback(at.hostname)) {
      throw new UsageError(
        `--control on ${at.hostname} is reachable from the network: give --control-token-file`,
      );
    }
    return { at, resets };
  }
  const token = (await readTextInput(tokenFile, "the control token")).split(/\r?\n/)[0].trim();
  if (token === "") throw new UsageError(`--control-token-file: ${tokenFile} holds no token`);
  return { at, token, resets };
}

/** A running control API, and its counter for `/metrics`. */
export interface Control {
  endpoint: ControlEndpoint;
  /** What `PUT /ready` set last: `/readyz` reports it while serving. */
  ready(): boolean;
  /** The Prometheus text of its counter, to add to `/metrics`. */
  metricsText(): string;
}

/**
 * Starts the control API of `setup` for `target` (a pool's, or one server's), every change
 * logged through `log`; the start-up line names `seed`, which faults set without one run on.
 * `startedResettable`: the server listens so that it can reset connections without
 * `--control-resets` (it started with a reset fault).
 */
export async function startControl(
  setup: ControlSetup,
  log: ServerLog,
  target: ControlTarget | EchoServer | UdpEchoServer,
  seed: number,
  startedResettable: boolean,
): Promise<Control> {
  const { serveControl, serverTarget } = await import("../lib/control/api.ts");
  const controlled = resetsExplained(
    "servers" in target ? target : serverTarget(target),
    setup.resets || startedResettable,
  );
  const endpoint = serveControl({
    ...setup.at,
    token: setup.token,
    target: controlled,
    onChange: (change) => log.controlChange(change.peer, change.call, change.what),
    onError: (message) => log.error(message),
  });
  log.controlAt(endpoint.addr, seed);
  if (!isLoopback(endpoint.addr.hostname)) {
    log.warn(
      `control API on ${endpoint.addr.hostname}: port ${endpoint.addr.port} is reachable from ` +
        "the network",
    );
  }
  return {
    endpoint,
    ready: () => controlled.ready(),
    metricsText: () =>
      "# HELP tcpecho_control_changes_total Changes made through the control API.\n" +
      "# TYPE tcpecho_control_changes_total counter\n" +
      `tcpecho_control_changes_total ${endpoint.changes}\n`,
  };
}

/** `target`, whose resets, when the server cannot send one, are refused naming the flag. */
function resetsExplained(target: ControlTarget, canReset: boolean): ControlTarget {
  if (canReset) return target;
  const refused = () =>
    Promise.reject(
      new UsageError("a reset needs serve --control-resets (over plain TCP); nothing changed"),
    );
  return {
    ...target,
    closeConnections: (options) => options.reset ? refused() : target.closeConnections(options),
    setFaults: (settings, change) =>
      needsReset(settings) ? refused() : target.setFaults(settings, change),
  };
}
