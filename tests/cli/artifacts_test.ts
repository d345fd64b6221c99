import { equal } from "node:assert/strict";
import { pathExists, runCli, ServeProcess, skipUnless } from "../helpers.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** Runs `deno task NAME` in the project root; returns its combined output when it fails. */
async function task(name: string): Promise<{ success: boolean; output: string }> {
  const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["task", name],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return { success, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

/** A full round trip through a server and a client both run as `program`. */
async function roundTrip(program: string[]): Promise<void> {
  await using server = await ServeProcess.start(["--host", "127.0.0.1", "--quiet"], { program });
  const client = await runCli(
    ["send", "--host", "127.0.0.1", "--port", String(server.port), "--json", "bundled"],
    { program },
  );
  equal(client.stderr, "");
  equal(client.code, 0);
  equal(JSON.parse(client.stdout).matched, true);
  equal((await server.stop()).code, 0);
  equal(server.stdout.lines.at(-1), "shut down: 1 connection, 7 bytes echoed");
}

Deno.test("deno task bundle makes one JS file that serves and sends with deno run", async () => {
  const bundle = await task("bundle");
  equal(bundle.success, true, bundle.output);
  await roundTrip([Deno.execPath(), "run", "--allow-net", `${ROOT}dist/tcpecho.js`]);
});

/**
 * Why the compiled binary cannot be built here, or undefined when it can: `deno compile` needs
 * the `denort` runtime, which it downloads once into DENO_DIR (or takes from DENORT_BIN).
 */
function denortMissing(): string | undefined {
  const denortBin = Deno.env.get("DENORT_BIN");
  if (denortBin) {
    return pathExists(denortBin) ? undefined : `DENORT_BIN=${denortBin} does not exist`;
  }
  const info = new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stderr: "null" })
    .outputSync();
  const denoDir = JSON.parse(new TextDecoder().decode(info.stdout)).denoDir as string;
  const zip = `${denoDir}/dl/release/v${Deno.version.deno}/denort-${Deno.build.target}.zip`;
  return pathExists(zip)
    ? undefined
    : `the denort runtime is not cached (${zip}) and deno compile cannot download it here`;
}

const skipCompile = denortMissing();

Deno.test({
  ...skipUnless(
    skipCompile === undefined,
    skipCompile ?? "",
    "deno task compile builds a standalone binary that serves and sends",
  ),
  async fn() {
    const compile = await task("compile");
    equal(compile.success, true, compile.output);
    await roundTrip([`${ROOT}dist/tcpecho`]);
  },
});
