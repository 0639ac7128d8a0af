#!/bin/sh
# Fetch what the armhf (32-bit ARM) VM boots need, from Debian's armhf archive,
# without touching the system's dpkg or apt state: a private APT setup (its own
# lists, cache and sources, APT::Architecture=armhf) under the cache.
#
#   rootfs/fetch-armhf.sh kernel   -> prints the path of bookworm's armmp 6.1 zImage
#   rootfs/fetch-armhf.sh btf      -> prints the path of a BTF file for that kernel,
#                                     made with pahole from its -dbg package's vmlinux
#   rootfs/fetch-armhf.sh busybox  -> prints the path of busybox-static for armhf
#   rootfs/fetch-armhf.sh glibc    -> a directory with armhf ld.so, libc.so.6, echo
#
# The armmp kernel is built without BTF (# CONFIG_DEBUG_INFO_BTF is not set): the
# BTF file is what a device maker's build produces with `pahole -J` (see README).
# The -dbg package is large (a vmlinux with DWARF): only the BTF made from it is kept.
#
# Idempotent; on a cache hit it prints the path and nothing else.
# Environment: ENFORCE_VM_CACHE (default $HOME/.cache/enforce-vm),
#              ENFORCE_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -eu
cache=${ENFORCE_VM_CACHE:-$HOME/.cache/enforce-vm}/armhf
mirror=${ENFORCE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
log() { echo "fetch-armhf: $*" >&2; }
die() { log "error: $*"; exit 1; }

# The -dbg packages are in the main archive, not in debian-debug. bookworm's own
# suite only: the kernel of its last point release, with its -dbg beside it (the
# security suite's index was seen failing to download mid-sync, and a boot test needs
# one fixed kernel, not the newest).
apt_dir=$cache/apt apt_arch=armhf
apt_sources="deb [arch=armhf signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main"
# apt_private, apt_ready, download.
. "$(cd "$(dirname "$0")" && pwd)/apt-private.sh"
# The newest bookworm armmp 6.1 kernel package (without -dbg), e.g. linux-image-6.1.0-57-armmp.
kernel_package() {
    apt_private apt-cache pkgnames linux-image-6.1.0- | grep -E '^linux-image-6\.1\.0-[0-9]+-armmp$' | sort -rV | head -n 1
}
# The kernel version the cache holds (resolved once; `kernel` and `btf` must agree).
kernel_version() {
    if [ -s "$cache/kernel-version" ]; then cat "$cache/kernel-version"; return; fi
    apt_ready
    pkg=$(kernel_package)
    [ -n "$pkg" ] || die "no linux-image-6.1.0-NN-armmp in the armhf index (bookworm)"
    echo "${pkg#linux-image-}" | tee "$cache/kernel-version"
}

mkdir -p "$cache"
case ${1:-} in
kernel)
    ver=$(kernel_version)
    dir=$cache/$ver
    if [ ! -s "$dir/zImage" ]; then
        apt_ready
        deb=$(download "linux-image-$ver" "$cache/debs")
        rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir.tmp" ./boot || die "extracting ./boot from $deb failed"
        # armhf's vmlinuz is a self-decompressing zImage: qemu -kernel boots it as is.
        cp "$dir.tmp/boot/vmlinuz-$ver" "$dir.tmp/zImage"
        dpkg-deb -f "$deb" Package Version >"$dir.tmp/package"
        rm -rf "$dir" && mv "$dir.tmp" "$dir"
        rm -f "$deb"
        log "kernel $ver ready"
    fi
    echo "$dir/zImage"
    ;;
btf)
    ver=$(kernel_version)
    out=$cache/$ver.btf
    [ -s "$out" ] && { echo "$out"; exit 0; }
    command -v pahole >/dev/null || die "pahole not found (Debian package dwarves; run make deps)"
    apt_ready
    deb=$(download "linux-image-$ver-dbg" "$cache/debs")
    tmp=$cache/.btf.$$
    rm -rf "$tmp" && mkdir -p "$tmp"
    # Only the vmlinux; the modules' debug info is most of the package.
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards "./usr/lib/debug/*vmlinux*" ||
        die "extracting vmlinux from $deb failed"
    vmlinux=$(find "$tmp" -name "vmlinux-$ver" -type f | head -n 1)
    [ -n "$vmlinux" ] || die "$deb has no vmlinux-$ver"
    # A detached raw BTF blob, what /sys/kernel/btf/vmlinux would hold.
    pahole --btf_encode_detached="$tmp/vmlinux.btf" "$vmlinux" >&2 || die "pahole failed on $vmlinux"
    [ -s "$tmp/vmlinux.btf" ] || die "pahole wrote no BTF"
    mv "$tmp/vmlinux.btf" "$out"
    rm -rf "$tmp" "$deb"
    log "BTF for $ver ready ($(wc -c <"$out") bytes)"
    echo "$out"
    ;;
busybox)
    out=$cache/busybox/busybox
    [ -s "$out" ] && { echo "$out"; exit 0; }
    apt_ready
    deb=$(download busybox-static "$cache/debs")
    rm -rf "$cache/busybox.tmp" && mkdir -p "$cache/busybox.tmp"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$cache/busybox.tmp" ./bin/busybox || die "extracting busybox from $deb failed"
    mkdir -p "$cache/busybox"
    mv "$cache/busybox.tmp/bin/busybox" "$out"
    rm -rf "$cache/busybox.tmp"
    echo "$out"
    ;;
glibc)
    # A dynamic program and what it needs to run: the loader route of the exec tests.
    # Prints a directory holding lib/ld-linux-armhf.so.3, lib/arm-linux-gnueabihf/libc.so.6
    # and bin/echo.
    out=$cache/glibc
    [ -s "$out/bin/echo" ] && { echo "$out"; exit 0; }
    apt_ready
    rm -rf "$out.tmp" && mkdir -p "$out.tmp/x"
    for p in libc6 coreutils; do
        deb=$(download "$p" "$cache/debs")
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$out.tmp/x" || die "extracting $deb failed"
    done
    mkdir -p "$out.tmp/lib/arm-linux-gnueabihf" "$out.tmp/bin"
    x=$out.tmp/x
    cp -L "$(find "$x" -name ld-linux-armhf.so.3 -type f | head -n 1)" "$out.tmp/lib/ld-linux-armhf.so.3"
    cp -L "$(find "$x" -name libc.so.6 | head -n 1)" "$out.tmp/lib/arm-linux-gnueabihf/libc.so.6"
    cp -L "$x/bin/echo" "$out.tmp/bin/echo"
    rm -rf "$x" "$out" && mv "$out.tmp" "$out"
    echo "$out"
    ;;
*) die "usage: $0 kernel | btf | busybox | glibc" ;;
esac
