import { deepEqual, equal } from "node:assert/strict";
import { isIPv4, isIPv6 } from "node:net";
import fc from "fast-check";
import {
  encodeProxyHeader,
  parseProxyHeader,
  PROXY_TLV,
  type ProxyHeaderInit,
  type ProxyParse,
  type ProxyTlv,
} from "../../lib/proxy/header.ts";
import { ProxyHeaderError } from "../../lib/base/errors.ts";
import { readProxyHeader } from "../../lib/proxy/reader.ts";

const text = new TextEncoder();

/** Parses, turning a {@linkcode ProxyHeaderError} into `undefined`; anything else fails. */
function parseOrRefuse(bytes: Uint8Array): ProxyParse | undefined {
  try {
    return parseProxyHeader(bytes, "any");
  } catch (err) {
    if (err instanceof ProxyHeaderError) return undefined;
    throw err;
  }
}

const port = fc.integer({ min: 0, max: 65535 });
const ipv4 = fc.ipV4();
const ipv6 = fc.oneof(fc.ipV6(), ipv4.map((v4) => `::ffff:${v4}`));
const bytes = (maxLength: number) => fc.uint8Array({ maxLength });
const words = (maxLength: number) => fc.string({ maxLength }).map((s) => text.encode(s));

function ipPair(
  transport: "tcp" | "udp",
  address: fc.Arbitrary<string>,
): fc.Arbitrary<Pick<ProxyHeaderInit, "source" | "destination">> {
  const addr = fc.record({ transport: fc.constant(transport), hostname: address, port });
  return fc.record({ source: addr, destination: addr });
}

const unixPath = fc.string({ minLength: 1, maxLength: 30 }).filter((path) => !path.includes("\0"))
  .map((path): Deno.UnixAddr => ({ transport: "unix", path }));

const sslTlv = fc.record({
  flags: fc.integer({ min: 0, max: 7 }),
  verify: fc.integer({ min: 0, max: 0xffffffff }),
  subs: fc.array(
    fc.record({ type: fc.integer({ min: 0x21, max: 0x25 }), value: words(40) }),
    { maxLength: 4 },
  ),
}).map(({ flags, verify, subs }): ProxyTlv => {
  const value = new Uint8Array([
    flags,
    verify >>> 24,
    (verify >>> 16) & 0xff,
    (verify >>> 8) & 0xff,
    verify & 0xff,
    ...subs.flatMap((
      sub,
    ) => [sub.type, sub.value.length >> 8, sub.value.length & 0xff, ...sub.value]),
  ]);
  return { type: PROXY_TLV.SSL, value };
});

/** Any TLV a sender may send: the known ones well formed, every other type with any value. */
const tlv: fc.Arbitrary<ProxyTlv> = fc.oneof(
  fc.record({ type: fc.constantFrom(0x01, 0x02, 0x30), value: words(60) }),
  fc.record({ type: fc.constant(0x05), value: bytes(128) }),
  sslTlv,
  fc.record({
    type: fc.integer({ min: 0, max: 255 }).filter((t) => ![0x03, 0x05, 0x20].includes(t)),
    value: bytes(80),
  }),
);

/** Every header the builder accepts. */
const headerInit: fc.Arbitrary<ProxyHeaderInit> = fc.oneof(
  fc.constant<ProxyHeaderInit>({ version: 1 }),
  ipPair("tcp", ipv4).map((pair): ProxyHeaderInit => ({ version: 1, ...pair })),
  ipPair("tcp", ipv6).map((pair): ProxyHeaderInit => ({ version: 1, ...pair })),
  fc.record({
    command: fc.constantFrom("PROXY" as const, "LOCAL" as const),
    addresses: fc.oneof(
      fc.constant({}),
      ipPair("tcp", ipv4),
      ipPair("udp", ipv4),
      ipPair("tcp", ipv6),
      ipPair("udp", ipv6),
      fc.record({ source: unixPath, destination: unixPath }),
    ),
    tlvs: fc.array(tlv, { maxLength: 6 }),
    crc32c: fc.boolean(),
  }).map(({ command, addresses, tlvs, crc32c }): ProxyHeaderInit => ({
    version: 2,
    command,
    ...addresses,
    // First, so that no cut of the header at a TLV boundary can leave the checksum out.
    tlvs: crc32c ? [{ type: PROXY_TLV.CRC32C, value: new Uint8Array(4) }, ...tlvs] : tlvs,
  })),
);

Deno.test("proxy property: every header the builder makes parses back to the same bytes", () => {
  fc.assert(
    fc.property(headerInit, bytes(32), (init, after) => {
      const header = encodeProxyHeader(init);
      const parsed = parseProxyHeader(new Uint8Array([...header, ...after]), `v${init.version}`);
      equal(parsed.length, header.length);
      deepEqual(encodeProxyHeader(parsed.header!), header);
      equal(parsed.header!.command, init.command ?? "PROXY");
      equal(parsed.header!.tlvs.length, init.tlvs?.length ?? 0);
      if (init.source && "hostname" in init.source && parsed.header!.source) {
        equal((parsed.header!.source as Deno.NetAddr).port, init.source.port);
      }
    }),
    { numRuns: 500 },
  );
});

Deno.test("proxy property: a partial header never asks for a byte past its end", () => {
  fc.assert(
    fc.property(headerInit, fc.nat(), (init, cut) => {
      const header = encodeProxyHeader(init);
      const prefix = cut % header.length;
      const { needed } = parseProxyHeader(header.subarray(0, prefix), "any");
      equal(needed !== undefined && needed >= 1 && prefix + needed <= header.length, true);
    }),
    { numRuns: 500 },
  );
});

Deno.test("proxy property: random bytes are refused or incomplete, never a crash", () => {
  const start = fc.constantFrom(
    new Uint8Array(0),
    text.encode("PROXY "),
    text.encode("PROXY TCP4 "),
    text.encode("PROXY TCP6 "),
    text.encode("PROXY UNKNOWN"),
    encodeProxyHeader({ version: 2 }).subarray(0, 12),
    encodeProxyHeader({ version: 2 }).subarray(0, 14),
  );
  fc.assert(
    fc.property(start, bytes(300), (prefix, rest) => {
      const input = new Uint8Array([...prefix, ...rest]);
      const parsed = parseOrRefuse(input);
      if (parsed?.header) equal(parsed.length <= input.length, true);
      if (parsed && !parsed.header) equal(parsed.needed >= 1, true);
    }),
    { numRuns: 2000 },
  );
});

/**
 * A v2 header whose CRC32C TLV comes first stays protected by it against a change of any one byte
 * but two: the TLV's type byte, whose change makes the checksum an unchecked TLV of another type,
 * and the length, which can shrink to end the header before the CRC32C TLV. No checksum can catch
 * that: the shorter header carries no CRC32C, and what followed it is data.
 */
Deno.test("proxy property: a v2 header with a CRC32C and one byte changed is accepted only as a shorter header without it", () => {
  const checked = headerInit.filter((init) =>
    init.version === 2 && init.command !== "LOCAL" &&
    init.tlvs?.[0]?.type === PROXY_TLV.CRC32C
  );
  fc.assert(
    fc.property(checked, fc.nat(), fc.integer({ min: 1, max: 255 }), (init, at, delta) => {
      const header = encodeProxyHeader(init);
      const tlvBytes = init.tlvs!.reduce((sum, { value }) => sum + 3 + value.length, 0);
      const crcType = header.length - tlvBytes;
      const mutated = header.slice();
      const i = at % header.length === crcType ? crcType + 1 : at % header.length;
      mutated[i] = (mutated[i] + delta) & 0xff;
      const parsed = parseOrRefuse(mutated);
      const length = 16 + ((mutated[14] << 8) | mutated[15]);
      if (length > crcType || !parsed?.header) {
        equal(parsed?.header, undefined);
        return;
      }
      // The length shrank to end the header before its CRC32C TLV.
      equal(parsed.length, length);
      equal(parsed.header.tlvs.some((tlv) => tlv.type === PROXY_TLV.CRC32C), false);
    }),
    { numRuns: 1000 },
  );
});

/**
 * A version 1 line checked the plain way, with Node's own address checks: the CRLF within 107
 * bytes and before any other CR or LF, then exactly the fields of the protocol.
 */
function validV1(line: string): number | undefined {
  const end = line.search(/[\r\n]/);
  if (end < 0 || line.slice(end, end + 2) !== "\r\n" || end + 2 > 107) return undefined;
  const fields = line.slice(0, end).split(" ");
  if (fields[0] !== "PROXY") return undefined;
  if (fields[1] === "UNKNOWN") return end + 2;
  const isIp = fields[1] === "TCP4" ? isIPv4 : fields[1] === "TCP6" ? isIPv6 : undefined;
  const isPort = (p: string) => /^(0|[1-9]\d*)$/.test(p) && Number(p) <= 65535;
  const valid = isIp && fields.length === 6 && isIp(fields[2]) && isIp(fields[3]) &&
    !line.slice(0, end).includes("%") && isPort(fields[4]) && isPort(fields[5]);
  return valid ? end + 2 : undefined;
}

Deno.test("proxy property: a mutated v1 line is accepted exactly when it is valid", () => {
  const v1 = headerInit.filter((init) => init.version === 1);
  const alphabet = fc.constantFrom(..."0123456789abcdefABCDEF.: \r\nPROXYTCP46UNKW%-x");
  const edit = fc.record({
    at: fc.nat(),
    kind: fc.constantFrom("replace", "insert", "delete"),
    char: alphabet,
  });
  fc.assert(
    fc.property(v1, fc.array(edit, { minLength: 1, maxLength: 3 }), (init, edits) => {
      let line = new TextDecoder().decode(encodeProxyHeader(init));
      for (const { at, kind, char } of edits) {
        const i = at % (line.length + 1);
        line = line.slice(0, i) + (kind === "delete" ? "" : char) +
          line.slice(kind === "insert" ? i : i + 1);
      }
      const parsed = parseOrRefuse(text.encode(line));
      equal(parsed?.length, validV1(line), JSON.stringify(line));
    }),
    { numRuns: 3000 },
  );
});

/**
 * A connection that delivers `chunks` (as much of each as each read asks for), then stalls
 * until closed, as a silent client does.
 */
function stallingSource(chunks: Uint8Array[]) {
  const pending = chunks.map((chunk) => chunk.slice());
  let closed: () => void = () => {};
  const hangUp = new Promise<null>((_, reject) => {
    closed = () => reject(new Deno.errors.Interrupted("operation canceled"));
  });
  hangUp.catch(() => {});
  return {
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 } as Deno.NetAddr,
    consumed: 0,
    read(buffer: Uint8Array): Promise<number | null> {
      const chunk = pending[0];
      if (!chunk) return hangUp;
      const n = Math.min(buffer.length, chunk.length);
      buffer.set(chunk.subarray(0, n));
      pending[0] = chunk.subarray(n);
      if (pending[0].length === 0) pending.shift();
      this.consumed += n;
      return Promise.resolve(n);
    },
    close: () => closed(),
  };
}

Deno.test("proxy property: any bytes, cut anyhow, end in a header or a refusal by the deadline", async () => {
  const start = fc.constantFrom(
    new Uint8Array(0),
    text.encode("PROXY TCP4 1.2.3.4"),
    encodeProxyHeader({ version: 2 }).subarray(0, 12),
  );
  const input = fc.oneof(
    headerInit.map((init) => encodeProxyHeader(init)),
    fc.tuple(start, bytes(120)).map(([prefix, rest]) => new Uint8Array([...prefix, ...rest])),
  );
  const cuts = fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 6 });
  await fc.assert(
    fc.asyncProperty(input, cuts, async (bytes, sizes) => {
      const chunks: Uint8Array[] = [];
      for (let at = 0, i = 0; at < bytes.length; i++) {
        chunks.push(bytes.subarray(at, at += sizes[i % sizes.length]));
      }
      const source = stallingSource(chunks);
      const expected = parseOrRefuse(bytes);
      let guard: ReturnType<typeof setTimeout> | undefined;
      const hung = new Promise<never>((_, reject) => {
        guard = setTimeout(() => reject(new Error("still reading 2 s past its deadline")), 2020);
      });
      try {
        const info = await Promise.race([readProxyHeader(source, { timeout: 20 }), hung]);
        equal(info.length, expected?.length);
        equal(source.consumed, info.length);
      } catch (err) {
        if (!(err instanceof ProxyHeaderError)) throw err;
        equal(expected?.header, undefined, err.message);
      } finally {
        clearTimeout(guard);
      }
    }),
    { numRuns: 150 },
  );
});
