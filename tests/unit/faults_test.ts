import { deepEqual, equal, notEqual, ok, throws } from "node:assert/strict";
import { UsageError } from "../../lib/base/errors.ts";
import { FaultPlan } from "../../lib/faults/plan.ts";
import {
  checkFaults,
  describeFaults,
  FAULT_UNITS,
  hasFaults,
  needsReset,
  noFaultCounts,
} from "../../lib/faults/settings.ts";

Deno.test("the same seed makes the same choices for every connection and datagram", () => {
  const settings = { faultRate: 0.5, jitter: 100, corruptRate: 0.5, dropRate: 0.5, seed: 42 };
  const draws = (plan: FaultPlan) =>
    Array.from({ length: 200 }, (_, i) => {
      const faults = plan.forConnection(i + 1);
      const datagram = plan.forDatagram(i + 1);
      return [
        faults === undefined ? null : [faults.random.next(), faults.random.below(1000)],
        datagram === undefined ? null : [datagram.drop, ...datagram.delays],
      ];
    });
  const first = draws(new FaultPlan(settings));
  deepEqual(draws(new FaultPlan(settings)), first);
  notEqual(JSON.stringify(draws(new FaultPlan({ ...settings, seed: 43 }))), JSON.stringify(first));
});

Deno.test("a connection's choices depend on its number only, not on the order of asking", () => {
  const plan = new FaultPlan({ faultRate: 0.5, seed: 9 });
  const forwards = [1, 2, 3, 4, 5, 6, 7, 8].map((id) => plan.forConnection(id)?.random.next());
  const backwards = [8, 7, 6, 5, 4, 3, 2, 1].map((id) => plan.forConnection(id)?.random.next());
  deepEqual(backwards.reverse(), forwards);
});

Deno.test("rates hit about their share, and 0 and 1 hit none and all", () => {
  const share = (rate: number) => {
    const plan = new FaultPlan({ delay: 1, faultRate: rate, dropRate: rate, seed: 1 });
    let connections = 0, drops = 0;
    for (let id = 1; id <= 10_000; id++) {
      if (plan.forConnection(id)) connections++;
      if (plan.forDatagram(id)?.drop) drops++;
    }
    return [connections / 10_000, drops / 10_000];
  };
  deepEqual(share(0), [0, 0]);
  deepEqual(share(1), [1, 1]);
  const [connections, drops] = share(0.3);
  ok(Math.abs(connections - 0.3) < 0.03, `${connections}`);
  // Dropped datagrams are those both chosen (0.3) and then dropped (0.3).
  ok(Math.abs(drops - 0.09) < 0.02, `${drops}`);
});

Deno.test("a seed is picked when none is given, and reported", () => {
  const plan = new FaultPlan({ delay: 5 });
  ok(Number.isInteger(plan.settings.seed));
  ok(describeFaults(plan.settings).includes(`seed ${plan.settings.seed}`));
});

Deno.test("datagram delays add jitter, and a duplicate gets its own delay", () => {
  const plan = new FaultPlan({ delay: 10, jitter: 5, duplicateRate: 1, seed: 3 });
  const { drop, delays } = plan.forDatagram(1)!;
  equal(drop, false);
  equal(delays.length, 2);
  for (const delay of delays) ok(delay >= 10 && delay <= 15, `${delay}`);
});

Deno.test("settings out of range or at odds with each other are usage errors", () => {
  const bad: [Parameters<typeof checkFaults>[0], RegExp][] = [
    [{ faultRate: 1.5 }, /faultRate must be from 0 to 1/],
    [{ dropRate: -0.1 }, /dropRate must be from 0 to 1/],
    [{ delay: -1 }, /delay must be from 0/],
    [{ jitter: 2 ** 31 }, /jitter must be from 0 to 2147483647 ms/],
    [{ slice: 0 }, /slice must be a whole number of bytes, at least 1/],
    [{ resetAfter: 1.5 }, /resetAfter must be a whole number/],
    [{ bandwidth: NaN }, /bandwidth must be a whole number/],
    [{ seed: -1 }, /seed must be a whole number from 0 to 4294967295/],
    [{ stallEvery: 1000 }, /stallEvery and stallFor go together/],
    [{ stallEvery: 0, stallFor: 10 }, /stallEvery must be more than 0 ms/],
    [{ sliceDelay: 5 }, /sliceDelay needs slice/],
    [{ blackhole: true, noRead: true }, /give one of them/],
  ];
  for (const [settings, message] of bad) {
    throws(() => new FaultPlan(settings), (err: Error) => {
      ok(err instanceof UsageError, err.message);
      ok(message.test(err.message), err.message);
      return true;
    });
  }
});

Deno.test("which settings turn faults on, and which need a reset", () => {
  equal(hasFaults(undefined), false);
  equal(hasFaults({}), false);
  equal(hasFaults({ seed: 1, faultRate: 0.5 }), false);
  equal(hasFaults({ blackhole: false }), false);
  equal(hasFaults({ delay: 0 }), true);
  equal(hasFaults({ noRead: true }), true);
  equal(needsReset({ delay: 5 }), false);
  equal(needsReset({ resetAfter: 5 }), true);
  equal(needsReset({ resetAfterTime: 5 }), true);
});

Deno.test("the start-up phrases name every fault", () => {
  deepEqual(
    describeFaults({
      delay: 50,
      bandwidth: 65536,
      slice: 1,
      sliceDelay: 2000,
      resetAfterTime: 1500,
      closeAfter: 1,
      stallEvery: 2000,
      stallFor: 500,
      corruptRate: 0.001,
      duplicateRate: 0.25,
      faultRate: 0.5,
      seed: 0,
    }),
    [
      "delay 50 ms",
      "bandwidth 65,536 bytes/s",
      "slices of 1 byte 2 s apart",
      "reset after 1,500 ms",
      "close after 1 byte echoed",
      "stall 500 ms every 2 s",
      "corrupt 0.1% of chunks",
      "duplicate 25% of datagrams",
      "on 50% of connections",
      "seed 0",
    ],
  );
  deepEqual(describeFaults({ blackhole: true }), ["blackhole"]);
  deepEqual(describeFaults({ noRead: true, dropRate: 0.5 }), ["no read", "drop 50% of datagrams"]);
  deepEqual(describeFaults({ seed: 5 }), []);
});

Deno.test("the registry: each kind counted once, in its order; each setting in one unit", () => {
  const kinds = FAULT_UNITS.flatMap((unit) => unit.kinds);
  deepEqual(Object.keys(noFaultCounts()), kinds);
  equal(new Set(kinds).size, kinds.length);
  const settings = FAULT_UNITS.flatMap((unit) => Object.keys(unit.settings));
  equal(new Set(settings).size, settings.length);
  for (const unit of FAULT_UNITS) {
    ok(unit.shape || unit.datagram, `${unit.kinds}: a unit acts on streams or datagrams`);
  }
});

Deno.test("the settings and the units load without the random generator's package", async () => {
  const settings = new URL("../../lib/faults/settings.ts", import.meta.url);
  const { stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", settings.pathname],
    stdout: "piped",
  }).output();
  const { modules } = JSON.parse(new TextDecoder().decode(stdout)) as {
    modules: { specifier: string }[];
  };
  ok(modules.some(({ specifier }) => specifier.endsWith("/lib/faults/stall.ts")));
  deepEqual(modules.filter(({ specifier }) => specifier.startsWith("npm:")), []);
});
