import { deepEqual, equal, throws } from "node:assert/strict";
import {
  checkPositionals,
  formatSize,
  hostAndPort,
  parseCount,
  parseFlags,
  parsePort,
  parseSize,
  parseTime,
} from "../../cli/args.ts";
import { UsageError } from "../../lib/base/errors.ts";

const OPTIONS = {
  port: { type: "string", short: "p" },
  quiet: { type: "boolean", short: "q" },
} as const;

/** Asserts `run` throws a UsageError with exactly `message`. */
function throwsUsage(run: () => unknown, message: string): void {
  throws(run, (err) => err instanceof UsageError && err.message === message);
}

Deno.test("parseFlags reads long, short and inline values and positionals", () => {
  deepEqual(parseFlags("serve", ["-p", "7", "--quiet", "msg"], OPTIONS), {
    values: { port: "7", quiet: true },
    positionals: ["msg"],
  });
  deepEqual(parseFlags("serve", ["--port=8"], OPTIONS).values, { port: "8" });
});

Deno.test("parseFlags turns parse errors into one-line usage errors naming the flag", () => {
  throwsUsage(
    () => parseFlags("serve", ["--bogus"], OPTIONS),
    "unknown flag --bogus (see 'tcpecho serve --help')",
  );
  throwsUsage(
    () => parseFlags("send", ["-x"], OPTIONS),
    "unknown flag -x (see 'tcpecho send --help')",
  );
  throwsUsage(
    () => parseFlags("serve", ["--port"], OPTIONS),
    "flag --port needs a value (see 'tcpecho serve --help')",
  );
  throwsUsage(
    () => parseFlags("serve", ["-p"], OPTIONS),
    "flag --port needs a value (see 'tcpecho serve --help')",
  );
  throwsUsage(
    () => parseFlags("serve", ["--quiet=1"], OPTIONS),
    "flag --quiet does not take a value (see 'tcpecho serve --help')",
  );
});

Deno.test("parseFlags gives a flag a value that starts with a dash and a digit", () => {
  deepEqual(parseFlags("serve", ["--port", "-1"], OPTIONS).values, { port: "-1" });
  deepEqual(parseFlags("serve", ["-p", "-.5"], OPTIONS).values, { port: "-.5" });
  // After --, everything is an argument; a boolean flag takes no value.
  deepEqual(parseFlags("serve", ["--", "--port", "-1"], OPTIONS).positionals, ["--port", "-1"]);
  throwsUsage(
    () => parseFlags("serve", ["-q", "-1"], OPTIONS),
    "unknown flag -1 (see 'tcpecho serve --help')",
  );
});

Deno.test("parsePort accepts 0 (or the minimum given) to 65535 and nothing else", () => {
  equal(parsePort("0"), 0);
  equal(parsePort("65535"), 65535);
  equal(parsePort(" 80 "), 80);
  for (const bad of ["abc", "70000", "65536", "-1", "", "1.5", "0x50"]) {
    throwsUsage(() => parsePort(bad), `--port must be a port number from 0 to 65535, not '${bad}'`);
  }
  throwsUsage(
    () => parsePort("0", "--port", 1),
    "--port must be a port number from 1 to 65535, not '0'",
  );
});

Deno.test("parseSize reads KiB as 1024 and kB as 1000, refuses kb, and checks the range", () => {
  const max = 16 * 1024 ** 2;
  equal(parseSize("16", "-b", 1, max), 16);
  equal(parseSize("64KiB", "-b", 1, max), 65536);
  equal(parseSize("64kB", "-b", 1, max), 64_000);
  equal(parseSize("1m", "-b", 1, max), 1024 ** 2);
  equal(parseSize("16 MiB", "-b", 1, max), max);
  for (const bad of ["0", "17MiB", "-5"]) {
    throwsUsage(
      () => parseSize(bad, "-b", 1, max),
      `-b must be a size from 1 B to 16 MiB, not '${bad}'`,
    );
  }
  for (const bad of ["1.5K1", "12parsecs", "KiB", "", "16b"]) {
    throwsUsage(
      () => parseSize(bad, "-b", 1, max),
      `-b must be a size such as 16, 64KiB (65,536 bytes), 64kB (64,000), 1M or 1MiB ` +
        `(1,048,576), not '${bad}'`,
    );
  }
  throwsUsage(
    () => parseSize("64kb", "-b", 1, max),
    "-b takes no '64kb': write 64kB for 64,000 bytes or 64KiB for 65,536",
  );
});

Deno.test("parseTime takes units, reads a bare number in the flag's unit, checks the range", () => {
  equal(parseTime("0.5", "--timeout", "s"), 500);
  equal(parseTime(".25", "--timeout", "s"), 250);
  equal(parseTime("10", "--timeout", "s"), 10_000);
  equal(parseTime("250ms", "--timeout", "s"), 250);
  equal(parseTime("1.5s", "--timeout", "s"), 1500);
  equal(parseTime("2m", "--timeout", "s"), 120_000);
  equal(parseTime("1h", "--timeout", "s"), 3_600_000);
  equal(parseTime("50", "--delay", "ms"), 50);
  equal(parseTime("2s", "--delay", "ms"), 2000);
  equal(parseTime("0", "--drain-timeout", "s", true), 0);
  equal(parseTime(" 2 ", "--timeout", "s"), 2000);
  equal(parseTime("2147483", "--timeout", "s"), 2_147_483_000);
  for (const bad of ["0", "0.0009", "-1", "2147483.648", "3000000", "0ms"]) {
    throwsUsage(
      () => parseTime(bad, "--timeout", "s"),
      `--timeout must be a duration from 1ms to 24.8 days, not '${bad}'`,
    );
  }
  for (const bad of ["soon", "1e3", "", "5 parsecs", "2d"]) {
    throwsUsage(
      () => parseTime(bad, "--timeout", "s"),
      `--timeout must be a duration such as 250ms, 1.5s, 2m or 1h (a bare number is in ` +
        `seconds), not '${bad}'`,
    );
  }
  throwsUsage(
    () => parseTime("0.0001", "--interval", "s", true),
    "--interval must be a duration from 0 to 24.8 days, not '0.0001'",
  );
});

Deno.test("hostAndPort splits HOST:PORT and [IPV6]:PORT, keeps a bare IPv6 address whole", () => {
  const parse = hostAndPort(1);
  deepEqual(parse("localhost", "--host"), { hostname: "localhost" });
  deepEqual(parse("::1", "--host"), { hostname: "::1" });
  deepEqual(parse("[::1]", "--host"), { hostname: "::1" });
  deepEqual(parse("[::1]:7", "--host"), { hostname: "::1", port: 7 });
  deepEqual(parse("127.0.0.1:24799", "--host"), { hostname: "127.0.0.1", port: 24799 });
  throwsUsage(() => parse("", "--host"), "--host needs a host name or an address, not ''");
  throwsUsage(() => parse(":7", "--host"), "--host needs a host name or an address, not ':7'");
  throwsUsage(
    () => parse("[::1]:x", "--host"),
    "the port in --host must be a port number from 1 to 65535, not 'x'",
  );
});

Deno.test("parseCount takes whole numbers within bounds", () => {
  equal(parseCount("3", "-n", 1, 10), 3);
  throwsUsage(
    () => parseCount("11", "-n", 1, 10),
    "-n must be a whole number from 1 to 10, not '11'",
  );
});

Deno.test("formatSize writes the largest whole unit", () => {
  deepEqual([1, 1023, 1024, 1536, 64 * 1024, 16 * 1024 ** 2, 1024 ** 3].map(formatSize), [
    "1 B",
    "1023 B",
    "1 KiB",
    "1536 B",
    "64 KiB",
    "16 MiB",
    "1 GiB",
  ]);
});

Deno.test("checkPositionals rejects arguments beyond the maximum", () => {
  checkPositionals("send", ["one"], 1);
  throwsUsage(
    () => checkPositionals("send", ["a", "b"], 1),
    "unexpected argument 'b' (see 'tcpecho send --help')",
  );
  throwsUsage(
    () => checkPositionals("serve", ["x"], 0),
    "unexpected argument 'x' (see 'tcpecho serve --help')",
  );
});
