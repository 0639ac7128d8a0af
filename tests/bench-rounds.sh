#!/bin/sh
# The interleaved rounds of `make bench` (tests/bench.sh, natively) and `make bench-vm`
# (rootfs/guest/bench.sh, in the VM). POSIX sh: it runs under bash and busybox ash.
#
#   tests/bench-rounds.sh setup WORK RULES
#       creates WORK/ with the files the configs name and, per tier T, the configs
#       WORK/one-T.conf (one deny rule per class), WORK/many-T.conf (the same three
#       rules and RULES - 1 more per class; none matches what the loops do),
#       WORK/empty-T.conf (no rules) and WORK/events-T.conf (audit mode, no
#       coalescing, no rate limit)
#   tests/bench-rounds.sh rounds WORK ENFORCE PROBE FLOOR ROUNDS TIER...
#       ROUNDS rounds; each runs the same loops (open+close of an allowed file in a
#       directory without rules, and of one beside the denied file, whose directory
#       the tracepoint tier's agent watches all along; TCP connect to a closed loopback port; fork+exec+wait of a
#       program) with no programs attached, then per TIER with the empty programs of
#       that tier (floor), the agent with one rule per class (one) and with RULES per
#       class (many), each given a second to settle after it attached. The order of
#       the configurations is reversed every other round, so a drift of the machine
#       does not favour one of them. Prints one line per loop:
#           sample ROUND CONFIG OP CPU WALL
#       CONFIG: none, floor:T, one:T, many:T; OP: open, open-near, connect, exec;
#       CPU: ns of CPU time (user+sys of the loop and its children) per operation,
#       the figure the tables use (on a shared machine, time others take is not in
#       it); WALL: ns of wall time per operation.
#
# Environment: BENCH_WRAP (a command the agent and the floor run under, e.g.
# "unshare -m --propagation private" so that the tracefs they mount stays private),
# BENCH_N_OPEN, BENCH_N_CONNECT, BENCH_N_EXEC (loop lengths), BENCH_EXEC (the program
# the exec loop runs: a dynamic one maps its libraries executable, as most programs
# do; default /bin/true). It checks nothing.
set -eu

ADDR=127.86.75.33 PORT=40133 # a loopback address only the bench uses; nothing listens

setup() { # WORK RULES
    work=$1 rules=$2
    mkdir -p "$work/open" "$work/exec" "$work/plain"
    echo allowed >"$work/plain/allowed"
    echo allowed >"$work/allowed"
    echo denied >"$work/denied"
    echo x >"$work/events-target"
    # RULES distinct files per file class (empty; the exec ones executable).
    (cd "$work/open" && seq 1 "$rules" | xargs touch)
    (cd "$work/exec" && seq 1 "$rules" | xargs touch && seq 1 "$rules" | xargs chmod 755)
    for t in lsm fmodret kprobe tracepoint; do
        head="mode = enforce
fallback = signal
tiers = $t"
        printf '%s\ndeny_open = %s/denied\ndeny_exec = %s/exec/1\ndeny_connect = 127.86.75.34/32:40134\n' \
            "$head" "$work" "$work" >"$work/one-$t.conf"
        printf '%s\n' "$head" >"$work/empty-$t.conf"
        printf 'mode = audit\ntiers = %s\ncoalesce_window = 0\nlog_rate = 0\ndeny_open = %s/events-target\n' \
            "$t" "$work" >"$work/events-$t.conf"
        {
            # The one-rule config's rules (so both configs look the same operations up
            # as far), then files that exist, and networks spread over the IPv4 space
            # (prefixes /12 to /32, host bits clear, never 127/8), distinct, the same
            # every run.
            cat "$work/one-$t.conf"
            awk -v n="$((rules - 1))" -v w="$work" 'BEGIN {
                for (i = 1; i <= n; i++) print "deny_open = " w "/open/" i
                for (i = 2; i <= n + 1; i++) print "deny_exec = " w "/exec/" i
                srand(1)
                while (count < n) {
                    a = int(rand() * 256); if (a == 127 || a == 0) continue
                    len = 12 + int(rand() * 21)
                    v = a * 16777216 + int(rand() * 16777216)
                    m = 1; for (j = len; j < 32; j++) m *= 2; v = int(v / m) * m
                    key = v "/" len
                    if (key in seen) continue
                    seen[key] = 1; count++
                    printf "deny_connect = %d.%d.%d.%d/%d\n", int(v / 16777216), int(v / 65536) % 256, int(v / 256) % 256, v % 256, len
                }
            }'
        } >"$work/many-$t.conf"
    done
}

# start CMD...: runs CMD in the background with its output in $work/run.log until it
# prints `attached:`; sets $pid. Fails if it exits first or takes over 120 s (TCG).
start() {
    : >"$work/run.log"
    # shellcheck disable=SC2086 # BENCH_WRAP is a command line
    ${BENCH_WRAP:-} "$@" >"$work/run.log" 2>&1 &
    pid=$!
    i=0
    until grep -q 'attached:' "$work/run.log"; do
        if ! kill -0 "$pid" 2>/dev/null || [ $i -gt 2400 ]; then
            echo "bench: $* did not attach:" >&2
            cat "$work/run.log" >&2
            kill -TERM "$pid" 2>/dev/null || true
            exit 1
        fi
        i=$((i + 1))
        sleep 0.05
    done
}

stop() {
    kill -TERM "$pid"
    wait "$pid" || true # the floor dies of the signal; the agent exits 0
}

cpu_first() { awk '{ print $2, $1 }'; } # the probe prints WALL CPU

loops() { # ROUND CONFIG
    echo "sample $1 $2 open $("$probe" bench open "$work/plain/allowed" "${BENCH_N_OPEN:-200000}" | cpu_first)"
    echo "sample $1 $2 open-near $("$probe" bench open "$work/allowed" "${BENCH_N_OPEN:-200000}" | cpu_first)"
    echo "sample $1 $2 connect $("$probe" bench connect $ADDR $PORT "${BENCH_N_CONNECT:-20000}" | cpu_first)"
    echo "sample $1 $2 exec $("$probe" bench exec "${BENCH_EXEC:-/bin/true}" "${BENCH_N_EXEC:-500}" | cpu_first)"
}

measure() { # ROUND CONFIG
    case $2 in
    none) loops "$1" none ;;
    floor:*) start "$floor" "${2#floor:}"; sleep 1; loops "$@"; stop ;;
    one:* | many:*) start "$bin" --config "$work/${2%%:*}-${2#*:}.conf"; sleep 1; loops "$@"; stop ;;
    esac
}

rounds() { # WORK ENFORCE PROBE FLOOR ROUNDS TIER...
    work=$1 bin=$2 probe=$3 floor=$4 n=$5
    shift 5
    configs=none
    for t in "$@"; do configs="$configs floor:$t one:$t many:$t"; done
    reversed=$(for c in $configs; do echo "$c"; done | awk '{ l[NR] = $0 } END { for (i = NR; i > 0; i--) print l[i] }')
    r=1
    while [ $r -le "$n" ]; do
        if [ $((r % 2)) -eq 1 ]; then order=$configs; else order=$reversed; fi
        for c in $order; do measure $r "$c"; done
        echo "bench: round $r/$n done" >&2
        r=$((r + 1))
    done
}

case ${1:-} in
setup) shift; setup "$@" ;;
rounds) shift; rounds "$@" ;;
*) sed -n '4,22p' "$0" >&2; exit 2 ;;
esac
