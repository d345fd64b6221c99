#!/bin/sh
# What the PROXY stage costs `serve`, as ratios from one run. New connections: connload (from
# ../shared/bench, or $TCPECHO_C_BENCH) opens, echoes 16 B and closes, through HAProxy into serve:
# without a header, with send-proxy (v1) and with send-proxy-v2, rounds interleaved, medians
# compared. Steady state: tcpecho bench -c 50 -s 16 straight into serve, with and without
# --send-proxy v2.
#
# usage: sh tools/proxy_cost.sh [BASE_PORT, default 21600] [ROUNDS, default 5]
# Needs haproxy and gcc; uses ports BASE_PORT to BASE_PORT+13 on 127.0.0.1.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=${1:-21600}
ROUNDS=${2:-5}
C_SOURCES=${TCPECHO_C_BENCH:-$ROOT/../shared/bench}
WORK=$(mktemp -d)
PIDS=""
trap 'kill $PIDS 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT INT TERM
gcc -O2 -o "$WORK/connload" "$C_SOURCES/connload.c"

serve() { deno run -A "$ROOT/main.ts" serve --host 127.0.0.1 --quiet "$@" >/dev/null 2>&1 & PIDS="$PIDS $!"; }
serve --port $((BASE + 1))
serve --port $((BASE + 2)) --proxy-protocol v1
serve --port $((BASE + 3)) --proxy-protocol v2
cat >"$WORK/haproxy.cfg" <<EOF
global
  maxconn 4096
defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend plain
  bind 127.0.0.1:$((BASE + 11))
  default_backend plain
backend plain
  server s 127.0.0.1:$((BASE + 1))
frontend v1
  bind 127.0.0.1:$((BASE + 12))
  default_backend v1
backend v1
  server s 127.0.0.1:$((BASE + 2)) send-proxy
frontend v2
  bind 127.0.0.1:$((BASE + 13))
  default_backend v2
backend v2
  server s 127.0.0.1:$((BASE + 3)) send-proxy-v2
EOF
haproxy -W -db -f "$WORK/haproxy.cfg" >/dev/null 2>&1 & PIDS="$PIDS $!"
sleep 2

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for kind in plain v1 v2; do
    case $kind in plain) port=$((BASE + 11)) ;; v1) port=$((BASE + 12)) ;; v2) port=$((BASE + 13)) ;; esac
    rate=$("$WORK/connload" -p "$port" -c 20 -s 16 -d 2 | sed 's/.*"sessions_per_s":\([0-9]*\).*/\1/')
    echo "$kind $rate" >>"$WORK/sessions"
  done
  for kind in plain v2; do
    if [ $kind = plain ]; then port=$((BASE + 1)); extra=""; else port=$((BASE + 3)); extra="--send-proxy v2"; fi
    # shellcheck disable=SC2086
    rate=$(deno run -A "$ROOT/main.ts" bench --host 127.0.0.1 --port "$port" $extra -c 50 -s 16 -d 2 --json |
      sed 's/.*"msgs_per_s":\([0-9]*\).*/\1/')
    echo "bench-$kind $rate" >>"$WORK/sessions"
  done
  echo "round $round: $(tail -n 5 "$WORK/sessions" | tr '\n' ' ')"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

median() { grep "^$1 " "$WORK/sessions" | cut -d' ' -f2 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
plain=$(median plain)
v1=$(median v1)
v2=$(median v2)
bench_plain=$(median bench-plain)
bench_v2=$(median bench-v2)
echo "new connections through HAProxy, median sessions/s of $ROUNDS rounds:"
echo "  no header $plain, v1 $v1 ($(echo "$v1 $plain" | awk '{printf "%.2f", $1/$2}')x), v2 $v2 ($(echo "$v2 $plain" | awk '{printf "%.2f", $1/$2}')x)"
echo "bench -c 50 -s 16, median msgs/s:"
echo "  no header $bench_plain, --send-proxy v2 $bench_v2 ($(echo "$bench_v2 $bench_plain" | awk '{printf "%.2f", $1/$2}')x)"
