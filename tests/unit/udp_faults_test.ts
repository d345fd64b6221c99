import { deepEqual, equal } from "node:assert/strict";
import { FaultPlan } from "../../lib/faults/plan.ts";
import { type EchoEvent, startUdpEchoServer } from "../../lib/mod.ts";

const sanitized = { sanitizeOps: true, sanitizeResources: true };

/** Sends datagrams `0..count-1` (one byte each) and collects `expected` echoes. */
async function exchange(port: number, count: number, expected: number): Promise<number[]> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    for (let i = 0; i < count; i++) {
      await socket.send(new Uint8Array([i]), { transport: "udp", hostname: "127.0.0.1", port });
    }
    const echoes: number[] = [];
    while (echoes.length < expected) echoes.push((await socket.receive())[0][0]);
    return echoes;
  } finally {
    socket.close();
  }
}

Deno.test({
  name: "UDP: duplicates come back twice, drops never, as the seed decides",
  ...sanitized,
  async fn() {
    const events: EchoEvent[] = [];
    const server = startUdpEchoServer({
      hostname: "127.0.0.1",
      port: 0,
      faults: { dropRate: 0.3, duplicateRate: 0.3, seed: 4 },
      onEvent: (event) => events.push(event),
    });
    const faults = () =>
      events.flatMap((event) => event.type === "datagram-fault" ? [[event.id, event.fault]] : []);
    // Datagrams are numbered from 1 in arrival order; the one-byte payload is the number - 1.
    const count = 40;
    const expected = (() => {
      // The plan is a pure function of the seed: work out what must come back.
      const dropped = new Set<number>(), doubled = new Set<number>();
      const plan = new FaultPlan({ dropRate: 0.3, duplicateRate: 0.3, seed: 4 });
      for (let id = 1; id <= count; id++) {
        const decision = plan.forDatagram(id)!;
        if (decision.drop) dropped.add(id);
        else if (decision.delays.length === 2) doubled.add(id);
      }
      return { dropped, doubled };
    })();
    const total = count - expected.dropped.size + expected.doubled.size;
    const echoes = await exchange(server.addr.port, count, total);
    await server.shutdown();
    for (let id = 1; id <= count; id++) {
      const copies = echoes.filter((byte) => byte === id - 1).length;
      equal(copies, expected.dropped.has(id) ? 0 : expected.doubled.has(id) ? 2 : 1, `#${id}`);
    }
    deepEqual(
      faults().filter(([, fault]) => fault === "drop").map(([id]) => id),
      [...expected.dropped],
    );
    equal(server.stats.faults.drop, expected.dropped.size);
    equal(server.stats.faults.duplicate, expected.doubled.size);
  },
});

Deno.test({
  name: "UDP: jitter reorders echoes, and shutdown sends the held ones at once",
  ...sanitized,
  async fn() {
    const server = startUdpEchoServer({
      hostname: "127.0.0.1",
      port: 0,
      faults: { delay: 10, jitter: 100, seed: 2 },
    });
    const echoes = await exchange(server.addr.port, 20, 20);
    deepEqual([...echoes].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
    equal(echoes.some((byte, i) => byte !== i), true, `${echoes}`);
    await server.shutdown();

    const arrived = Promise.withResolvers<void>();
    const held = startUdpEchoServer({
      hostname: "127.0.0.1",
      port: 0,
      faults: { delay: 60_000 },
      onEvent: (event) => event.type === "datagram-fault" && arrived.resolve(),
    });
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    await socket.send(new Uint8Array([7]), held.addr);
    await arrived.promise;
    const started = performance.now();
    await held.shutdown();
    const [echo] = await socket.receive();
    socket.close();
    deepEqual([...echo], [7]);
    equal(performance.now() - started < 5000, true);
  },
});
