#!/bin/bash
# Boot the Debian 6.1 kernel (rootfs/fetch-kernel.sh) under qemu TCG with an
# initramfs from rootfs/mkinitramfs.sh and decide pass/fail from the marker
# line printed by rootfs/init. qemu's exit code says nothing (0 on power-off
# and on panic).
#
#   rootfs/vm-boot.sh --name NAME --initrd FILE.cpio.gz [--append "EXTRA CMDLINE"]
#                     [--timeout SECS] [--mem SIZE] [--kernel VMLINUX] [--tail N]
#                     [--arch x86_64|arm64|armhf] [--smp N] [--accel ACCEL] [--icount SHIFT]
#
# --arch arm64 boots qemu-system-aarch64 -M virt -cpu cortex-a57 (console ttyAMA0)
# and needs --kernel (an arm64 Image, from rootfs/fetch-arm64.sh).
# --arch armhf boots qemu-system-arm -M virt -cpu cortex-a15 (32-bit ARM, console
# ttyAMA0) and needs --kernel (an armmp zImage, from rootfs/fetch-armhf.sh).
#
# Exit: 0 PASS, 1 FAIL (marker says FAIL, marker missing, or timeout), 2 usage/setup.
# The console log (\r stripped) is saved as ${ENFORCE_VM_LOGS:-target/vm-logs}/NAME.log
# and printed (all of it, or its last N lines with --tail N / ENFORCE_VM_TAIL=N).
#
# --accel is qemu's -accel value (default tcg: multi-threaded TCG, one host thread per
# vCPU; tcg,thread=single runs every vCPU on one host thread, taking turns).
# --icount SHIFT adds -icount shift=SHIFT,sleep=off: the guest's clocks count the
# instructions it executes (2^SHIFT ns each; idle time is skipped) instead of following
# the host's, so a time measured in the guest is the same on a busy host as on an
# idle one. It implies tcg,thread=single (qemu has no icount with a thread per vCPU).
#
# Environment: ENFORCE_VM_TIMEOUT (default 300), ENFORCE_VM_ACCEL (--accel),
#              ENFORCE_VM_ICOUNT (--icount), ENFORCE_VM_LOGS, ENFORCE_VM_CACHE,
#              ENFORCE_VM_KERNEL (a vmlinux/bzImage to use instead of fetching),
#              QEMU (default qemu-system-x86_64).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
name= initrd= append= kernel=${ENFORCE_VM_KERNEL:-}
timeout_s=${ENFORCE_VM_TIMEOUT:-300}
arch=x86_64
mem=256M
# Two vCPUs: a guest test that races two threads (race-connect) needs them to run at
# once; with one, TCG only switches threads at points where the race cannot happen.
smp=${ENFORCE_VM_SMP:-2}
accel=${ENFORCE_VM_ACCEL:-tcg}
icount=${ENFORCE_VM_ICOUNT:-}
tail_n=${ENFORCE_VM_TAIL:-0}
qemu=${QEMU:-}

usage() {
    sed -n '7,9p' "$0" | sed 's/^# *//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
        --name) name=$2; shift 2 ;;
        --initrd) initrd=$2; shift 2 ;;
        --append) append=$2; shift 2 ;;
        --timeout) timeout_s=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --kernel) kernel=$2; shift 2 ;;
        --tail) tail_n=$2; shift 2 ;;
        --arch) arch=$2; shift 2 ;;
        --smp) smp=$2; shift 2 ;;
        --accel) accel=$2; shift 2 ;;
        --icount) icount=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "vm-boot: unknown argument '$1'" >&2; usage ;;
    esac
done
[ -n "$name" ] && [ -n "$initrd" ] || usage
[ -s "$initrd" ] || { echo "vm-boot: initrd $initrd not found" >&2; exit 2; }
case $arch in
    x86_64) qemu=${qemu:-qemu-system-x86_64} machine=() console=ttyS0 package=qemu-system-x86 ;;
    arm64) qemu=${qemu:-qemu-system-aarch64} machine=(-M virt -cpu cortex-a57) console=ttyAMA0 package=qemu-system-arm
        [ -n "$kernel" ] || { echo "vm-boot: --arch arm64 needs --kernel IMAGE" >&2; exit 2; } ;;
    armhf) qemu=${qemu:-qemu-system-arm} machine=(-M virt -cpu cortex-a15) console=ttyAMA0 package=qemu-system-arm
        [ -n "$kernel" ] || { echo "vm-boot: --arch armhf needs --kernel ZIMAGE" >&2; exit 2; } ;;
    *) echo "vm-boot: unknown --arch '$arch' (x86_64, arm64 or armhf)" >&2; exit 2 ;;
esac
command -v "$qemu" >/dev/null || { echo "vm-boot: $qemu not found (apt-get install $package)" >&2; exit 2; }
if [ -z "$kernel" ]; then
    kernel=$("$here/fetch-kernel.sh") || { echo "vm-boot: fetch-kernel.sh failed" >&2; exit 2; }
fi

logdir=${ENFORCE_VM_LOGS:-target/vm-logs}
mkdir -p "$logdir"
log=$logdir/$name.log
raw=$logdir/$name.raw

qpid=
cleanup() {
    if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
        # timeout(1) forwards TERM to qemu; KILL the group if it lingers.
        kill -TERM "$qpid" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$qpid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$qpid" 2>/dev/null || true
        wait "$qpid" 2>/dev/null || true
    fi
    rm -f "$raw"
}
trap cleanup EXIT
trap 'echo "vm-boot: interrupted" >&2; exit 130' INT TERM HUP

cmdline="console=$console panic=-1 $append"
echo "vm-boot: $name: kernel $kernel" >&2
echo "vm-boot: $name: cmdline $cmdline" >&2
start=$(date +%s.%N)
# stdin from /dev/null: qemu must not put a terminal into raw mode.
# -nic none: the guest only needs lo (and it skips the iPXE option ROM).
clock=()
if [ -n "$icount" ]; then
    case $icount in *[!0-9]* | ??*) echo "vm-boot: --icount takes a shift of 0 to 9, not '$icount'" >&2; exit 2 ;; esac
    accel=tcg,thread=single clock=(-icount "shift=$icount,sleep=off")
fi
timeout -k 5 "$timeout_s" "$qemu" "${machine[@]}" -accel "$accel" "${clock[@]}" -smp "$smp" -m "$mem" -nographic -no-reboot -nic none \
    -kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
    </dev/null >"$raw" 2>&1 &
qpid=$!
rc=0
wait "$qpid" || rc=$?
qpid=
end=$(date +%s.%N)
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')

# Strip \r and the terminal escapes SeaBIOS prints.
tr -d '\r' <"$raw" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' >"$log"
rm -f "$raw"

if [ "$tail_n" -gt 0 ] 2>/dev/null; then
    tail -n "$tail_n" "$log"
else
    cat "$log"
fi

if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "vm-boot: $name: FAIL: timed out after ${timeout_s}s (log: $log)" >&2
    exit 1
fi
if grep -qx 'ENFORCE-VM-RESULT: PASS' "$log"; then
    echo "vm-boot: $name: PASS in ${secs}s (log: $log)" >&2
    exit 0
fi
marker=$(grep -m1 '^ENFORCE-VM-RESULT:' "$log" || true)
if [ -n "$marker" ]; then
    echo "vm-boot: $name: FAIL: $marker after ${secs}s (log: $log)" >&2
else
    echo "vm-boot: $name: FAIL: no ENFORCE-VM-RESULT marker (qemu exit $rc, ${secs}s; kernel panic, crashed init or too little memory?) (log: $log)" >&2
fi
exit 1
