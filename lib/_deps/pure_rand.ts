/**
 * The npm package pure-rand@^6.1.0, named here only: its version changes in this one file. One file per
 * package (see CONTRIBUTING.md), so that a command loads a package only when it uses it.
 *
 * @module
 */

export { default as prand } from "npm:pure-rand@^6.1.0";
