#!/bin/sh
# `make vm-test`: prove enforcement inside real kernels booted under qemu (TCG).
#
#   rootfs/vm-test.sh x86_64|arm64 ENFORCE_BINARY PROBE_BINARY
#
# Every boot runs the same guest test (rootfs/guest/run.sh); the kernel command line
# says which tier of the ladder must serve every class (enforce_expect), how the config
# restricts the ladder (enforce_tiers), and which blockers --check must name
# (enforce_blockers).
#   x86_64, Debian bookworm 6.1 (rootfs/fetch-kernel.sh):
#     scale        lsm=...,bpf: 10,000 rules per class in each tier in turn
#                  (rootfs/guest/scale.sh): the last rule of each list is denied
#     lsm          lsm=...,bpf: BPF-LSM, ENFORCE, EPERM
#     fmodret      bpf not in lsm=: fmod_ret on security_*(), ENFORCE, EPERM
#     kprobe       the same kernel, ladder restricted to kprobe: ENFORCE_SIGNAL, kills
#     tracepoint   ladder restricted to tracepoint: ENFORCE_SIGNAL, kills
#     x86_64-path  ladder restricted to path (the tier for kernels without BTF, whose
#                  programs have no CO-RE relocation): ENFORCE_SIGNAL, kills by name
#     x86_64-nobtf the whole ladder with /sys/kernel/btf hidden from libbpf (as on a
#                  kernel without BTF): every other tier is named as needing BTF and
#                  not tried; path serves
#     x86_64-btf-file  the same, with `btf =` a copy of the kernel's BTF: the
#                  kprobe tier from the build for kernels without BTF, ENFORCE_SIGNAL
#   x86_64, Debian bullseye 5.10 (rootfs/fetch-kernel.sh 5.10), the oldest LTS served:
#     x86_64-5.10-bpf    lsm=...,bpf: lsm, ENFORCE
#     x86_64-5.10-nobpf  bpf not in lsm=: fmodret, ENFORCE
#     x86_64-5.10-kprobe      restricted to kprobe: ENFORCE_SIGNAL
#     x86_64-5.10-tracepoint  restricted to tracepoint: no bpf_find_vma (5.17), so no
#                  mprotect program (asserted as a limit): AUDIT_ONLY, exec class none
#     x86_64-5.10-path        restricted to path: ENFORCE_SIGNAL
#     Every 5.10 boot names tracepoint-needs-find-vma:mprotect.
#   arm64 (rootfs/fetch-arm64.sh; arm64 busybox-static):
#     arm64-6.1    bookworm 6.1 with bpf listed: LSM and fmod_ret attach fail with 524
#                  (no BPF trampolines on arm64 before 6.4): kprobe, ENFORCE_SIGNAL
#     arm64-6.12-bpf    bookworm-backports 6.12 with bpf: lsm, ENFORCE
#     arm64-6.12-nobpf  the same without bpf: fmodret, ENFORCE
#     arm64-6.1-path    bookworm 6.1, ladder restricted to path: ENFORCE_SIGNAL
#     arm64-5.10        bullseye 5.10 with bpf listed: no BPF trampolines either, so
#                       kprobe, ENFORCE_SIGNAL
#   x86_64, the reliability proofs (rootfs/guest/reliability.sh), on the same kernel:
#     rel-lsm         lsm: reload under fire (100 reloads, enforce and audit mode), a
#                     full ring buffer, 1,000,000 denied opens, pinning and adoption
#     rel-tracepoint  restricted to tracepoint (the offender is killed): reload under
#                     fire, a full ring buffer, pinning and adoption
#     These run under single-threaded TCG (every vCPU on one host thread, taking
#     turns): with multi-threaded TCG, attaching an LSM program to a function that the
#     other vCPU runs in a tight loop hung the guest (soft lockups on the int3 of the
#     kernel's text patching), with the agent as it was before this test and after.
#   armhf (rootfs/fetch-armhf.sh; armhf busybox-static; the armv7 build): Debian
#   bookworm's armmp 6.1, a 32-bit kernel built without BTF
#     armhf-nobtf       no btf file: --check names kernel-btf-missing and every tier
#                       that cannot load without BTF; the path tier serves,
#                       ENFORCE_SIGNAL with path-matching
#     armhf-btf         `btf =` a file pahole made from the kernel's -dbg vmlinux:
#                       LSM and fmod_ret cannot attach without the kernel's own BTF
#                       (named); kprobe serves every class, ENFORCE_SIGNAL
#     armhf-btf-tracepoint  the same, ladder restricted to tracepoint: open, exec
#                       and connect killed by inode/address; mprotect needs
#                       bpf_find_vma (kernel BTF), so the exec class is not fully
#                       served: AUDIT_ONLY with the blockers that say so; 32-bit
#                       ARM's mmap is mmap2, which has no sys_enter_mmap tracepoint
#                       (tracepoint-attach-failed:mmap:2)
#   On this kernel the programs run in the BPF interpreter (--check: TIER.jit=no):
#   bpf_jit_enable is 0, and with it set to 1 the 32-bit ARM JIT still leaves them
#   (BPF-to-BPF calls); the interpreter refuses bpf_loop callbacks, so sendmmsg is
#   walked by a bounded loop there.
#   The armhf boots run the guest test's core cases (enforce_cases=core): the
#   main enforce session, its denials and controls, and nothing left after stop.
# Each boot passes only on the guest's PASS marker; a missing marker is a failure.
# ENFORCE_VM_BOOTS="lsm kprobe" boots a subset (by name).
set -eu
[ $# -eq 3 ] || { echo "usage: $0 x86_64|arm64|armhf ENFORCE_BINARY PROBE_BINARY" >&2; exit 2; }
arch=$1 bin=$2 probe=$3
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
out=${ENFORCE_VM_WORK:-target/vm}/$arch
mkdir -p "$out"
. "$here/boot-all.sh"

image() { # OUT HOST=GUEST...: the guest test image, with a dynamic program's fixture
    img=$1
    shift
    "$here/mkinitramfs.sh" "$img" "$bin=/bin/enforce" "$probe=/bin/probe" "$open32=/bin/open32" \
        "$top/target/compat/dlopen-$cpu=/usr/bin/dlopen-test" "$top/target/compat/libhello-$cpu.so=/usr/lib/libhello.so" \
        "$here/guest/run.sh=/test/run.sh" "$here/guest/lib.sh=/test/lib.sh" "$@"
}
# boots: the boot table on stdin, filtered by ENFORCE_VM_BOOTS.
boots() {
    if [ -z "${ENFORCE_VM_BOOTS:-}" ]; then cat; return; fi
    while read -r line; do
        for b in $ENFORCE_VM_BOOTS; do [ "${line%% *}" = "$b" ] && echo "$line"; done
    done
}
nobpf=lsm=lockdown,capability
bpf=lsm=lockdown,capability,bpf
case $arch in
x86_64)
    "$here/fetch-kernel.sh" >/dev/null
    k510=$("$here/fetch-kernel.sh" 5.10)
    k612=$("$here/fetch-kernel.sh" 6.12)
    open32=$top/target/compat/open32-i386 cpu=x86_64
    # overlayfs is a module of the default kernel: from its .deb, for the overlay cases
    # (enforce_overlay=1); it loads on that kernel only.
    kver=$(cat "${ENFORCE_VM_CACHE:-$HOME/.cache/enforce-vm}/kernel-version")
    ovl=$out/modules/$kver/overlay.ko
    if [ ! -s "$ovl" ]; then
        mkdir -p "$out/modules/$kver"
        dpkg-deb --fsys-tarfile "${ENFORCE_VM_CACHE:-$HOME/.cache/enforce-vm}"/debs/linux-image-"$kver"_*.deb |
            tar -xO "./lib/modules/$kver/kernel/fs/overlayfs/overlay.ko" >"$ovl.tmp" && mv "$ovl.tmp" "$ovl"
    fi
    # btrfs, FAT, squashfs, erofs, ext4 and the loop driver are modules too
    # (enforce_fs=1), and the guest has no mkfs but busybox's mkdosfs: the images are
    # made here (btrfs-progs, squashfs-tools, erofs-utils, e2fsprogs; root).
    mods=$out/modules/$kver
    fs_mods="lib/zstd/zstd_compress lib/raid6/raid6_pq crypto/xor crypto/crc32c_generic lib/libcrc32c fs/btrfs/btrfs drivers/block/loop fs/fat/fat fs/fat/vfat fs/nls/nls_cp437 fs/nls/nls_ascii fs/nls/nls_utf8 fs/squashfs/squashfs fs/erofs/erofs lib/crc16 fs/mbcache fs/jbd2/jbd2 fs/ext4/ext4"
    if ! (for m in $fs_mods; do [ -s "$mods/${m##*/}.ko" ] || exit 1; done); then
        members=$(for m in $fs_mods; do echo "./lib/modules/$kver/kernel/$m.ko"; done)
        t=$(mktemp -d)
        # shellcheck disable=SC2086
        dpkg-deb --fsys-tarfile "${ENFORCE_VM_CACHE:-$HOME/.cache/enforce-vm}"/debs/linux-image-"$kver"_*.deb |
            tar -x -C "$t" $members
        for m in $fs_mods; do mv "$t/lib/modules/$kver/kernel/$m.ko" "$mods/"; done
        rm -rf "$t"
    fi
    btrfs_img=$out/btrfs.img
    rm -f "$btrfs_img"
    truncate -s 24M "$btrfs_img" && mkfs.btrfs -q -M "$btrfs_img" >/dev/null
    m=$(mktemp -d)
    mount -o loop "$btrfs_img" "$m"
    # The first file made in each subvolume gets the same inode number: secret, twin.
    btrfs -q subvolume create "$m/sv" && echo secret >"$m/sv/secret" && echo twin >"$m/twin" &&
        cp "$probe" "$m/sv/denied-tool" && cp "$probe" "$m/sv/tool"
    umount "$m" && rmdir "$m"
    # The read-only roots devices boot from: squashfs, erofs, ext4, one tree each.
    tree=$(mktemp -d)
    echo secret >"$tree/secret" && echo owsecret >"$tree/owsecret" && echo other >"$tree/other" &&
        cp "$probe" "$tree/tool" && cp "$probe" "$tree/denied-tool"
    rm -f "$out/sq.img" "$out/erofs.img" "$out/ext4.img"
    mksquashfs "$tree" "$out/sq.img" -quiet -noappend -all-root >/dev/null
    mkfs.erofs "$out/erofs.img" "$tree" >/dev/null
    mkfs.ext4 -q -d "$tree" "$out/ext4.img" 8M
    rm -rf "$tree"
    fs_files=$(for m in $fs_mods; do echo "$mods/${m##*/}.ko=/lib/modules/${m##*/}.ko"; done)
    # The loader route needs a dynamic program: this machine's echo and its glibc.
    # shellcheck disable=SC2086
    image "$out/enforce.cpio.gz" /lib64/ld-linux-x86-64.so.2=/lib64/ld-linux-x86-64.so.2 \
        /lib/x86_64-linux-gnu/libc.so.6=/lib/x86_64-linux-gnu/libc.so.6 /bin/echo=/usr/bin/dynecho \
        "$ovl=/lib/modules/overlay.ko" "$btrfs_img=/lib/btrfs.img" $fs_files \
        "$out/sq.img=/lib/sq.img" "$out/erofs.img=/lib/erofs.img" "$out/ext4.img=/lib/ext4.img"
    # The capacity test: 10,000 rules per class, in every tier (rootfs/guest/scale.sh).
    "$here/mkinitramfs.sh" "$out/scale.cpio.gz" "$bin=/bin/enforce" "$probe=/bin/probe" \
        "$here/guest/scale.sh=/test/run.sh" "$here/guest/lib.sh=/test/lib.sh"
    boots <<BOOTS | boot_all vm-test x86_64
scale $out/scale.cpio.gz - $bpf
lsm $out/enforce.cpio.gz - $bpf enforce_expect=lsm enforce_jit=yes enforce_overlay=1 enforce_fs=1
fmodret $out/enforce.cpio.gz - $nobpf enforce_expect=fmodret enforce_blockers=lsm-not-listed enforce_overlay=1 enforce_fs=1
kprobe $out/enforce.cpio.gz - $nobpf enforce_expect=kprobe enforce_tiers=kprobe enforce_blockers=lsm-excluded,fmodret-excluded enforce_overlay=1 enforce_fs=1
tracepoint $out/enforce.cpio.gz - $nobpf enforce_expect=tracepoint enforce_tiers=tracepoint enforce_blockers=lsm-excluded,fmodret-excluded,kprobe-excluded enforce_overlay=1 enforce_fs=1
x86_64-path $out/enforce.cpio.gz - $nobpf enforce_expect=path enforce_tiers=path enforce_blockers=lsm-excluded,fmodret-excluded,kprobe-excluded,tracepoint-excluded,path-matching
x86_64-nobtf $out/enforce.cpio.gz - $bpf enforce_expect=path enforce_hide_btf=1 enforce_blockers=kernel-btf-missing,lsm-needs-kernel-btf,fmodret-needs-kernel-btf,kprobe-needs-btf,tracepoint-needs-btf,path-matching
x86_64-btf-file $out/enforce.cpio.gz - $bpf enforce_expect=kprobe enforce_hide_btf=1 enforce_btf=/lib/vmlinux.btf enforce_blockers=kernel-btf-missing,lsm-needs-kernel-btf,fmodret-needs-kernel-btf
x86_64-5.10-bpf $out/enforce.cpio.gz $k510 $bpf enforce_expect=lsm enforce_blockers=tracepoint-needs-find-vma:mprotect
x86_64-5.10-nobpf $out/enforce.cpio.gz $k510 $nobpf enforce_expect=fmodret enforce_blockers=lsm-not-listed,tracepoint-needs-find-vma:mprotect
x86_64-5.10-kprobe $out/enforce.cpio.gz $k510 $nobpf enforce_expect=kprobe enforce_tiers=kprobe enforce_blockers=lsm-excluded,fmodret-excluded
x86_64-5.10-tracepoint $out/enforce.cpio.gz $k510 $nobpf enforce_expect=tracepoint enforce_tiers=tracepoint enforce_posture=AUDIT_ONLY enforce_exec_tier=none enforce_limits=mprotect,interp enforce_blockers=lsm-excluded,fmodret-excluded,kprobe-excluded,tracepoint-needs-find-vma:mprotect,class-unenforced:exec
x86_64-5.10-path $out/enforce.cpio.gz $k510 $nobpf enforce_expect=path enforce_tiers=path enforce_blockers=lsm-excluded,fmodret-excluded,kprobe-excluded,tracepoint-excluded,path-matching
BOOTS
    # Trixie's 6.12 under multi-threaded TCG sometimes dies at boot, before any of our
    # code runs (an int3 Oops in sched_clock_cpu as it patches its code): one thread.
    (
        export ENFORCE_VM_ACCEL=tcg,thread=single
        boots <<BOOTS | boot_all vm-test x86_64
x86_64-6.12-bpf $out/enforce.cpio.gz $k612 $bpf enforce_expect=lsm
x86_64-6.12-nobpf $out/enforce.cpio.gz $k612 $nobpf enforce_expect=fmodret enforce_blockers=lsm-not-listed
BOOTS
    )
    "$here/mkinitramfs.sh" "$out/reliability.cpio.gz" "$bin=/bin/enforce" "$probe=/bin/probe" \
        "$here/guest/reliability.sh=/test/run.sh" "$here/guest/lib.sh=/test/lib.sh"
    export ENFORCE_VM_ACCEL=tcg,thread=single ENFORCE_VM_TIMEOUT=${ENFORCE_VM_TIMEOUT:-1800}
    boots <<BOOTS | boot_all vm-test x86_64
rel-lsm $out/reliability.cpio.gz - $bpf enforce_expect=lsm
rel-tracepoint $out/reliability.cpio.gz - $nobpf enforce_expect=tracepoint enforce_tiers=tracepoint
BOOTS
    ;;
arm64)
    k61=$("$here/fetch-arm64.sh" kernel 6.1)
    k612=$("$here/fetch-arm64.sh" kernel 6.12)
    k510=$("$here/fetch-arm64.sh" kernel 5.10)
    open32=$top/target/compat/open32-arm cpu=aarch64
    glibc=$("$here/fetch-arm64.sh" glibc)
    BUSYBOX=$("$here/fetch-arm64.sh" busybox) image "$out/enforce.cpio.gz" \
        "$glibc/lib/ld-linux-aarch64.so.1=/lib/ld-linux-aarch64.so.1" \
        "$glibc/lib/aarch64-linux-gnu/libc.so.6=/lib/aarch64-linux-gnu/libc.so.6" "$glibc/bin/echo=/usr/bin/dynecho"
    boots <<BOOTS | boot_all vm-test arm64
arm64-6.1 $out/enforce.cpio.gz $k61 $bpf enforce_expect=kprobe enforce_blockers=lsm-attach-failed:open:524,fmodret-attach-failed:open:524
arm64-6.12-bpf $out/enforce.cpio.gz $k612 $bpf enforce_expect=lsm
arm64-6.12-nobpf $out/enforce.cpio.gz $k612 $nobpf enforce_expect=fmodret enforce_blockers=lsm-not-listed
arm64-5.10 $out/enforce.cpio.gz $k510 $bpf enforce_expect=kprobe enforce_blockers=lsm-attach-failed:open:524,fmodret-attach-failed:open:524,tracepoint-needs-find-vma:mprotect
arm64-6.1-path $out/enforce.cpio.gz $k61 $bpf enforce_expect=path enforce_tiers=path enforce_blockers=lsm-excluded,fmodret-excluded,kprobe-excluded,tracepoint-excluded,path-matching
BOOTS
    ;;
armhf)
    karm=$("$here/fetch-armhf.sh" kernel)
    btf=$("$here/fetch-armhf.sh" btf)
    open32=$top/target/compat/open32-arm cpu=arm
    glibc=$("$here/fetch-armhf.sh" glibc)
    BUSYBOX=$("$here/fetch-armhf.sh" busybox) image "$out/enforce.cpio.gz" \
        "$glibc/lib/ld-linux-armhf.so.3=/lib/ld-linux-armhf.so.3" \
        "$glibc/lib/arm-linux-gnueabihf/libc.so.6=/lib/arm-linux-gnueabihf/libc.so.6" "$glibc/bin/echo=/usr/bin/dynecho" \
        "$btf=/usr/lib/enforce/vmlinux.btf"
    # A 32-bit guest under TCG is slow; bpf stays listed (Debian's default).
    bt=enforce_btf=/usr/lib/enforce/vmlinux.btf
    boots <<BOOTS | boot_all vm-test armhf
armhf-nobtf $out/enforce.cpio.gz $karm $bpf enforce_expect=path enforce_cases=core enforce_blockers=kernel-btf-missing,lsm-needs-kernel-btf,fmodret-needs-kernel-btf,kprobe-needs-btf,tracepoint-needs-btf,path-matching
armhf-btf $out/enforce.cpio.gz $karm $bpf $bt enforce_expect=kprobe enforce_cases=core enforce_jit=no enforce_blockers=kernel-btf-missing,lsm-needs-kernel-btf,fmodret-needs-kernel-btf
armhf-btf-tracepoint $out/enforce.cpio.gz $karm $bpf $bt enforce_expect=tracepoint enforce_tiers=tracepoint enforce_cases=core enforce_jit=no enforce_posture=AUDIT_ONLY enforce_exec_tier=none enforce_blockers=kernel-btf-missing,tracepoint-needs-kernel-btf:mprotect,tracepoint-attach-failed:mmap:2,class-unenforced:exec
BOOTS
    ;;
*) echo "$0: unknown architecture '$arch' (x86_64, arm64 or armhf)" >&2; exit 2 ;;
esac
