/**
 * The npm package hdr-histogram-js@^3.0.1, named here only: its version changes in this one file. One file per
 * package (see CONTRIBUTING.md), so that a command loads a package only when it uses it.
 *
 * @module
 */

export {
  Float64Histogram,
  type Histogram,
  HistogramLogReader,
  HistogramLogWriter,
} from "npm:hdr-histogram-js@^3.0.1";
