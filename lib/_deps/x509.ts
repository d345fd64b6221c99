/**
 * The npm package @peculiar/x509@^1, named here only: its version changes in this one file. One file per
 * package (see CONTRIBUTING.md), so that a command loads a package only when it uses it.
 *
 * @module
 */

export * as x509 from "npm:@peculiar/x509@^1";
