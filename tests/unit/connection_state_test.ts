import { deepEqual, equal, throws } from "node:assert/strict";
import { IllegalTransitionError } from "../../lib/base/errors.ts";
import {
  type ConnectionState,
  discardedAfterFin,
  moveTo,
  nextStates,
} from "../../lib/server/connection_state.ts";

const STATES: ConnectionState[] = [
  "handshaking",
  "open",
  "draining",
  "closing",
  "half-closed",
  "closed",
];

/** The life of a connection as the docs draw it: forward one step, or to closed from anywhere. */
const LEGAL: [ConnectionState, ConnectionState][] = [
  ["handshaking", "open"],
  ["handshaking", "draining"],
  ["handshaking", "closed"],
  ["open", "draining"],
  ["open", "closed"],
  ["draining", "closing"],
  ["draining", "closed"],
  ["closing", "half-closed"],
  ["closing", "closed"],
  ["half-closed", "closed"],
];

for (const [from, to] of LEGAL) {
  Deno.test(`connection state: ${from} -> ${to} is a legal move`, () => {
    const connection = { state: from };
    moveTo(connection, to);
    equal(connection.state, to);
  });
}

Deno.test("connection state: every other move throws and leaves the state as it was", () => {
  let refused = 0;
  for (const from of STATES) {
    for (const to of STATES) {
      if (LEGAL.some(([a, b]) => a === from && b === to)) continue;
      const connection = { state: from };
      throws(() => moveTo(connection, to), IllegalTransitionError, `${from} -> ${to}`);
      equal(connection.state, from);
      refused++;
    }
  }
  equal(refused, STATES.length ** 2 - LEGAL.length);
});

Deno.test("connection state: the table of moves is the one the tests list", () => {
  for (const from of STATES) {
    deepEqual(
      [...nextStates(from)].sort(),
      LEGAL.filter(([a]) => a === from).map(([, b]) => b).sort(),
      from,
    );
  }
});

Deno.test("connection state: bytes read after our FIN are counted as discarded, not before", () => {
  const stats = { bytesDiscarded: 0 };
  equal(discardedAfterFin({ state: "closing" }, stats, 5), false);
  equal(stats.bytesDiscarded, 0);
  equal(discardedAfterFin({ state: "half-closed" }, stats, 5), true);
  equal(stats.bytesDiscarded, 5);
});
