import { equal } from "node:assert/strict";
import { CLASSIC_SERVER_LOG, normalisePeers, runCli, ServeProcess } from "../helpers.ts";

Deno.test("serve and send print the classic transcripts, byte for byte", async () => {
  await using server = await ServeProcess.start();
  const client = await runCli(["send", "--port", String(server.port)]);
  equal(client.stderr, "");
  equal(client.code, 0);
  equal(
    client.stdout,
    `connecting to localhost port ${server.port}
sending b'This is our message. It is very long but will only be transmitted in chunks of 16 at a time'
received b'This is our mess'
received b'age. It is very '
received b'long but will on'
received b'ly be transmitte'
received b'd in chunks of 1'
received b'6 at a time'
closing socket
`,
  );
  await server.stdout.waitForCount(/^waiting for a connection$/, 2);
  const status = await server.stop("SIGTERM");
  equal(status.code, 0);
  equal(
    normalisePeers(server.stdout.text),
    `Starting up on localhost port ${server.port}\n${CLASSIC_SERVER_LOG}\n` +
      "shut down: 1 connection, 91 bytes echoed",
  );
  equal(server.stderr.text, "");
});
