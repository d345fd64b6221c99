import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { OpenLoopSchedule, Pacer } from "../../lib/load/open_loop.ts";

Deno.test("open loop: each connection's share is evenly spaced, the connections staggered", () => {
  const schedule = new OpenLoopSchedule({ rate: 20_000, connections: 10 });
  for (let connection = 0; connection < 10; connection++) {
    const times = [];
    for (let sequence = connection; sequence < 200; sequence += 10) {
      equal(schedule.connectionOf(sequence), connection);
      times.push(schedule.dueAt(sequence));
    }
    ok(Math.abs(times[0] - connection * 0.05) < 1e-9);
    for (let i = 1; i < times.length; i++) ok(Math.abs(times[i] - times[i - 1] - 0.5) < 1e-9);
  }
});

Deno.test("open loop: dueBefore counts the messages whose due time is before it", () => {
  for (
    const options of [{ rate: 1000, connections: 1 }, { rate: 333, connections: 7, ramp: 2000 }]
  ) {
    const schedule = new OpenLoopSchedule(options);
    for (const ms of [0, 0.5, 1, 3, 999.9, 1000, 1500, 2000, 2001, 3000, 10_000]) {
      const count = schedule.dueBefore(ms);
      ok(count === 0 || schedule.dueAt(count - 1) < ms, `${ms}: message ${count - 1} is late`);
      ok(schedule.dueAt(count) >= ms, `${ms}: message ${count} is early`);
    }
  }
  equal(new OpenLoopSchedule({ rate: 1000, connections: 3 }).dueBefore(3000), 3000);
});

Deno.test("open loop: a ramp rises linearly to the full rate, then holds it", () => {
  const schedule = new OpenLoopSchedule({ rate: 1000, connections: 4, ramp: 2000 });
  // Half the full rate on average during the ramp: 1,000 messages in its 2 s.
  equal(schedule.dueBefore(2000), 1000);
  // The rate over each 100 ms of the ramp grows with time.
  const perSlice = Array.from(
    { length: 20 },
    (_, i) => schedule.dueBefore((i + 1) * 100) - schedule.dueBefore(i * 100),
  );
  ok(perSlice.every((n, i) => i === 0 || n >= perSlice[i - 1]), String(perSlice));
  ok(perSlice[0] <= 6 && perSlice[19] >= 94, String(perSlice));
  // Then one message a millisecond.
  equal(schedule.dueBefore(3000) - schedule.dueBefore(2000), 1000);
  ok(Math.abs(schedule.dueAt(2000) - 3000) < 1e-9);
});

Deno.test("open loop: a schedule refuses a rate, connections or ramp that make no sense", () => {
  throws(() => new OpenLoopSchedule({ rate: 0, connections: 1 }), RangeError);
  throws(() => new OpenLoopSchedule({ rate: Infinity, connections: 1 }), RangeError);
  throws(() => new OpenLoopSchedule({ rate: 10, connections: 0 }), RangeError);
  throws(() => new OpenLoopSchedule({ rate: 10, connections: 1.5 }), RangeError);
  throws(() => new OpenLoopSchedule({ rate: 10, connections: 1, ramp: -1 }), RangeError);
});

Deno.test("open loop: the pacer releases every message in order, never before it is due", async () => {
  const schedule = new OpenLoopSchedule({ rate: 5000, connections: 3 });
  const start = performance.now();
  const released: { sequence: number; due: number; at: number }[] = [];
  const pacer = new Pacer({
    schedule,
    start,
    duration: 100,
    release: (sequence, due) => released.push({ sequence, due, at: performance.now() }),
  });
  await pacer.run();
  equal(pacer.released, 500);
  deepEqual(released.map((r) => r.sequence), Array.from({ length: 500 }, (_, i) => i));
  for (const { sequence, due, at } of released) {
    equal(due, start + schedule.dueAt(sequence));
    ok(at >= due, `message ${sequence} released ${due - at} ms early`);
  }
});

Deno.test("open loop: a pacer that fell behind releases the backlog at once", async () => {
  const schedule = new OpenLoopSchedule({ rate: 10_000, connections: 1 });
  const released: number[] = [];
  // Started 50 ms ago: 500 messages are already due.
  const pacer = new Pacer({
    schedule,
    start: performance.now() - 50,
    total: 500,
    release: (sequence) => released.push(sequence),
  });
  await pacer.run();
  equal(released.length, 500);
});

Deno.test("open loop: stop ends a pacer that is waiting, leaving no timer behind", {
  sanitizeOps: true,
  sanitizeResources: true,
}, async () => {
  const released: number[] = [];
  const pacer = new Pacer({
    schedule: new OpenLoopSchedule({ rate: 1, connections: 1 }),
    release: (sequence) => released.push(sequence),
  });
  // The first message is due at once and released before run() first waits; the second is due a
  // second later, on a timer that stop() must clear.
  const running = pacer.run();
  deepEqual(released, [0]);
  pacer.stop();
  await running;
  deepEqual(released, [0]);
});
