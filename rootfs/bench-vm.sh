#!/bin/bash
# `make bench-vm`: the per-tier costs against each tier's floor in the x86_64 Debian 6.1
# VM, where lsm, fmodret and kprobe run (this host refuses them). Under qemu TCG only
# ratios between configurations measured side by side in one boot mean anything, so
# each boot runs interleaved rounds (rootfs/guest/bench.sh → tests/bench-rounds.sh):
#   bench-lsm     bpf in lsm=: the lsm tier
#   bench-nobpf   bpf not in lsm=: the fmodret, kprobe and tracepoint tiers
# and the host prints one table per boot (tests/bench-table.sh). Asserts nothing.
#
# By default the guest runs with qemu's -icount (rootfs/vm-boot.sh --icount 0): its
# clocks count the instructions it executes, one nanosecond each, so every time the
# rounds measure is a count of guest instructions, the same on a busy host as on an
# idle one. TCG's own timing (BENCH_VM_ICOUNT=off) follows the host: it varies by 10 %
# and more from round to round, more than the differences these ratios look for. An
# instruction count sees how much work the programs add, not what a cache miss costs
# on real hardware (the native `make bench` does).
#
#   rootfs/bench-vm.sh ENFORCE PROBE FLOOR
#
# Environment: BENCH_VM_ROUNDS (15), BENCH_VM_RULES (10000), BENCH_VM_N ("20000,2000,40":
# opens, connects, execs per sample), BENCH_VM_BOOTS ("lsm nobpf"), BENCH_VM_ICOUNT (0:
# the -icount shift; "off" for TCG's own timing), ENFORCE_VM_TIMEOUT (7200 here),
# ENFORCE_VM_KERNEL_PACKAGE (another Debian kernel: rootfs/fetch-kernel.sh).
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 ENFORCE PROBE FLOOR" >&2; exit 2; }
bin=$1 probe=$2 floor=$3
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
rounds=${BENCH_VM_ROUNDS:-15} rules=${BENCH_VM_RULES:-10000} n=${BENCH_VM_N:-20000,2000,40}
icount=${BENCH_VM_ICOUNT:-0}
# One vCPU: the virtual clock is shared, so instructions another vCPU ran meanwhile
# would count in the loop's time.
clock=(--icount "$icount" --smp 1) clock_says="qemu -icount shift=$icount, 1 vCPU: times are guest instructions"
[ "$icount" = off ] && clock=() clock_says="TCG's own timing (it follows the host's)"
out=${ENFORCE_VM_WORK:-target/vm}/bench
logs=${ENFORCE_VM_LOGS:-target/vm-logs}
mkdir -p "$out"
"$here/fetch-kernel.sh" >/dev/null
"$here/mkinitramfs.sh" "$out/bench.cpio.gz" "$bin=/bin/enforce" "$probe=/bin/probe" "$floor=/bin/floor" \
    "$top/tests/bench-rounds.sh=/test/bench-rounds.sh" "$here/guest/bench.sh=/test/run.sh" \
    /lib64/ld-linux-x86-64.so.2=/lib64/ld-linux-x86-64.so.2 \
    /lib/x86_64-linux-gnu/libc.so.6=/lib/x86_64-linux-gnu/libc.so.6 /bin/echo=/usr/bin/dynecho
common="enforce_bench_rounds=$rounds enforce_bench_rules=$rules enforce_bench_n=$n"
declare -A append=(
    [lsm]="lsm=lockdown,capability,bpf enforce_bench_tiers=lsm $common"
    [nobpf]="lsm=lockdown,capability enforce_bench_tiers=fmodret,kprobe,tracepoint $common"
)
declare -A tiers=([lsm]="lsm" [nobpf]="fmodret kprobe tracepoint")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date -u +%Y-%m-%dT%H:%MZ)
for b in ${BENCH_VM_BOOTS:-lsm nobpf}; do
    ENFORCE_VM_TIMEOUT=${ENFORCE_VM_TIMEOUT:-7200} "$here/vm-boot.sh" --name "bench-$b" --initrd "$out/bench.cpio.gz" \
        --append "${append[$b]}" --tail 5 "${clock[@]}" </dev/null
done
echo
echo "enforce bench-vm: started $start, host $(uname -r), $(nproc) CPUs, load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
echo "clock: $clock_says"
for b in ${BENCH_VM_BOOTS:-lsm nobpf}; do
    log=$logs/bench-$b.log
    echo
    echo "boot bench-$b: $(sed -n 's/^enforce-vm: kernel //p' "$log"); $(sed -n 's/^bench-vm: kernel [^;]*; //p' "$log")"
    grep '^sample ' "$log" >"$out/samples-$b"
    # shellcheck disable=SC2086 # the tiers are words
    "$top/tests/bench-table.sh" "$out/samples-$b" "$rules" ${tiers[$b]}
done
