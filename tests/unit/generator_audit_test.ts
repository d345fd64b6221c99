/**
 * The load generator audits itself (issue 21): a run whose event loop is held up by other work
 * is marked generator-bound, with the lag and the late sends measured, and `not-generator-bound`
 * refuses it.
 */

import { equal, ok } from "node:assert/strict";
import { checkThresholds, parseThreshold, runLoad, startEchoServer } from "../../lib/mod.ts";

/** Holds the event loop busy for `busyMs` out of every `periodMs` until stopped: a hog. */
function hogEventLoop(periodMs: number, busyMs: number): () => void {
  const timer = setInterval(() => {
    const until = performance.now() + busyMs;
    while (performance.now() < until) { /* the generator's CPU taken by something else */ }
  }, periodMs);
  return () => clearInterval(timer);
}

Deno.test("a run whose event loop is held up is generator-bound, its lag and late sends measured", async () => {
  await using server = await startEchoServer({ hostname: "127.0.0.1", port: 0 });
  const stopHog = hogEventLoop(30, 25);
  let report;
  try {
    report = await runLoad({
      hostname: "127.0.0.1",
      port: server.addr.port,
      connections: 2,
      rate: 500,
      duration: 600,
    });
  } finally {
    stopHog();
  }
  const { audit } = report;
  ok(audit.eventLoopLag.count > 0);
  // Every 25 ms busy spell makes a 5 ms timer late by up to 25 ms.
  ok(audit.eventLoopLag.percentile(99) >= 10_000, `lag p99 ${audit.eventLoopLag.percentile(99)}`);
  equal(audit.sendDelay?.count, report.messages);
  ok(
    audit.sendDelay!.percentile(99) >= 10_000,
    `send delay p99 ${audit.sendDelay!.percentile(99)}`,
  );
  equal(audit.generatorBound, true);
  const [verdict] = checkThresholds([parseThreshold("not-generator-bound")], report);
  equal(verdict.ok, false);
  equal(report.connects.attempted, 2);
  equal(report.connects.made, 2);
});
