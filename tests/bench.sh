#!/bin/bash
# `make bench`: what enforce costs on this machine, natively, as one table of
# figure, target, measured and ratio. It asserts nothing; tests never time anything.
#
#   tests/bench.sh ENFORCE_BINARY PROBE_BINARY FLOOR_BINARY [ROUNDS]
#
# 1. Which tiers of the ladder run here: those whose `--check` (tiers = T) serves
#    every class; the others are named with their blockers.
# 2. Per-operation cost, interleaved rounds (tests/bench-rounds.sh): no programs, the
#    tier's floor (empty programs on exactly the hooks the tier attaches,
#    bpf/floor.bpf.c loaded by examples/floor.rs), the agent with one rule per class,
#    and with RULES (10,000) per class. The figure is CPU time per operation (user
#    and system time of the loop and its children: the BPF programs run in the
#    syscalls they watch, so their cost is in it, and the time other processes of a
#    shared machine take is not); wall time is shown beside it. Medians, their
#    spread (half the interquartile range, in % of the median), and the ratios
#    agent/floor (target <= 1.03) and RULES/one (target <= 1.01), each the median of
#    the per-round ratios (tests/bench-table.sh).
# 3. Per tier: start to `attached:` (one rule and RULES rules), `--check` end to end,
#    stop (SIGTERM to exit), RSS and kernel memory (memlock of the agent's BPF maps,
#    ring buffer and programs, from /proc/PID/fdinfo) with an empty policy and with
#    RULES per class; `--check` of the whole ladder (the default config); where
#    --check's time goes (the agent's -v timings) and where stop's time goes (the
#    kernel stack of the stopping agent and of the stopping floor, sampled from
#    /proc/PID/stack with 5 ms pauses, with the number of perf events each held).
# 4. The event path: audited opens of one file (mode = audit, coalesce_window = 0,
#    log_rate = 0), delivered to a counting stand-in for /dev/log (`probe
#    syslog-sink`, through ENFORCE_SYSLOG_SOCKET); drops are the agent's exact counts.
# 5. The profile: per program, kernel run time per run (kernel.bpf_stats_enabled for
#    one pass of the loops with the agent attached; the sysctl is restored).
#
# Environment: BENCH_ROUNDS (15), BENCH_RULES (10000), BENCH_N_OPEN, BENCH_N_CONNECT,
# BENCH_N_EXEC (loop lengths), BENCH_EXEC (/bin/true), BENCH_EVENTS (200000).
# Needs root (BPF). Every process it starts is stopped and reaped; nothing is pinned.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 ENFORCE_BINARY PROBE_BINARY FLOOR_BINARY [ROUNDS]" >&2; exit 2; }
bin=$(readlink -f "$1") probe=$(readlink -f "$2") floor=$(readlink -f "$3")
rounds=${4:-${BENCH_ROUNDS:-15}} rules=${BENCH_RULES:-10000} n_events=${BENCH_EVENTS:-200000}
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (it loads BPF)" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
export BENCH_WRAP="unshare -m --propagation private"
wrap=($BENCH_WRAP)

work=$(mktemp -d /tmp/enforce-bench.XXXXXX)
pids=() stats_was=
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    [ -n "$stats_was" ] && sysctl -q kernel.bpf_stats_enabled="$stats_was"
    rm -rf "$work"
}
trap cleanup EXIT
echo "bench: setting up $rules rules per class in $work" >&2
"$here/bench-rounds.sh" setup "$work" "$rules"

now_us() { local t=$EPOCHREALTIME; echo $((${t/./})); }
median() { printf '%s\n' "$@" | sort -g | awk 'NF { v[++n] = $1 } END { if (n) print v[int((n + 1) / 2)]; else print "-" }'; }
# Half the interquartile range, in % of the median.
spread() {
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 }
        END { if (NR < 2) { print "-"; exit } q1 = v[int((NR + 3) / 4)]; q3 = v[int((3 * NR + 1) / 4)]; m = v[int((NR + 1) / 2)]
              printf "%.1f%%", m ? 50 * (q3 - q1) / m : 0 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "-" && a != "") printf "%.3f", a / b; else print "-" }'; }

# --- 1. the tiers this kernel runs ----------------------------------------------
# floor_runs TIER: whether the floor loader attaches that tier's empty programs here.
floor_runs() {
    local fpid i=0
    "${wrap[@]}" "$floor" "$1" </dev/null >"$work/floor.out" 2>&1 &
    fpid=$!
    until grep -q attached: "$work/floor.out"; do
        kill -0 $fpid 2>/dev/null && [ $i -lt 200 ] || { wait $fpid 2>/dev/null || true; return 1; }
        i=$((i + 1)); sleep 0.05
    done
    kill -TERM $fpid; wait $fpid 2>/dev/null || true
}
tiers=() unavailable=()
for t in lsm fmodret kprobe tracepoint; do
    report=$("${wrap[@]}" "$bin" --check --config "$work/one-$t.conf" 2>/dev/null || true)
    served=$(echo "$report" | sed -n 's/^tier\.\(open\|exec\|connect\)=//p' | sort -u)
    if [ "$served" = "$t" ] && floor_runs "$t"; then
        tiers+=("$t")
    else
        unavailable+=("$t: $(echo "$report" | sed -n 's/^blockers=//p' | tr ',' '\n' | grep -v -- '-excluded' | paste -sd, -)")
    fi
done
[ ${#tiers[@]} -gt 0 ] || { echo "bench: no tier of the ladder runs on this kernel" >&2; exit 1; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 2. interleaved rounds ---------------------------------------------------------
"$here/bench-rounds.sh" rounds "$work" "$bin" "$probe" "$floor" "$rounds" "${tiers[@]}" >"$work/samples"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
# --- 3. the agent, per tier ----------------------------------------------------------
declare -A fig # "tier:name" -> samples
agent=
# start_timed CMD...: starts CMD and times start to `attached:` by reading its output
# through a pipe (no polling); sets agent and started_ms.
start_timed() {
    local t0 line
    rm -f "$work/fifo" && mkfifo "$work/fifo"
    t0=$(now_us)
    "$@" >"$work/fifo" 2>&1 &
    agent=$!
    pids+=("$agent")
    exec 3<"$work/fifo"
    : >"$work/agent.log"
    while IFS= read -r -u 3 line; do
        echo "$line" >>"$work/agent.log"
        case $line in
        *attached:*) break ;;
        *refused:*) echo "bench: $line" >&2; exit 1 ;;
        esac
    done
    started_ms=$(awk -v a="$t0" -v b="$(now_us)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
    cat <&3 >>"$work/agent.log" &
    exec 3<&-
}
# start_agent CONF [ENV...]: the agent on CONF.
start_agent() {
    local conf=$1
    shift
    start_timed env "$@" "${wrap[@]}" "$bin" --config "$conf"
}
stop_agent() { # [any]: -> stopped_ms; the agent must exit 0 unless "any" (the floor dies of the signal)
    local t0 rc=0
    t0=$(now_us)
    kill -TERM "$agent"
    wait "$agent" || rc=$?
    stopped_ms=$(awk -v a="$t0" -v b="$(now_us)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
    [ $rc -eq 0 ] || [ "${1:-}" = any ] || { echo "bench: the agent exited with $rc" >&2; cat "$work/agent.log" >&2; exit 1; }
    agent=
}
# Kernel memory of the agent's BPF objects: memlock of every map and program it holds,
# each counted once (the tiers hold the shared maps through their own descriptors).
# (One awk for every descriptor: in the tracepoint tier the agent holds 20,000 pins.)
memlock_kb() {
    find /proc/"$1"/fdinfo -type f -exec awk '
        FNR == 1 { if (id) print id, m; id = ""; m = 0 }
        /^(map|prog)_id:/ { id = $1 $2 } /^memlock:/ { m = $2 }
        END { if (id) print id, m }' {} + 2>/dev/null | sort -u | awk '{ s += $2 } END { printf "%d", s / 1024 }'
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
add() { fig[$1]+=" $2"; } # KEY VALUE

reps=${BENCH_REPS:-7}
echo "bench: start, stop, --check, memory ($reps each)" >&2
for t in "${tiers[@]}"; do
    for i in $(seq "$reps"); do
        for c in empty one many; do
            start_agent "$work/$c-$t.conf"
            add "$t:start.$c" "$started_ms"
            sleep 0.5 # settled
            add "$t:rss.$c" "$(rss_kb "$agent")"
            add "$t:kmem.$c" "$(memlock_kb "$agent")"
            stop_agent
            add "$t:stop.$c" "$stopped_ms"
        done
        for c in one many; do
            t0=$(now_us)
            "${wrap[@]}" "$bin" --check --config "$work/$c-$t.conf" >/dev/null 2>&1 || true
            add "$t:check.$c" "$(awk -v a="$t0" -v b="$(now_us)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')"
        done
        # The mechanism's own attach and detach: the floor's empty programs.
        start_timed "${wrap[@]}" "$floor" "$t"
        add "$t:start.floor" "$started_ms"
        stop_agent any
        add "$t:stop.floor" "$stopped_ms"
    done
    # Where the start goes (the agent's -v timings), once per configuration.
    for c in one many; do
        "${wrap[@]}" "$bin" -v --check --config "$work/$c-$t.conf" 2>"$work/v.log" >/dev/null || true
        fig[$t:why.$c]=$(sed -n 's/^DEBUG \[[a-z_:]*\] //p' "$work/v.log" | grep -E '^(rules|maps|[a-z]+ tier)' |
            sed 's/ in \([0-9.]*\)\([mµ]*s\)/ \1\2/' | paste -sd';' -)
    done
done
# Where the stop goes: the agent's kernel stack, read with 5 ms pauses from SIGTERM to its
# exit (one stop of the one-rule agent and one of the floor), and how many perf events
# (one per syscall tracepoint attached) it holds.
stack_samples() { # PID: to stdout, each sample ended by "--"
    while [ -d "/proc/$1" ]; do cat "/proc/$1/stack" 2>/dev/null || true; echo --; sleep 0.005; done
}
stop_sampled() { # KEY [any]
    local s
    fig[$1.perf]=$(find "/proc/$agent/fd" -lname 'anon_inode:*perf_event*' 2>/dev/null | wc -l)
    stack_samples "$agent" >"$work/stacks" &
    s=$!
    stop_agent "${2:-}"
    wait "$s" || true
    fig[$1.ms]=$stopped_ms
    # The frames in most samples: "FRAME N" with N the samples it is in, of fig[KEY.n].
    fig[$1.n]=$(grep -c -- '^--$' "$work/stacks" || true)
    fig[$1.frames]=$(sed -n 's/^\[<[0-9a-f]*>\] \([^+]*\)+.*/\1/p' "$work/stacks" | sort | uniq -c | sort -rn |
        awk '$2 !~ /^(entry_SYSCALL|do_syscall_64|__x64_sys|exit_to_user_mode|syscall_exit|__fput|task_work_run|__wait_rcu_gp|get_signal|do_group_exit|do_exit|arch_do_signal)/ { printf "%s %d;", $2, $1; if (++k == 8) exit }' || true)
}
for t in "${tiers[@]}"; do
    start_agent "$work/one-$t.conf"
    sleep 0.5
    stop_sampled "$t:stopwhy.one"
    start_timed "${wrap[@]}" "$floor" "$t"
    stop_sampled "$t:stopwhy.floor" any
done
printf 'deny_open = %s/denied\n' "$work" >"$work/ladder.conf"
for i in $(seq "$reps"); do
    t0=$(now_us)
    "${wrap[@]}" "$bin" --check --config "$work/ladder.conf" >/dev/null 2>&1 || true
    add "ladder:check" "$(awk -v a="$t0" -v b="$(now_us)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')"
done

# --- 4. the event path -------------------------------------------------------------------
echo "bench: event path ($n_events audited opens per tier)" >&2
declare -A events
for t in "${tiers[@]}"; do
    "$probe" syslog-sink "$work/log.sock" 500 >"$work/sink.out" &
    sink=$!
    pids+=("$sink")
    until grep -q listening "$work/sink.out"; do sleep 0.01; done
    start_agent "$work/events-$t.conf" ENFORCE_SYSLOG_SOCKET="$work/log.sock"
    t0=$(now_us)
    "$probe" bench open "$work/events-target" "$n_events" >/dev/null
    gen_us=$(($(now_us) - t0))
    wait "$sink" # returns 500 ms after the last line
    stop_agent
    stopped=$(grep -o 'stopped: .*' "$work/agent.log")
    events[$t]="$(cat "$work/sink.out" | tail -1) generated_us=$gen_us $stopped"
done

# --- 5. the profile ---------------------------------------------------------------------
# Kernel time per run of each program, for the floor and the agent on the same loops:
# the difference on a hook is what the agent's body costs there, measured without
# the noise of whole operations (bpf_stats adds its own clock reads to both alike).
echo "bench: profile (bpf_stats)" >&2
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
declare -A profile # "tier.config" -> lines "HOOK RUNS NS_PER_RUN"
for t in "${tiers[@]}"; do
    for c in floor one many; do
        if [ $c = floor ]; then start_timed "${wrap[@]}" "$floor" "$t"; else start_agent "$work/$c-$t.conf"; fi
        sleep 1 # settled (the 10,000-rule agent pins 20,000 inodes just after attaching)
        sysctl -q kernel.bpf_stats_enabled=1
        "$probe" bench open "$work/plain/allowed" 100000 >/dev/null
        "$probe" bench connect 127.86.75.33 40133 10000 >/dev/null
        "$probe" bench exec "${BENCH_EXEC:-/bin/true}" 200 >/dev/null
        # Only the programs this process holds (other agents may run here); named
        # by hook (enf_tp_open and fl_tp_open are both tp_open).
        profile[$t.$c]=$(find /proc/"$agent"/fdinfo -type f -exec awk '
            FNR == 1 { if (id && n > 0) printf "%d %d %d\n", id, ns, n; id = n = 0 }
            /^prog_id:/ { id = $2 } /^run_time_ns:/ { ns = $2 } /^run_cnt:/ { n = $2 }
            END { if (id && n > 0) printf "%d %d %d\n", id, ns, n }' {} + 2>/dev/null | sort -u | while read -r id ns n; do
            printf '%s %s %s\n' "$(bpftool prog show id "$id" | sed -n 's/.* name [a-z]*_\([^ ]*\) .*/\1/p')" "$n" "$((ns / n))"
        done)
        sysctl -q kernel.bpf_stats_enabled="$stats_was"
        if [ $c = floor ]; then stop_agent any; else stop_agent; fi
    done
done
stats_was=

# --- the table ----------------------------------------------------------------------------
echo
echo "enforce bench: $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), natively"
echo "load average before/after the rounds: $load_before / $load_after; $rounds rounds, $rules rules per class"
for u in "${unavailable[@]}"; do echo "not available here: $u"; done
echo
"$here/bench-table.sh" "$work/samples" "$rules" "${tiers[@]}"
echo
row() { printf "%-54s %10s %12s %8s\n" "$1" "$2" "$3" "$(ratio "$3" "$2")"; }
size=$(stat -c %s "$bin")
row "stripped static binary (bytes)" 1048576 "$size"
for t in "${tiers[@]}"; do
    row "$t: RSS, empty policy (kB)" 2048 "$(median ${fig[$t:rss.empty]})"
    row "$t: RSS, 1 rule per class (kB)" - "$(median ${fig[$t:rss.one]})"
    row "$t: RSS, $rules rules per class (kB)" 4096 "$(median ${fig[$t:rss.many]})"
    row "$t: kernel memory, empty policy (kB)" 1024 "$(median ${fig[$t:kmem.empty]})"
    row "$t: kernel memory, $rules rules per class (kB)" - "$(median ${fig[$t:kmem.many]})"
    row "$t: start to attached, empty policy (ms)" 50 "$(median ${fig[$t:start.empty]})"
    row "$t: start to attached, 1 rule per class (ms)" 50 "$(median ${fig[$t:start.one]})"
    row "$t: start to attached, $rules per class (ms)" 50 "$(median ${fig[$t:start.many]})"
    row "$t: --check end to end, 1 rule (ms)" 100 "$(median ${fig[$t:check.one]})"
    row "$t: --check end to end, $rules per class (ms)" 100 "$(median ${fig[$t:check.many]})"
    row "$t: stop, SIGTERM to exit, 1 rule (ms)" 100 "$(median ${fig[$t:stop.one]})"
    row "$t: stop, SIGTERM to exit, $rules per class (ms)" 100 "$(median ${fig[$t:stop.many]})"
    row "$t: floor: start to attached (ms)" - "$(median ${fig[$t:start.floor]})"
    row "$t: floor: stop, SIGTERM to exit (ms)" - "$(median ${fig[$t:stop.floor]})"
    e=${events[$t]}
    got=$(echo "$e" | sed -n 's/.*events=\([0-9]*\).*/\1/p') span=$(echo "$e" | sed -n 's/.*span_us=\([0-9]*\).*/\1/p')
    row "$t: events delivered to the syslog socket (/s)" 100000 "$(awk -v n="$got" -v s="$span" 'BEGIN { if (s > 0) printf "%d", n * 1e6 / s; else print 0 }')"
    echo "  $t event path: ${e}"
done
row "whole ladder (default tiers): --check (ms)" 100 "$(median ${fig[ladder:check]})"
echo
echo "where --check's time goes (-v, one run each):"
for t in "${tiers[@]}"; do
    for c in one many; do echo "  $t, $c: ${fig[$t:why.$c]}"; done
done
echo
echo "where stop's time goes: the kernel stack from SIGTERM to exit, read with 5 ms pauses;"
echo "the frames in most samples (samples a frame is in, of all samples taken)"
for t in "${tiers[@]}"; do
    for c in one floor; do
        echo "  $t, $c: ${fig[$t:stopwhy.$c.ms]} ms, ${fig[$t:stopwhy.$c.perf]} perf events held, ${fig[$t:stopwhy.$c.n]} samples:"
        echo "${fig[$t:stopwhy.$c.frames]}" | tr ';' '\n' | sed '/^$/d; s/^/    /'
    done
done
echo
echo "profile: kernel ns per run of each program on the loops (bpf_stats), floor vs agent;"
echo "the agent's body costs the difference per run of its hook"
for t in "${tiers[@]}"; do
    printf '  %-14s %10s %10s %10s %10s\n' "$t" "runs" floor one "$rules"
    for h in $(echo "${profile[$t.one]}" | awk '{ print $1 }' | sort -u); do
        ns() { echo "${profile[$t.$1]}" | awk -v h="$h" '$1 == h { print $3; exit }'; }
        runs=$(echo "${profile[$t.one]}" | awk -v h="$h" '$1 == h { print $2; exit }')
        printf '  %-14s %10s %10s %10s %10s\n' "$h" "$runs" "$(ns floor)" "$(ns one)" "$(ns many)"
    done
done
