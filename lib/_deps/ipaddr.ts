/**
 * The npm package ipaddr.js@^2.5.0, named here only: its version changes in this one file. One file per
 * package (see CONTRIBUTING.md), so that a command loads a package only when it uses it.
 *
 * @module
 */

export { default as ipaddr } from "npm:ipaddr.js@^2.5.0";
