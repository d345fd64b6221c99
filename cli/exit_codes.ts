/**
 * The exit codes of every command, in one place (also listed by `tcpecho --help`).
 *
 * @module
 */

/** How a run of tcpecho ended, as its exit code. */
export const ExitCode = {
  /** Done, and every check passed. */
  ok: 0,
  /** The network, the peer, the system or a check said no. */
  failure: 1,
  /** The command line was wrong: unknown flag, bad value. */
  usage: 2,
  /**
   * `bench`: the run worked but a `--assert` threshold failed. 99, as k6 exits when its thresholds
   * fail, so that a CI job already written for k6 reads it the same way.
   */
  thresholdFailed: 99,
  /** A bug in tcpecho (EX_SOFTWARE). */
  internal: 70,
  /** Cut short by a signal (128 + SIGINT). */
  interrupted: 130,
} as const;
