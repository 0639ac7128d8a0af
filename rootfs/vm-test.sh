#!/bin/sh
# `make vm-test`: prove enforcement inside real kernels booted under qemu (TCG).
#
#   rootfs/vm-test.sh x86_64|arm64 ENFORCE_BINARY PROBE_BINARY
#
# Every boot runs the same guest test (rootfs/guest/run.sh); the kernel command line
# says which tier must act and, for the signal tier, which blocker --check must name.
#   x86_64, Debian bookworm 6.1 (rootfs/fetch-kernel.sh):
#     lsm-bpf          lsm=...,bpf   BPF-LSM active: posture ENFORCE, EPERM
#     lsm-nobpf        lsm=...       ENFORCE_SIGNAL (lsm-not-listed), kills
#   arm64 (rootfs/fetch-arm64.sh; arm64 busybox-static):
#     arm64-6.1-bpf    bookworm 6.1 with bpf listed: LSM attach fails with 524
#                      (no BPF trampolines on arm64 before 6.4): ENFORCE_SIGNAL
#                      with lsm-attach-failed:open:524, kills
#     arm64-6.12-bpf   bookworm-backports 6.12 with bpf: ENFORCE, EPERM
#     arm64-6.12-nobpf the same without bpf: ENFORCE_SIGNAL (lsm-not-listed)
# Each boot passes only on the guest's PASS marker; a missing marker is a failure.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 x86_64|arm64 ENFORCE_BINARY PROBE_BINARY" >&2; exit 2; }
arch=$1 bin=$2 probe=$3
here=$(cd "$(dirname "$0")" && pwd)
out=${ENFORCE_VM_WORK:-target/vm}/$arch
mkdir -p "$out"
. "$here/boot-all.sh"

image() { # OUT: the guest test image for this architecture
    "$here/mkinitramfs.sh" "$1" "$bin=/bin/enforce" "$probe=/bin/probe" "$here/guest/run.sh=/test/run.sh"
}
case $arch in
x86_64)
    "$here/fetch-kernel.sh" >/dev/null
    image "$out/enforce.cpio.gz"
    boot_all vm-test x86_64 <<BOOTS
lsm-bpf $out/enforce.cpio.gz - lsm=lockdown,capability,bpf enforce_expect=lsm
lsm-nobpf $out/enforce.cpio.gz - lsm=lockdown,capability enforce_expect=signal
BOOTS
    ;;
arm64)
    k61=$("$here/fetch-arm64.sh" kernel 6.1)
    k612=$("$here/fetch-arm64.sh" kernel 6.12)
    BUSYBOX=$("$here/fetch-arm64.sh" busybox) image "$out/enforce.cpio.gz"
    boot_all vm-test arm64 <<BOOTS
arm64-6.1-bpf $out/enforce.cpio.gz $k61 lsm=lockdown,capability,bpf enforce_expect=signal enforce_blocker=lsm-attach-failed:open:524
arm64-6.12-bpf $out/enforce.cpio.gz $k612 lsm=lockdown,capability,bpf enforce_expect=lsm
arm64-6.12-nobpf $out/enforce.cpio.gz $k612 lsm=lockdown,capability enforce_expect=signal
BOOTS
    ;;
*) echo "$0: unknown architecture '$arch' (x86_64 or arm64)" >&2; exit 2 ;;
esac
