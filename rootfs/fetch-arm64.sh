#!/bin/sh
# Fetch what the arm64 VM boots need, from Debian's arm64 archive, without touching
# the system's dpkg or apt state: a private APT setup (its own lists, cache and
# sources, APT::Architecture=arm64) under the cache.
#
#   rootfs/fetch-arm64.sh kernel 6.1    -> prints the path of an arm64 Image (bookworm)
#   rootfs/fetch-arm64.sh kernel 6.12   -> the same from bookworm-backports
#   rootfs/fetch-arm64.sh kernel 5.10   -> the same from bullseye (an index of its own)
#   rootfs/fetch-arm64.sh busybox       -> prints the path of busybox-static for arm64
#
# Idempotent; on a cache hit it prints the path and nothing else. Only ./boot of a
# kernel package and ./bin/busybox of busybox-static are extracted.
# Environment: ENFORCE_VM_CACHE (default $HOME/.cache/enforce-vm),
#              ENFORCE_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#              ENFORCE_DEBIAN_SECURITY (default http://deb.debian.org/debian-security).
set -eu
cache=${ENFORCE_VM_CACHE:-$HOME/.cache/enforce-vm}/arm64
mirror=${ENFORCE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${ENFORCE_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
log() { echo "fetch-arm64: $*" >&2; }
die() { log "error: $*"; exit 1; }

apt_dir=$cache/apt apt_arch=arm64
apt_sources="deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm-updates main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm-backports main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $security bookworm-security main"
. "$(cd "$(dirname "$0")" && pwd)/apt-private.sh"

case ${1:-} in
kernel)
    case ${2:-} in
    6.1) pattern='linux-image-6\.1\.0-[0-9]+-arm64' suite= ;;
    6.12) pattern='linux-image-6\.12\.[0-9]+\+deb12(\.[0-9]+)?-arm64' suite=bookworm-backports ;;
    # bullseye's own index, apart from bookworm's (a kernel name in both would be ambiguous).
    5.10) pattern='linux-image-5\.10\.0-[0-9]+-arm64' suite=
        apt_dir=$cache/apt-bullseye
        apt_sources="deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bullseye main" ;;
    *) die "usage: $0 kernel 6.1|6.12|5.10" ;;
    esac
    last=$cache/kernel-$2
    if [ -s "$last" ] && [ -s "$(cat "$last")" ]; then cat "$last"; exit 0; fi
    apt_ready
    pkg=$(newest "$pattern" "$suite")
    [ -n "$pkg" ] || die "no package matches $pattern in the arm64 index (bookworm, -updates, -security, -backports)"
    ver=${pkg#linux-image-}
    dir=$cache/$ver
    if [ ! -s "$dir/Image" ]; then
        deb=$(download "$pkg" "$cache/debs")
        rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir.tmp" ./boot || die "extracting ./boot from $deb failed"
        # The arm64 vmlinuz is a gzip-compressed Image; qemu -kernel wants it raw.
        gzip -dc "$dir.tmp/boot/vmlinuz-$ver" >"$dir.tmp/Image" 2>/dev/null ||
            cp "$dir.tmp/boot/vmlinuz-$ver" "$dir.tmp/Image"
        dpkg-deb -f "$deb" Package Version >"$dir.tmp/package"
        rm -rf "$dir" && mv "$dir.tmp" "$dir"
        rm -f "$deb" # 60-90 MB; the Image is what is kept
        log "kernel $ver ready"
    fi
    echo "$dir/Image" >"$last"
    echo "$dir/Image"
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
    # A dynamic program and what it needs to run: the loader route of the exec tests
    # (a denied dynamic executable run as an argument of ld.so). Prints a directory
    # holding lib/ld-linux-aarch64.so.1, lib/aarch64-linux-gnu/libc.so.6 and bin/echo.
    out=$cache/glibc
    [ -s "$out/bin/echo" ] && { echo "$out"; exit 0; }
    apt_ready
    rm -rf "$out.tmp" && mkdir -p "$out.tmp/x"
    for p in libc6 coreutils; do
        deb=$(download "$p" "$cache/debs")
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$out.tmp/x" || die "extracting $deb failed"
    done
    mkdir -p "$out.tmp/lib/aarch64-linux-gnu" "$out.tmp/bin"
    x=$out.tmp/x
    # bookworm ships the loader under /usr/lib with compatibility links.
    cp -L "$(find "$x" -name ld-linux-aarch64.so.1 -type f | head -n 1)" "$out.tmp/lib/ld-linux-aarch64.so.1"
    cp -L "$(find "$x" -name libc.so.6 | head -n 1)" "$out.tmp/lib/aarch64-linux-gnu/libc.so.6"
    cp -L "$x/bin/echo" "$out.tmp/bin/echo"
    rm -rf "$x" "$out" && mv "$out.tmp" "$out"
    echo "$out"
    ;;
*) die "usage: $0 kernel 6.1|6.12|5.10 | busybox | glibc" ;;
esac
