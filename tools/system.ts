/**
 * What the tools and the tests both ask of this machine: a free loopback port, a server that
 * accepts, whether a program is installed, how much memory a process holds.
 *
 * @module
 */

/** A loopback port that was free a moment ago (bound to port 0, then released). */
export function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return listener.addr.port;
}

/**
 * Retries connecting to 127.0.0.1 `port` every 20 ms until something accepts, for servers that
 * print no port; throws the last error after `attempts` tries.
 */
export async function waitUntilAccepting(port: number, attempts = 500): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (err) {
      if (attempt >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Whether a program is on the PATH. */
export function hasProgram(name: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${name}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** The resident memory of process `pid` in bytes (VmRSS in /proc/PID/status), Linux only. */
export function residentBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = status.match(/^VmRSS:\s+(\d+) kB$/m)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kib) * 1024;
}
