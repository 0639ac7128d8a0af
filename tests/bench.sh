#!/bin/bash
# `make bench`: what enforce costs, measured side by side in one run on this host.
#
#   tests/bench.sh ENFORCE_BINARY PROBE_BINARY [ROUNDS]
#
# Each round runs the same loops (open+close of an allowed file, TCP connect to a
# closed loopback port, fork+exec of /bin/true) once without the agent and once with it
# attached (deny rules of every class, on objects only this script created), so both
# sides see the same machine state; the table prints medians and their ratio. It also
# prints the stripped binary size, the agent's RSS and its start-to-attached time
# against the targets (size <= 1 MiB, RSS <= 2 MiB). Needs root (BPF). It checks
# nothing: ratios are for people, not pass/fail.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 ENFORCE_BINARY PROBE_BINARY [ROUNDS]" >&2; exit 2; }
bin=$(readlink -f "$1") probe=$(readlink -f "$2") rounds=${3:-5}
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (it loads BPF)" >&2; exit 1; }
N_OPEN=200000 N_CONNECT=20000 N_EXEC=500
addr=127.86.75.33 port=40133   # loopback address only this script uses; nothing listens

work=$(mktemp -d /tmp/enforce-bench.XXXXXX)
agent=
cleanup() {
    [ -n "$agent" ] && { kill -TERM "$agent" 2>/dev/null; wait "$agent" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT
echo allowed >"$work/allowed"
echo denied >"$work/denied"
cp /bin/true "$work/denied-exe"
cat >"$work/enforce.conf" <<CONF
mode = enforce
fallback = signal
deny_open = $work/denied
deny_exec = $work/denied-exe
deny_connect = $addr/32:$((port + 1))
CONF

now_ms() { local t=$EPOCHREALTIME; echo $((${t/./} / 1000)); }

start_agent() {
    local t0 i=0
    t0=$(now_ms)
    unshare -m --propagation private "$bin" --config "$work/enforce.conf" 2>"$work/agent.log" &
    agent=$!
    until grep -q 'attached:' "$work/agent.log"; do
        kill -0 "$agent" 2>/dev/null || { cat "$work/agent.log" >&2; exit 1; }
        i=$((i + 1)); [ $i -lt 3000 ] || { echo "bench: agent did not attach" >&2; exit 1; }
        sleep 0.005
    done
    start_ms+=($(($(now_ms) - t0)))
}
stop_agent() {
    kill -TERM "$agent"
    wait "$agent" || { echo "bench: agent exited with $?" >&2; exit 1; }
    agent=
}

declare -a start_ms rss_kb
declare -A ns # "open.off" -> the per-round samples, space-separated
sample() { ns[$1]+=" $("${@:2}")"; } # KEY CMD...
loops() { # off|on
    sample "open.$1" "$probe" bench open "$work/allowed" $N_OPEN
    sample "conn.$1" "$probe" bench connect $addr $port $N_CONNECT
    sample "exec.$1" "$probe" bench exec /bin/true $N_EXEC
}
for r in $(seq "$rounds"); do
    loops off
    start_agent
    sleep 1 # settle before reading RSS
    rss_kb+=($(awk '/^VmRSS:/ { print $2 }' "/proc/$agent/status"))
    loops on
    stop_agent
    echo "bench: round $r/$rounds done" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
row() { printf '%-34s %14s %14s %8s\n' "$@"; }

echo
echo "enforce bench: $(uname -r), $(nproc) CPUs, $rounds rounds, medians; tier: $(grep -o 'posture=[A-Z_]*' "$work/agent.log" | head -n 1)"
row "per operation (ns)" "no agent" "agent" "ratio"
for m in "open+close:open" "connect, refused:conn" "fork+exec+wait:exec"; do
    label=${m%%:*} var=${m#*:}
    off=$(median ${ns[$var.off]}) on=$(median ${ns[$var.on]})
    row "$label" "$off" "$on" "$(ratio "$on" "$off")"
done
size=$(stat -c %s "$bin") rss=$(median "${rss_kb[@]}") start=$(median "${start_ms[@]}")
row "against targets" "target" "measured" "ratio"
row "stripped binary (bytes)" 1048576 "$size" "$(ratio "$size" 1048576)"
row "agent RSS, attached (kB)" 2048 "$rss" "$(ratio "$rss" 2048)"
row "start to attached (ms)" "-" "$start" "-"
