#!/bin/sh
# Fetch Debian bookworm's x86_64 6.1 kernel (or another) for the VM tests and print the path
# of an ELF vmlinux (PVH-bootable by `qemu-system-x86_64 -kernel`).
#
#   rootfs/fetch-kernel.sh            -> prints e.g. ~/.cache/enforce-vm/6.1.0-56-amd64/vmlinux
#   rootfs/fetch-kernel.sh 5.10       -> the newest linux-image-5.10.0-NN-amd64 of Debian
#                                        bullseye, through a private apt index
#                                        (rootfs/apt-private.sh) under the cache
#   rootfs/fetch-kernel.sh 6.12       -> the newest linux-image-6.12.NN+deb13-amd64 of
#                                        Debian trixie, the same way
#
# Idempotent: on a cache hit it prints the path and nothing else.
# Only ./boot of the .deb is extracted; nothing touches the host's /boot.
#
# Environment:
#   ENFORCE_VM_CACHE           cache dir (default $HOME/.cache/enforce-vm)
#   ENFORCE_VM_KERNEL_PACKAGE  concrete package (default: what linux-image-amd64 depends on),
#                              e.g. linux-image-6.12.100+deb12-amd64 (zstd-compressed)
#   ENFORCE_DEBIAN_MIRROR      the archive of the private index (default http://deb.debian.org/debian)
#
# Layout of the cache:
#   debs/linux-image-<ver>_*.deb     the downloaded package (~70 MB)
#   <ver>/boot/{vmlinuz,config}-<ver>
#   <ver>/vmlinux                    ELF extracted from the bzImage
#   <ver>/version                    the kernel version string (uname -r)
#   <ver>/package                    Debian package name and version
#   kernel-version                   the version the last run resolved to (6.1)
#   bullseye-amd64/apt/              the private index of `5.10`
#   trixie-amd64/apt/                the private index of `6.12`
set -eu

cache=${ENFORCE_VM_CACHE:-$HOME/.cache/enforce-vm}
mkdir -p "$cache/debs"

log() { echo "fetch-kernel: $*" >&2; }
die() { log "error: $*"; exit 1; }

resolve_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9][0-9]*-amd64\)$/\1/p' | head -n1
}

# fetch PACKAGE DIR: the .deb of PACKAGE into DIR (cached) from the system's sources.
fetch() {
    deb=$(ls "$2/${1}_"*.deb 2>/dev/null | tail -n1 || true)
    [ -z "$deb" ] || { echo "$deb"; return 0; }
    log "downloading $1"
    tmp=$(mktemp -d "$2/.dl.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    # As root, apt drops to _apt for downloads; let it write into the temp dir.
    chmod 0777 "$tmp"
    (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$1" >&2) || die "apt-get download $1 failed"
    for f in "$tmp"/*.deb; do
        [ -s "$f" ] || die "apt-get download produced no .deb"
        mv "$f" "$2/"
        deb=$2/${f##*/}
    done
    rm -rf "$tmp"
    trap - EXIT
    echo "$deb"
}

# from_suite SUITE PATTERN WHAT: the newest package of the Debian suite SUITE (in no
# system source here: a private index of its own) whose name matches PATTERN; a
# kernel of it already extracted is printed at once, and the script ends.
from_suite() {
    mirror=${ENFORCE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
    apt_dir=$cache/$1-amd64/apt apt_arch=amd64
    apt_sources="deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $1 main"
    . "$(cd "$(dirname "$0")" && pwd)/apt-private.sh"
    fetch() { download "$@"; }
    record=$1-amd64/kernel-version
    if [ -z "$pkg" ] && [ -s "$cache/$record" ] && [ -s "$cache/$(cat "$cache/$record")/vmlinux" ]; then
        echo "$cache/$(cat "$cache/$record")/vmlinux"
        exit 0
    fi
    if [ -z "$pkg" ]; then
        apt_ready
        pkg=$(newest "$2" '')
        [ -n "$pkg" ] || die "no $3 in the private $1 index"
    fi
}

pkg=${ENFORCE_VM_KERNEL_PACKAGE:-} record=kernel-version
case ${1:-6.1} in
6.1) ;;
5.10) from_suite bullseye 'linux-image-5\.10\.0-[0-9]+-amd64' linux-image-5.10.0-NN-amd64 ;;
6.12) from_suite trixie 'linux-image-6\.12\.[0-9]+\+deb13(\.[0-9]+)?-amd64' linux-image-6.12.NN+deb13-amd64 ;;
*) die "usage: $0 [6.1|5.10|6.12]" ;;
esac
if [ -z "$pkg" ]; then
    pkg=$(resolve_package)
    if [ -z "$pkg" ]; then
        # Empty or stale package lists: refresh once.
        log "resolving linux-image-amd64 failed; running apt-get update"
        apt-get update -qq >&2 || log "apt-get update failed"
        pkg=$(resolve_package)
    fi
    if [ -z "$pkg" ]; then
        # Offline: fall back to whatever we fetched last time.
        if [ -s "$cache/kernel-version" ] && [ -s "$cache/$(cat "$cache/kernel-version")/vmlinux" ]; then
            ver=$(cat "$cache/kernel-version")
            log "cannot resolve linux-image-amd64; using cached $ver"
            echo "$cache/$ver/vmlinux"
            exit 0
        fi
        die "cannot resolve linux-image-amd64 to linux-image-6.1.0-NN-amd64"
    fi
fi
ver=${pkg#linux-image-}
dir=$cache/$ver
vmlinux=$dir/vmlinux

if [ -s "$vmlinux" ] && [ -s "$dir/version" ]; then
    echo "$ver" >"$cache/$record"
    echo "$vmlinux"
    exit 0
fi

# 1. Download the .deb (cached).
deb=$(fetch "$pkg" "$cache/debs")

# 2. Extract only ./boot.
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir.tmp" ./boot ||
    die "extracting ./boot from $deb failed"
bz=$dir.tmp/boot/vmlinuz-$ver
[ -s "$bz" ] || die "$deb has no boot/vmlinuz-$ver"

# 3. bzImage -> ELF vmlinux: decompress the xz payload (5.10, 6.1) or the zstd one (6.12)
#    (first offset whose stream decompresses to an ELF wins). zstd goes on past its
#    frame into what follows it and fails there: the frame's output is whole, so its
#    status is not what says; the ELF header and the section headers' end do.
is_elf() {
    [ "$(head -c4 "$1" | od -An -tx1 | tr -d ' \n')" = "7f454c46" ] || return 1
    # e_shoff + e_shnum * e_shentsize: the end of the section headers, the file's end.
    python3 -c 'import struct,sys,os
d=open(sys.argv[1],"rb").read(64); off,=struct.unpack_from("<Q",d,40); ent,n=struct.unpack_from("<HH",d,58)
sys.exit(0 if off+ent*n<=os.path.getsize(sys.argv[1]) else 1)' "$1"
}
found= how=
for byte in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bz" | cut -d: -f1); do
    if tail -c "+$((byte + 1))" "$bz" | xz -dc --single-stream >"$dir.tmp/vmlinux" 2>/dev/null && is_elf "$dir.tmp/vmlinux"; then
        found=$byte how=xz
        break
    fi
done
if [ -z "$found" ] && command -v zstd >/dev/null; then
    for byte in $(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$bz" | cut -d: -f1); do
        tail -c "+$((byte + 1))" "$bz" | zstd -dc >"$dir.tmp/vmlinux" 2>/dev/null || true
        if is_elf "$dir.tmp/vmlinux"; then
            found=$byte how=zstd
            break
        fi
    done
fi
[ -n "$found" ] || die "no xz- or zstd-compressed ELF payload found in $bz"
echo "$ver" >"$dir.tmp/version"
dpkg-deb -f "$deb" Package Version >"$dir.tmp/package"

rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "$ver" >"$cache/$record"
log "kernel $ver ready ($how payload at byte $found)"
echo "$vmlinux"
