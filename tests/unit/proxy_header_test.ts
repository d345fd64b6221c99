import { deepEqual, equal, throws } from "node:assert/strict";
import {
  describeProxyTlvs,
  encodeProxyHeader,
  parseProxyHeader,
  PROXY_TLV,
  type ProxyHeaderInit,
  type ProxyMode,
} from "../../lib/proxy/header.ts";
import { ProxyHeaderError } from "../../lib/base/errors.ts";
import { UsageError } from "../../lib/base/errors.ts";

const text = new TextEncoder();

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!, (byte) => parseInt(byte, 16));
}

function tcp(hostname: string, port: number): Deno.NetAddr {
  return { transport: "tcp", hostname, port };
}

/** What HAProxy 2.6 sent to a backend, recorded on the wire, each followed by the data `hello`. */
const HAPROXY = {
  /** `server ... send-proxy` */
  v1: "50524f58592054435034203132372e302e302e31203132372e302e302e3120353830323820323135" +
    "31300d0a68656c6c6f",
  /** `check-send-proxy` with `send-proxy-v2`: a LOCAL health check. */
  local: "0d0a0d0a000d0a515549540a20000000",
  /** `send-proxy-v2 proxy-v2-options ssl,crc32c,unique-id,...` on a plain TCP frontend. */
  plain: "0d0a0d0a000d0a515549540a2111001e7f0000017f000001e8ee5407030004cedd948b0500002000050000" +
    "00000068656c6c6f",
  /** `send-proxy-v2-ssl-cn` behind `bind ... ssl crt ... alpn h2`. */
  ssl: "0d0a0d0a000d0a515549540a211100237f0000017f000001cb305408010002683220000f0100000000210007" +
    "544c5376312e3368656c6c6f",
  /** Every `proxy-v2-options` behind a TLS frontend, with SNI and a unique-id-format. */
  full: "0d0a0d0a000d0a515549540a2111007d7f0000017f0000019bfc5409030004fedf70cd010008687474702f" +
    "312e3102000c6578616d706c652e746573740500066162633132332000440100000000210007544c537631" +
    "2e33250005454332353624001165636473612d776974682d534841323536230016544c535f4145535f323536" +
    "5f47434d5f53484133383468656c6c6f",
};

Deno.test("proxy header: HAProxy's send-proxy line, data after it left alone", () => {
  const bytes = fromHex(HAPROXY.v1);
  const { header, length } = parseProxyHeader(bytes, "v1");
  equal(length, bytes.length - "hello".length);
  deepEqual(header, {
    version: 1,
    command: "PROXY",
    family: "TCP4",
    source: tcp("127.0.0.1", 58028),
    destination: tcp("127.0.0.1", 21510),
    tlvs: [],
  });
});

Deno.test("proxy header: HAProxy's check-send-proxy health check is LOCAL, UNSPEC", () => {
  const { header, length } = parseProxyHeader(fromHex(HAPROXY.local), "v2");
  equal(length, 16);
  deepEqual(header, { version: 2, command: "LOCAL", family: "UNSPEC", tlvs: [] });
});

Deno.test("proxy header: HAProxy's v2 TLVs, its CRC32C verified", () => {
  const plain = parseProxyHeader(fromHex(HAPROXY.plain), "v2");
  equal(plain.length, 46);
  deepEqual(plain.header?.source, tcp("127.0.0.1", 59630));
  deepEqual(describeProxyTlvs(plain.header!.tlvs), {
    crc32c: "cedd948b",
    unique_id: "",
    ssl: { client: [], verify: 0 },
  });

  const ssl = parseProxyHeader(fromHex(HAPROXY.ssl), "any").header!;
  deepEqual(describeProxyTlvs(ssl.tlvs), {
    alpn: "h2",
    ssl: { client: ["ssl"], verify: 0, version: "TLSv1.3" },
  });

  const full = parseProxyHeader(fromHex(HAPROXY.full), "any");
  equal(full.length, fromHex(HAPROXY.full).length - "hello".length);
  deepEqual(describeProxyTlvs(full.header!.tlvs), {
    crc32c: "fedf70cd",
    alpn: "http/1.1",
    authority: "example.test",
    unique_id: "616263313233",
    ssl: {
      client: ["ssl"],
      verify: 0,
      version: "TLSv1.3",
      key_alg: "EC256",
      sig_alg: "ecdsa-with-SHA256",
      cipher: "TLS_AES_256_GCM_SHA384",
    },
  });
});

Deno.test("proxy header: every family and command round-trips through the builder", () => {
  const inits: ProxyHeaderInit[] = [
    { version: 1 },
    { version: 1, source: tcp("2001:db8::7", 4242), destination: tcp("::1", 7) },
    { version: 2, command: "LOCAL" },
    { version: 2, source: tcp("203.0.113.7", 0), destination: tcp("192.0.2.1", 65535) },
    {
      version: 2,
      source: { transport: "udp", hostname: "::ffff:203.0.113.7", port: 53 },
      destination: { transport: "udp", hostname: "2001:db8::1", port: 53 },
    },
    {
      version: 2,
      family: "UNIX_DGRAM",
      source: { transport: "unix", path: "/run/client.sock" },
      destination: { transport: "unix", path: "/run/échø.sock" },
    },
    {
      version: 2,
      tlvs: [
        { type: PROXY_TLV.CRC32C, value: new Uint8Array(4) },
        { type: PROXY_TLV.NETNS, value: text.encode("blue") },
        { type: PROXY_TLV.NOOP, value: new Uint8Array(3) },
        { type: 0xea, value: Uint8Array.of(0x01, 0x76, 0x70, 0x63) },
        { type: 0x7f, value: text.encode("unknown types are skipped") },
      ],
    },
  ];
  for (const init of inits) {
    const bytes = encodeProxyHeader(init);
    const { header, length } = parseProxyHeader(bytes, `v${init.version}`);
    equal(length, bytes.length);
    deepEqual(encodeProxyHeader(header!), bytes);
    equal(header!.command, init.command ?? "PROXY");
  }
  const last = parseProxyHeader(encodeProxyHeader(inits.at(-1)!)).header!;
  deepEqual(Object.keys(describeProxyTlvs(last.tlvs)), ["crc32c", "netns", "0xea"]);
  equal(describeProxyTlvs(last.tlvs)["0xea"], "01767063");
});

Deno.test("proxy header: anything may follow UNKNOWN in v1, IPv6 is written canonically", () => {
  const unknown = parseProxyHeader(text.encode("PROXY UNKNOWN ff::1 whatever\r\n"), "v1");
  deepEqual(unknown.header, { version: 1, command: "PROXY", family: "UNSPEC", tlvs: [] });
  const v6 = parseProxyHeader(text.encode("PROXY TCP6 2001:DB8:0:0::7 ::FFFF:1.2.3.4 1 2\r\n"));
  deepEqual(v6.header?.source, tcp("2001:db8::7", 1));
  deepEqual(v6.header?.destination, tcp("::ffff:1.2.3.4", 2));
});

Deno.test("proxy header: LOCAL ignores an address block it cannot read", () => {
  const bytes = encodeProxyHeader({ version: 2, command: "LOCAL" });
  bytes[13] = 0x41;
  deepEqual(parseProxyHeader(bytes).header, {
    version: 2,
    command: "LOCAL",
    family: "UNSPEC",
    tlvs: [],
  });
});

/** A valid v2 TCP4 header with the given TLVs (raw bytes after the address block). */
function v2WithTlvBytes(tlvs: number[]): Uint8Array {
  const bytes = encodeProxyHeader({
    version: 2,
    source: tcp("203.0.113.7", 4242),
    destination: tcp("192.0.2.1", 443),
  });
  const header = new Uint8Array(bytes.length + tlvs.length);
  header.set(bytes);
  header.set(tlvs, bytes.length);
  header[15] += tlvs.length;
  return header;
}

/** The longest text form of an IPv6 address: 45 characters. */
const MAX_IPV6 = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";

const REJECTED: [string, Uint8Array, ProxyMode, RegExp][] = [
  ["HTTP", text.encode("GET / HTTP/1.1\r\n"), "any", /starts with "GET \/ HTTP\/1.1\\r\\n"/],
  ["TLS", Uint8Array.of(0x16, 0x03, 0x01, 0x02, 0x00), "any", /a TLS handshake/],
  ["binary", Uint8Array.of(0, 1, 2), "any", /starts with 0x00 0x01 0x02/],
  ["v2 where v1 is expected", fromHex(HAPROXY.local), "v1", /got a PROXY v2 header/],
  ["v1 where v2 is expected", text.encode("PROXY UNKNOWN\r\n"), "v2", /got a PROXY v1 header/],
  ["protocol", text.encode("PROXY TCP5 1.2.3.4"), "v1", /unknown protocol "TCP5"/],
  ["protocol, before the LF", text.encode("PROXY TCP5 1.2.3.4\r"), "v1", /unknown protocol "TCP5"/],
  ["UNKNOWN glued", text.encode("PROXY UNKNOWNX\r\n"), "v1", /unknown protocol "UNKNOWNX"/],
  ["octet", text.encode("PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n"), "v1", /bad source IPv4/],
  ["leading zero", text.encode("PROXY TCP4 1.2.3.4 01.2.3.4 1 2\r\n"), "v1", /destination IPv4/],
  ["IPv6 as TCP4", text.encode("PROXY TCP4 ::1 ::1 1 2\r\n"), "v1", /bad source IPv4/],
  ["zone", text.encode("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), "v1", /bad source IPv6/],
  ["port", text.encode("PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n"), "v1", /bad source port/],
  ["port zero", text.encode("PROXY TCP4 1.2.3.4 1.2.3.4 1 080\r\n"), "v1", /destination port/],
  ["two spaces", text.encode("PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n"), "v1", /bad destination/],
  ["fields", text.encode("PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n"), "v1", /3 of the 4 fields/],
  ["extra field", text.encode("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n"), "v1", /more than 4/],
  ["bare LF", text.encode("PROXY UNKNOWN\n"), "v1", /line feed without a carriage return/],
  ["bare CR", text.encode("PROXY UNKNOWN\rX"), "v1", /carriage return without a line feed/],
  ["long", text.encode(`PROXY UNKNOWN ${"x".repeat(92)}\r\n`), "v1", /no CRLF within 107/],
  ["too long to be", text.encode(`PROXY TCP6 ${MAX_IPV6} ${MAX_IPV6}`), "v1", /no CRLF within 107/],
  ["version", fromHex("0d0a0d0a000d0a515549540a11000000"), "v2", /version 1, expected 2/],
  ["command", fromHex("0d0a0d0a000d0a515549540a22000000"), "v2", /unknown command 0x02/],
  ["family", fromHex("0d0a0d0a000d0a515549540a21410000"), "v2", /family and protocol 0x41/],
  ["short", fromHex("0d0a0d0a000d0a515549540a2111000a"), "any", /10 bytes of addresses/],
  ["stray", v2WithTlvBytes([0x01, 0x00]), "v2", /2 stray byte/],
  ["TLV overrun", v2WithTlvBytes([0x02, 0x00, 0x05, 0x61]), "v2", /authority of 5 bytes/],
  ["CRC size", v2WithTlvBytes([0x03, 0x00, 0x03, 1, 2, 3]), "v2", /CRC32C TLV of 3 bytes/],
  ["CRC", v2WithTlvBytes([0x03, 0x00, 0x04, 1, 2, 3, 4]), "v2", /fails its CRC32C check/],
  ["SSL size", v2WithTlvBytes([0x20, 0x00, 0x04, 1, 0, 0, 0]), "v2", /SSL TLV of 4 bytes/],
  [
    "SSL sub-TLV",
    v2WithTlvBytes([0x20, 0x00, 0x08, 1, 0, 0, 0, 0, 0x22, 0x00, 0x09]),
    "v2",
    /TLV 0x22 of 9 bytes running past the end of its SSL TLV/,
  ],
  [
    "UNIQUE_ID",
    v2WithTlvBytes([0x05, 0x00, 129, ...new Uint8Array(129)]),
    "v2",
    /UNIQUE_ID TLV of 129 bytes/,
  ],
];

for (const [name, bytes, mode, message] of REJECTED) {
  Deno.test(`proxy header: rejects ${name} with a reason`, () => {
    throws(() => parseProxyHeader(bytes, mode), (err: Error) => {
      equal(err instanceof ProxyHeaderError, true);
      equal(message.test(err.message), true, err.message);
      return true;
    });
  });
}

Deno.test("proxy header: two CRC32C TLVs are refused by both ends", () => {
  const crc = { type: PROXY_TLV.CRC32C, value: new Uint8Array(4) };
  throws(() => encodeProxyHeader({ version: 2, tlvs: [crc, crc] }), UsageError);
  const one = encodeProxyHeader({ version: 2, tlvs: [crc] });
  const two = v2WithTlvBytes([...one.subarray(16), ...one.subarray(16)]);
  throws(() => parseProxyHeader(two), /2 CRC32C TLVs/);
});

Deno.test("proxy header: a partial header asks for no more bytes than it can still take", () => {
  for (const hex of Object.values(HAPROXY)) {
    const bytes = fromHex(hex);
    const { length } = parseProxyHeader(bytes);
    for (let prefix = 0; prefix < length!; prefix++) {
      const { needed } = parseProxyHeader(bytes.subarray(0, prefix));
      equal(needed! >= 1 && prefix + needed! <= length!, true, `${prefix} + ${needed}`);
    }
  }
});

Deno.test("proxy header: the builder refuses what the protocol cannot say", () => {
  const ipv4 = tcp("203.0.113.7", 1);
  const cases: [ProxyHeaderInit, RegExp][] = [
    [{ version: 1, command: "LOCAL" }, /LOCAL command needs PROXY protocol v2/],
    [{ version: 1, tlvs: [{ type: 1, value: new Uint8Array(1) }] }, /TLVs need PROXY protocol v2/],
    [{ version: 2, source: ipv4 }, /both a source and a destination/],
    [{ version: 2, source: ipv4, destination: tcp("::1", 1) }, /"::1" is not an IPv4 address/],
    [{ version: 1, source: tcp("example.com", 1), destination: ipv4 }, /not an IPv4 address/],
    [{ version: 2, source: ipv4, destination: tcp("1.2.3.4", 70000) }, /port 70000/],
    [{ version: 2, tlvs: [{ type: 256, value: new Uint8Array(0) }] }, /TLV type is a byte/],
    [
      {
        version: 1,
        source: { transport: "udp", hostname: "1.2.3.4", port: 1 },
        destination: { transport: "udp", hostname: "1.2.3.4", port: 1 },
      },
      /v1 cannot name UDP4/,
    ],
  ];
  for (const [init, message] of cases) throws(() => encodeProxyHeader(init), message);
});
