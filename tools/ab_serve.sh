#!/bin/bash
# ab_serve.sh: the cost of a change to the echo path. Runs `serve --quiet` from two checkouts in
# turn (BEFORE, AFTER), ROUNDS times each, alternating, under 50 connections x 16 B from the
# neutral C load generator echoload, and prints msgs/s and the server's CPU time per 1,000
# messages (user + sys from /proc, which other processes on a busy machine disturb far less than
# throughput) and the p50 round trip, then the ratios of the means. LOAD sets echoload's shape
# (default "-c 50 -s 16 -w 1"; "-c 1 -s 91 -w 1" is the 1 x 91 B latency scenario). AFTER_ARGS
# adds serve flags to the AFTER runs only: `AFTER_ARGS="--control 0" tools/ab_serve.sh . .` is
# the cost of a flag in one checkout.
# usage: tools/ab_serve.sh BEFORE_DIR [AFTER_DIR (default .)] [SECONDS (3)] [ROUNDS (6)] [SERVE ARGS...]
# e.g.:  git worktree add /tmp/before main && tools/ab_serve.sh /tmp/before
set -u
before=${1:?usage: tools/ab_serve.sh BEFORE_DIR [AFTER_DIR] [SECONDS] [ROUNDS] [SERVE ARGS...]}
after=${2:-.}; secs=${3:-3}; rounds=${4:-6}; shift $(($# < 4 ? $# : 4)); base_args=("$@"); read -ra EXTRA_AFTER <<<"${AFTER_ARGS:-}"
read -ra load <<<"${LOAD:--c 50 -s 16 -w 1}"
sources=${TCPECHO_C_BENCH:-$(dirname "$0")/../../shared/bench}
bin=${TMPDIR:-/tmp}/tcpecho-bench; mkdir -p "$bin"
[[ -x $bin/echoload && $bin/echoload -nt $sources/echoload.c ]] ||
  gcc -O2 -o "$bin/echoload" "$sources/echoload.c" || exit 1
port=$((20000 + RANDOM % 10000))
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # $1: label, $2: checkout
  port=$((port + 1))
  (cd "$2" && exec deno run -A main.ts serve --port $port --quiet "${args[@]}") >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  local t0 t1 out rate p50
  t0=$(ticks $pid)
  out=$("$bin/echoload" -p $port "${load[@]}" -d "$secs" 2>&1 | tail -1)
  t1=$(ticks $pid)
  rate=$(sed -n 's/.*"msgs_per_s":\([0-9.]*\).*/\1/p' <<<"$out")
  p50=$(sed -n 's/.*"p50_us":\([0-9.]*\).*/\1/p' <<<"$out")
  # /proc counts CPU in 1/100 s: ms per 1,000 messages = ticks x 10 / (messages / 1,000).
  echo "$1 $rate $(awk -v t=$((t1 - t0)) -v r="$rate" -v s="$secs" 'BEGIN { printf "%.3f", t * 10 / (r * s / 1000) }') $p50"
  kill $pid; wait $pid 2>/dev/null
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$rounds"); do args=("${base_args[@]}"); run before "$before"; args=("${base_args[@]}" "${EXTRA_AFTER[@]}"); run after "$after"; done | tee /dev/stderr |
  awk '{ n[$1]++; rate[$1] += $2; cpu[$1] += $3; p50[$1] += $4 }
    END { printf "msgs/s: before %.0f, after %.0f, ratio %.3f\n", rate["before"] / n["before"], rate["after"] / n["after"], (rate["after"] / n["after"]) / (rate["before"] / n["before"])
          printf "CPU ms per 1,000 msgs: before %.3f, after %.3f; messages per CPU second, ratio %.3f\n", cpu["before"] / n["before"], cpu["after"] / n["after"], cpu["before"] / cpu["after"]
          printf "p50 us: before %.1f, after %.1f, ratio %.3f\n", p50["before"] / n["before"], p50["after"] / n["after"], p50["after"] / p50["before"] }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
