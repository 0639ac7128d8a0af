#!/bin/bash
# `make bench-vm`: the per-tier costs against each tier's floor in the x86_64 Debian 6.1
# VM, where lsm, fmodret and kprobe run (this host refuses them). Under qemu TCG only
# ratios between configurations measured side by side in one boot mean anything, so
# each boot runs interleaved rounds (rootfs/guest/bench.sh → tests/bench-rounds.sh):
#   bench-lsm     bpf in lsm=: the lsm tier
#   bench-nobpf   bpf not in lsm=: the fmodret, kprobe and tracepoint tiers
# and the host prints one table per boot (tests/bench-table.sh). Asserts nothing.
#
#   rootfs/bench-vm.sh ENFORCE PROBE FLOOR
#
# Environment: BENCH_VM_ROUNDS (15), BENCH_VM_RULES (10000), BENCH_VM_N ("20000,2000,40":
# opens, connects, execs per sample), BENCH_VM_BOOTS ("lsm nobpf"), ENFORCE_VM_TIMEOUT
# (7200 here).
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 ENFORCE PROBE FLOOR" >&2; exit 2; }
bin=$1 probe=$2 floor=$3
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
rounds=${BENCH_VM_ROUNDS:-15} rules=${BENCH_VM_RULES:-10000} n=${BENCH_VM_N:-20000,2000,40}
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
        --append "${append[$b]}" --tail 5 </dev/null
done
echo
echo "enforce bench-vm: started $start, host $(uname -r), $(nproc) CPUs, load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
for b in ${BENCH_VM_BOOTS:-lsm nobpf}; do
    log=$logs/bench-$b.log
    echo
    echo "boot bench-$b: $(sed -n 's/^enforce-vm: kernel //p' "$log"); $(sed -n 's/^bench-vm: kernel [^;]*; //p' "$log")"
    grep '^sample ' "$log" >"$out/samples-$b"
    # shellcheck disable=SC2086 # the tiers are words
    "$top/tests/bench-table.sh" "$out/samples-$b" "$rules" ${tiers[$b]}
done
