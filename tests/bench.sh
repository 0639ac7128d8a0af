#!/bin/bash
# `make bench`: what enforce costs, measured side by side in one run on this host.
#
#   tests/bench.sh ENFORCE_BINARY PROBE_BINARY [ROUNDS]
#
# First it asks the agent (`--check` with `tiers = T`) which tiers of the ladder this
# kernel can run, and names the blockers of the others. Each round then runs the same
# loops (open+close of an allowed file, TCP connect to a closed loopback port,
# fork+exec of /bin/true) once without the agent and once per runnable tier with the
# agent attached in that tier only (deny rules of every class, on objects only this
# script created), interleaved, so every column sees the same machine state; the table
# prints medians and their ratios to no agent. It also prints the stripped binary
# size, the agent's RSS and its start-to-attached time against the targets (size <=
# 1 MiB, RSS <= 2 MiB). Needs root (BPF). It checks nothing: ratios are for people,
# not pass/fail.
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
# Names no one else uses: the path tier also matches a relative path by its last component.
denied=$work/enforce-bench-denied-$$ denied_exe=$work/enforce-bench-denied-exe-$$
echo denied >"$denied"
cp /bin/true "$denied_exe"
config() { # TIER: the bench config with the ladder restricted to TIER
    cat >"$work/$1.conf" <<CONF
mode = enforce
fallback = signal
tiers = $1
deny_open = $denied
deny_exec = $denied_exe
deny_connect = $addr/32:$((port + 1))
CONF
}

# The tiers this kernel runs: those whose --check serves every class.
tiers=() unavailable=()
for t in lsm fmodret kprobe tracepoint path; do
    config "$t"
    report=$(unshare -m --propagation private "$bin" --check --config "$work/$t.conf" 2>/dev/null || true)
    if [ "$(echo "$report" | sed -n 's/^tier.open=//p')" = "$t" ] &&
        [ "$(echo "$report" | sed -n 's/^tier.exec=//p')" = "$t" ] &&
        [ "$(echo "$report" | sed -n 's/^tier.connect=//p')" = "$t" ]; then
        tiers+=("$t")
    else
        unavailable+=("$t: $(echo "$report" | sed -n 's/^blockers=//p' | tr ',' '\n' | grep -v -- '-excluded' | paste -sd, -)")
    fi
done
[ ${#tiers[@]} -gt 0 ] || { echo "bench: no tier of the ladder runs on this kernel" >&2; exit 1; }

now_ms() { local t=$EPOCHREALTIME; echo $((${t/./} / 1000)); }

declare -A start_ms rss_kb # per tier, space-separated samples
start_agent() { # TIER
    local t0 i=0
    t0=$(now_ms)
    unshare -m --propagation private "$bin" --config "$work/$1.conf" 2>"$work/agent.log" &
    agent=$!
    until grep -q 'attached:' "$work/agent.log"; do
        kill -0 "$agent" 2>/dev/null || { cat "$work/agent.log" >&2; exit 1; }
        i=$((i + 1)); [ $i -lt 3000 ] || { echo "bench: agent did not attach" >&2; exit 1; }
        sleep 0.005
    done
    start_ms[$1]+=" $(($(now_ms) - t0))"
}
stop_agent() {
    kill -TERM "$agent"
    wait "$agent" || { echo "bench: agent exited with $?" >&2; exit 1; }
    agent=
}

declare -A ns # "open.off" -> the per-round samples, space-separated
sample() { ns[$1]+=" $("${@:2}")"; } # KEY CMD...
loops() { # off|TIER
    sample "open.$1" "$probe" bench open "$work/allowed" $N_OPEN
    sample "conn.$1" "$probe" bench connect $addr $port $N_CONNECT
    sample "exec.$1" "$probe" bench exec /bin/true $N_EXEC
}
for r in $(seq "$rounds"); do
    loops off
    for t in "${tiers[@]}"; do
        start_agent "$t"
        sleep 1 # settle before reading RSS
        rss_kb[$t]+=" $(awk '/^VmRSS:/ { print $2 }' "/proc/$agent/status")"
        loops "$t"
        stop_agent
    done
    echo "bench: round $r/$rounds done" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo
echo "enforce bench: $(uname -r), $(nproc) CPUs, $rounds rounds, medians (ns per operation; ratio to no agent)"
for u in "${unavailable[@]}"; do echo "not available here: $u"; done
printf '%-22s %12s' "per operation" "no agent"
for t in "${tiers[@]}"; do printf ' %12s %6s' "$t" ratio; done
echo
for m in "open+close:open" "connect, refused:conn" "fork+exec+wait:exec"; do
    label=${m%%:*} var=${m#*:}
    off=$(median ${ns[$var.off]})
    printf '%-22s %12s' "$label" "$off"
    for t in "${tiers[@]}"; do
        on=$(median ${ns[$var.$t]})
        printf ' %12s %6s' "$on" "$(ratio "$on" "$off")"
    done
    echo
done
size=$(stat -c %s "$bin")
printf '%-34s %14s %14s %8s\n' "against targets" "target" "measured" "ratio"
printf '%-34s %14s %14s %8s\n' "stripped binary (bytes)" 1048576 "$size" "$(ratio "$size" 1048576)"
for t in "${tiers[@]}"; do
    rss=$(median ${rss_kb[$t]}) start=$(median ${start_ms[$t]})
    printf '%-34s %14s %14s %8s\n' "agent RSS, $t (kB)" 2048 "$rss" "$(ratio "$rss" 2048)"
    printf '%-34s %14s %14s %8s\n' "start to attached, $t (ms)" "-" "$start" "-"
done
