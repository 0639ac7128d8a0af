#!/bin/sh
# `make vm-test`: prove enforcement inside real kernels booted under qemu (TCG).
#
#   rootfs/vm-test.sh ENFORCE_BINARY PROBE_BINARY
#
# Boots Debian's x86_64 6.1 kernel twice with the same image (rootfs/guest/run.sh):
#   lsm-bpf     lsm=lockdown,capability,bpf   BPF-LSM active: posture ENFORCE, EPERM
#   lsm-nobpf   lsm=lockdown,capability       BPF-LSM inactive: ENFORCE_SIGNAL, kills
# Each boot passes only on the guest's PASS marker; a missing marker is a failure.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 ENFORCE_BINARY PROBE_BINARY" >&2; exit 2; }
bin=$1 probe=$2
here=$(cd "$(dirname "$0")" && pwd)
out=${ENFORCE_VM_WORK:-target/vm}
mkdir -p "$out"

"$here/fetch-kernel.sh" >/dev/null
"$here/mkinitramfs.sh" "$out/enforce.cpio.gz" \
    "$bin=/bin/enforce" "$probe=/bin/probe" "$here/guest/run.sh=/test/run.sh"

failed=
for boot in "lsm-bpf lsm=lockdown,capability,bpf enforce_expect=lsm" \
            "lsm-nobpf lsm=lockdown,capability enforce_expect=signal"; do
    set -- $boot
    name=$1
    shift
    if "$here/vm-boot.sh" --name "$name" --initrd "$out/enforce.cpio.gz" --append "$*"; then
        echo "vm-test: $name: PASS"
    else
        echo "vm-test: $name: FAIL" >&2
        failed="$failed $name"
    fi
done
[ -z "$failed" ] || { echo "vm-test: failed:$failed" >&2; exit 1; }
echo "vm-test: every boot passed"
