#!/bin/sh
# Fetch what the arm64 VM boots need, from Debian's arm64 archive, without touching
# the system's dpkg or apt state: a private APT setup (its own lists, cache and
# sources, APT::Architecture=arm64) under the cache.
#
#   rootfs/fetch-arm64.sh kernel 6.1    -> prints the path of an arm64 Image (bookworm)
#   rootfs/fetch-arm64.sh kernel 6.12   -> the same from bookworm-backports
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

apt_dir=$cache/apt
# apt_private apt-get|apt-cache ARGS...: the tool, on the private arm64 index only.
apt_private() {
    tool=$1
    shift
    "$tool" -q -o APT::Architecture=arm64 -o APT::Architectures::=arm64 \
        -o Dir::State="$apt_dir/state" -o Dir::State::Lists="$apt_dir/lists" \
        -o Dir::State::status=/dev/null -o Dir::Cache="$apt_dir/cache" \
        -o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null \
        -o Dir::Etc::Parts="$apt_dir/no-parts" -o APT::Sandbox::User=root "$@"
}
apt_ready() {
    [ -s "$apt_dir/updated" ] && [ "${1:-}" != --refresh ] && return 0
    # no-parts: none of the system's apt.conf.d hooks (packagekit's failed updates
    # here now and then; appstream adds metadata nobody here reads).
    mkdir -p "$apt_dir/state" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/no-parts"
    cat >"$apt_dir/sources.list" <<SOURCES
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm-updates main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm-backports main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $security bookworm-security main
SOURCES
    apt_private apt-get update >&2 || apt_private apt-get update >&2 ||
        die "apt-get update of the private arm64 index failed (twice)"
    date >"$apt_dir/updated"
}
# download PACKAGE DIR: the .deb of PACKAGE into DIR (cached); prints its path.
download() {
    deb=$(ls "$2/$1"_*.deb 2>/dev/null | tail -n 1 || true)
    if [ -z "$deb" ]; then
        mkdir -p "$2"
        tmp=$(mktemp -d "$2/.dl.XXXXXX")
        # A kept index can name a .deb the mirror has since dropped: refresh once.
        (cd "$tmp" && apt_private apt-get download "$1" >&2) ||
            { apt_ready --refresh && (cd "$tmp" && apt_private apt-get download "$1" >&2); } ||
            { rm -rf "$tmp"; die "apt-get download $1 failed"; }
        mv "$tmp"/*.deb "$2/"
        rmdir "$tmp"
        deb=$(ls "$2/$1"_*.deb | tail -n 1)
    fi
    echo "$deb"
}
# newest PATTERN SUITE: the newest kernel package whose name matches PATTERN (a grep -E
# regex) and that SUITE (e.g. bookworm-backports) carries; any suite when SUITE is "".
newest() {
    apt_private apt-cache pkgnames linux-image- | grep -E "^$1\$" | sort -rV | while read -r name; do
        if [ -z "$2" ] || apt_private apt-cache madison "$name" | grep -q " $2/"; then
            echo "$name"
            break
        fi
    done
}

case ${1:-} in
kernel)
    case ${2:-} in
    6.1) pattern='linux-image-6\.1\.0-[0-9]+-arm64' suite= ;;
    6.12) pattern='linux-image-6\.12\.[0-9]+\+deb12(\.[0-9]+)?-arm64' suite=bookworm-backports ;;
    *) die "usage: $0 kernel 6.1|6.12" ;;
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
*) die "usage: $0 kernel 6.1|6.12 | busybox | glibc" ;;
esac
