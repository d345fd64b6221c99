/**
 * The UDP echo server of RFC 862: every datagram is sent back whole to where it came from.
 *
 * @module
 */

import type { EchoEvent } from "./events.ts";
import {
  checkChange,
  type FaultChange,
  mergedFaults,
  type ServerFaults,
  serverFaults,
} from "./_server_faults.ts";
import { type EchoStats, type EchoTimeRecorder, noStats } from "./stats.ts";
import { errorReason } from "../base/errors.ts";
import type { DatagramFaults } from "../faults/plan.ts";
import type { FaultSettings } from "../faults/settings.ts";
import { formatPeer } from "../net/peer.ts";
import { listenDatagram, UDP_RECEIVE_BUFFER_SIZE } from "../net/transport.ts";

/** How a UDP echo server behaves. */
export interface UdpEchoServerOptions {
  /** The socket to serve; the server owns it from now on and closes it on shutdown. */
  socket: Deno.DatagramConn;
  /** Called for every datagram; omit it to run without any per-datagram work. */
  onEvent?: (event: EchoEvent) => void;
  /** Called when a datagram cannot be received or echoed. */
  onError?: (message: string) => void;
  /**
   * Counts the seconds from each datagram received to the end of its echo's send; omit it to read
   * no clock per datagram.
   */
  echoTimes?: EchoTimeRecorder;
  /**
   * Misbehave on purpose: drop (`dropRate`), duplicate (`duplicateRate`) or hold back (`delay`,
   * `jitter`, which reorders datagrams) a share of the datagrams, reproducibly from `seed`: the
   * same seed picks the same datagrams by their number. Default: none.
   */
  faults?: FaultSettings;
}

/**
 * A running UDP echo server. Datagrams are echoed one at a time, in the order they arrive.
 * Dispose of it (`await using`) or call {@linkcode UdpEchoServer.shutdown} to stop it.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { UdpEchoServer } from "./udp_echo_server.ts";
 *
 * await using server = new UdpEchoServer({
 *   socket: Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }),
 * });
 * const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
 * await client.send(new TextEncoder().encode("ping"), server.addr);
 * const [echo] = await client.receive();
 * client.close();
 * equal(new TextDecoder().decode(echo), "ping");
 * ```
 */
export class UdpEchoServer implements AsyncDisposable {
  readonly #socket: Deno.DatagramConn;
  readonly #onEvent?: (event: EchoEvent) => void;
  readonly #onError?: (message: string) => void;
  readonly #echoTimes?: EchoTimeRecorder;
  readonly #stats: EchoStats = noStats();
  readonly #loop: Promise<void>;
  #faults?: ServerFaults;
  /** The seed of faults set later without one: the run's own. */
  #seed?: number;
  /** The timer that undoes a change made `for` a while. */
  #passing?: ReturnType<typeof setTimeout>;
  #ready = true;
  /** Echoes held back by a delay fault, by timer. */
  readonly #delayed = new Map<ReturnType<typeof setTimeout>, () => Promise<void>>();
  #closing = false;

  /** Starts echoing on `options.socket` at once. */
  constructor(options: UdpEchoServerOptions) {
    this.#socket = options.socket;
    this.#onEvent = options.onEvent;
    this.#onError = options.onError;
    this.#echoTimes = options.echoTimes;
    this.#faults = serverFaults(options.faults);
    this.#seed = this.#faults?.settings.seed ?? options.faults?.seed;
    this.#loop = this.#echo();
  }

  /** The address the server listens on, with the real port when port 0 was asked for. */
  get addr(): Deno.NetAddr {
    return this.#socket.addr as Deno.NetAddr;
  }

  /** A snapshot of the server's counters. */
  get stats(): EchoStats {
    return structuredClone(this.#stats);
  }

  /** The faults in force, with the seed they run on (a random one unless set); or undefined. */
  get faults(): Readonly<FaultSettings> | undefined {
    return this.#faults?.settings;
  }

  /** True unless {@linkcode UdpEchoServer.setReady} said otherwise. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Sets what {@linkcode UdpEchoServer.ready} reports; the server echoes as before either way. */
  setReady(ready: boolean): void {
    this.#ready = ready;
  }

  /**
   * Replaces the faults from the next datagram on (none when `settings` turns on none), with
   * the constructor's checks: a `UsageError` changes nothing. With `change.for` (ms), the
   * faults before the change come back after that long. A setting without `seed` runs on the
   * server's seed.
   *
   * @example
   * ```ts
   * import { equal } from "node:assert/strict";
   * import { startUdpEchoServer } from "../mod.ts";
   *
   * await using server = startUdpEchoServer({ hostname: "127.0.0.1", port: 0 });
   * server.setFaults({ dropRate: 1 });
   * equal(server.faults?.dropRate, 1);
   * server.updateFaults({ dropRate: undefined, delay: 5 });
   * equal(server.faults?.delay, 5);
   * server.clearFaults();
   * equal(server.faults, undefined);
   * ```
   */
  setFaults(settings: FaultSettings, change: Pick<FaultChange, "for"> = {}): void {
    const next = serverFaults({ ...settings, seed: settings.seed ?? this.#seed });
    checkChange(change);
    const before = this.#faults;
    clearTimeout(this.#passing);
    this.#faults = next;
    if (change.for === undefined) return;
    this.#passing = setTimeout(() => this.#faults = before, change.for);
  }

  /** Merges `settings` into the faults in force (`undefined` removes one), then as `setFaults`. */
  updateFaults(settings: FaultSettings, change: Pick<FaultChange, "for"> = {}): void {
    this.setFaults(mergedFaults(this.faults, settings), change);
  }

  /** Removes every fault. */
  clearFaults(): void {
    this.setFaults({});
  }

  async #echo(): Promise<void> {
    const buffer = new Uint8Array(UDP_RECEIVE_BUFFER_SIZE);
    while (!this.#closing) {
      let data: Uint8Array;
      let peer: Deno.Addr;
      try {
        [data, peer] = await this.#socket.receive(buffer);
      } catch (err) {
        if (this.#closing || err instanceof Deno.errors.BadResource) break;
        this.#onError?.(`receive failed: ${errorReason(err)}`);
        continue;
      }
      const receivedAt = this.#echoTimes ? performance.now() : 0;
      const id = ++this.#stats.datagrams;
      this.#stats.bytesReceived += data.length;
      // Datagrams wait in the socket's buffer while a fault plan loads.
      const faults = this.#faults && (await this.#faults.plan).forDatagram(id);
      this.#onEvent?.({ type: "datagram", id, peer, data, ...(faults?.drop && { dropped: true }) });
      if (faults) await this.#echoWithFaults(id, data, peer, receivedAt, faults);
      else if (!await this.#send(id, data, peer, receivedAt)) break;
    }
  }

  /** Echoes one datagram; false once the server is closing. */
  async #send(id: number, data: Uint8Array, peer: Deno.Addr, receivedAt: number): Promise<boolean> {
    try {
      await this.#socket.send(data, peer);
      this.#stats.bytesEchoed += data.length;
      this.#echoTimes?.observe((performance.now() - receivedAt) / 1000);
    } catch (err) {
      if (this.#closing) return false;
      this.#onError?.(`cannot echo datagram ${id} to ${formatPeer(peer)}: ${errorReason(err)}`);
    }
    return true;
  }

  async #echoWithFaults(
    id: number,
    data: Uint8Array,
    peer: Deno.Addr,
    receivedAt: number,
    faults: DatagramFaults,
  ): Promise<void> {
    for (const { kind, detail } of faults.injected) {
      this.#stats.faults[kind]++;
      this.#onEvent?.({ type: "datagram-fault", id, peer, fault: kind, detail });
    }
    if (faults.drop) return;
    for (const delay of faults.delays) {
      if (delay === 0) {
        await this.#send(id, data, peer, receivedAt);
        continue;
      }
      // The receive buffer is reused for the next datagram.
      const copy = data.slice();
      const send = () => {
        clearTimeout(timer);
        this.#delayed.delete(timer);
        return this.#send(id, copy, peer, receivedAt).then(() => {});
      };
      const timer = setTimeout(send, delay);
      this.#delayed.set(timer, send);
    }
  }

  /**
   * Closes the socket and resolves once the receive loop has ended, with 0: UDP has no
   * connections left open to drain. The same first step as `EchoServer.stopAccepting`.
   */
  async stopAccepting(): Promise<number> {
    // Echoes a delay fault still holds back go out now rather than never.
    await Promise.all([...this.#delayed.values()].map((send) => send()));
    this.abort();
    await this.#loop;
    return 0;
  }

  /**
   * Closes the socket and resolves once the receive loop has ended. UDP has no connections to
   * drain, so the drain timeout a stream server takes is accepted and not needed.
   */
  async shutdown(_drainTimeout?: number): Promise<void> {
    await this.stopAccepting();
  }

  /** Closes the socket at once. */
  abort(): void {
    if (this.#closing) return;
    this.#closing = true;
    for (const timer of this.#delayed.keys()) clearTimeout(timer);
    this.#delayed.clear();
    try {
      this.#socket.close();
    } catch { /* already closed */ }
  }

  /** Stops the server; for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }
}

/** Where and how to start a UDP echo server with {@linkcode startUdpEchoServer}. */
export interface StartUdpEchoServerOptions {
  /** Address to listen on. Default `localhost`. */
  hostname?: string;
  /** Port to listen on; 0 picks a free one (read it back from `addr.port`). Default 10000. */
  port?: number;
  /** Called for every datagram. */
  onEvent?: (event: EchoEvent) => void;
  /** Called when a datagram cannot be received or echoed. */
  onError?: (message: string) => void;
  /** Faults to inject; see {@linkcode UdpEchoServerOptions.faults}. */
  faults?: FaultSettings;
}

/**
 * Starts a UDP echo server (RFC 862: each datagram is sent back whole). Deno keeps UDP behind
 * `--unstable-net`: run with that flag. It is `AsyncDisposable`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { sendAndVerify, startUdpEchoServer } from "../mod.ts";
 *
 * await using server = startUdpEchoServer({ hostname: "127.0.0.1", port: 0 });
 * const result = await sendAndVerify({
 *   udp: true,
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   message: new TextEncoder().encode("ping"),
 * });
 * equal(result.bytesReceived, 4);
 * equal(server.stats.datagrams, 1);
 * ```
 */
export function startUdpEchoServer(options: StartUdpEchoServerOptions = {}): UdpEchoServer {
  const { hostname, port, ...rest } = options;
  return new UdpEchoServer({ ...rest, socket: listenDatagram({ hostname, port }) });
}
