import { deepEqual, equal, match } from "node:assert/strict";
import { ServerLog } from "../../cli/server_log.ts";
import { LineWriter } from "../../cli/line_writer.ts";
import { sendAndVerify, startUdpEchoServer } from "../../lib/mod.ts";
import { hasProgram, needs, runCli, runProgram, ServeProcess } from "../helpers.ts";

/** UDP is behind Deno's unstable network API (deno.json turns it on too; this says so here). */
const UDP_PERMISSIONS = ["-A", "--unstable-net"];

Deno.test("serve --udp echoes each datagram whole and logs it in 16-byte pieces", async (t) => {
  await using server = await ServeProcess.start(["--udp", "--host", "127.0.0.1"], {
    permissions: UDP_PERMISSIONS,
  });
  const port = String(server.port);
  equal(server.stdout.lines[0], `Starting up on 127.0.0.1 port ${port} (UDP)`);

  await t.step("our client", async () => {
    const ours = await runCli(
      ["send", "--udp", "--host", "127.0.0.1", "--port", port, "one datagram, twenty-nine B"],
      { permissions: UDP_PERMISSIONS },
    );
    equal(ours.stderr, "");
    equal(
      ours.stdout,
      `sending a datagram to 127.0.0.1 port ${port} (UDP)\n` +
        "sending b'one datagram, twenty-nine B'\n" +
        "received b'one datagram, tw'\nreceived b'enty-nine B'\nclosing socket\n",
    );
    equal(ours.code, 0);
    await server.stdout.waitFor("sending data back to the client");
    equal(
      server.stdout.text.replace(/\d+\)$/m, "PORT)"),
      `Starting up on 127.0.0.1 port ${port} (UDP)
waiting for a datagram
datagram from ('127.0.0.1', PORT)
received b'one datagram, tw'
received b'enty-nine B'
sending data back to the client`,
    );
  });

  await t.step({
    ...needs("python3", "a Python UDP client"),
    fn: async () => {
      const client = `import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(b"ping", ("127.0.0.1", ${port}))
print(s.recvfrom(65535)[0].decode(), end="")`;
      const python = await runProgram("python3", ["-c", client]);
      equal(python.stdout, "ping");
      equal(python.code, 0);
    },
  });

  equal((await server.stop()).code, 0);
  const totals = hasProgram("python3") ? "2 datagrams, 31" : "1 datagram, 27";
  equal(server.stdout.lines.at(-1), `shut down: ${totals} bytes echoed`);
});

Deno.test("send --udp times out on a lost datagram and catches a wrong echo", async () => {
  // A socket that swallows the first datagram and answers the second with different bytes.
  const peer = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = String((peer.addr as Deno.NetAddr).port);
  const answering = (async () => {
    await peer.receive();
    const [data, from] = await peer.receive();
    await peer.send(data.map((byte) => byte ^ 1), from);
  })();
  try {
    const args = ["send", "--udp", "--host", "127.0.0.1", "--port", port, "--timeout", "0.3"];
    const lost = await runCli([...args, "--quiet", "lost"], { permissions: UDP_PERMISSIONS });
    equal(
      lost.stderr,
      `error: timed out after 0.3 s without a reply: nothing listens on 127.0.0.1 port ${port}, ` +
        "or the 4-byte datagram or its echo was lost\n",
    );
    equal(lost.code, 1);

    const wrong = await runCli([...args, "--json", "wrong"], { permissions: UDP_PERMISSIONS });
    equal(
      wrong.stderr,
      "error: the echo differs from what was sent at byte 0 (sent 0x77, got 0x76)\n",
    );
    match(wrong.stdout, /"transport":"udp".*"matched":false/);
    equal(wrong.code, 1);
    await answering;
  } finally {
    peer.close();
  }
});

Deno.test("UDP without --unstable-net is a usage error naming the flag, exit 2", async () => {
  for (const command of ["serve", "send"]) {
    // --no-config: deno.json turns the unstable network API on for everything run from here.
    const result = await runCli([command, "--udp", "--port", "9"], {
      permissions: ["--no-config", "-A"],
    });
    equal(
      result.stderr,
      "error: --udp needs the --unstable-net flag: deno run --unstable-net ...\n",
      command,
    );
    equal(result.code, 2, command);
  }
});

Deno.test({
  name: "library: UDP events in the JSON log, and an empty datagram in the text log",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    for (const format of ["json", "text"] as const) {
      const lines: string[] = [];
      const sink = new LineWriter({
        write: (
          bytes,
        ) => (lines.push(new TextDecoder().decode(bytes)), Promise.resolve(bytes.length)),
      });
      const log = new ServerLog({ format, quiet: false, out: sink, err: sink });
      await using server = startUdpEchoServer({
        hostname: "127.0.0.1",
        port: 0,
        onEvent: log.onEvent,
      });
      log.listening("127.0.0.1", server.addr);
      const message = new TextEncoder().encode(format === "json" ? "it's" : "");
      await sendAndVerify({ udp: true, hostname: "127.0.0.1", port: server.addr.port, message });
      await server.shutdown();
      log.summary(server.stats);
      await log.flush();
      const text = lines.join("").trimEnd().replace(/\d+\)$/m, "PORT)");
      if (format === "text") {
        equal(
          text,
          `Starting up on 127.0.0.1 port ${server.addr.port} (UDP)
datagram from ('127.0.0.1', PORT)
received b''
sending data back to the client
shut down: 1 datagram, 0 bytes echoed`,
        );
      } else {
        const events = text.split("\n").map((line) => JSON.parse(line));
        equal(events.length, 3);
        deepEqual(
          events.map(({ time: _, peer: __, ...rest }) => rest),
          [
            {
              event: "listening",
              address: `127.0.0.1:${server.addr.port}`,
              transport: "udp",
            },
            { datagram: 1, event: "datagram", bytes: 4, data: `b"it's"` },
            {
              event: "shutdown",
              datagrams: 1,
              bytes_received: 4,
              bytes_echoed: 4,
              bytes_discarded: 0,
              rejected: 0,
            },
          ],
        );
      }
    }
  },
});

Deno.test("send --udp - refuses an endless input at once, without reading it all (exit 2)", async () => {
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const { code, stderr } = await new Deno.Command("sh", {
    args: [
      "-c",
      'exec "$0" "$@" < /dev/zero',
      Deno.execPath(),
      "run",
      ...UDP_PERMISSIONS,
      main,
      "send",
      "--udp",
      "-",
    ],
    env: { NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).output();
  equal(
    new TextDecoder().decode(stderr),
    "error: a UDP datagram holds at most 65507 bytes: standard input has more\n",
  );
  equal(code, 2);
});
