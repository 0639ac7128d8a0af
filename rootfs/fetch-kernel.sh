#!/bin/sh
# Fetch Debian bookworm's x86_64 6.1 kernel (or another) for the VM tests and print the path
# of an ELF vmlinux (PVH-bootable by `qemu-system-x86_64 -kernel`).
#
#   rootfs/fetch-kernel.sh            -> prints e.g. ~/.cache/enforce-vm/6.1.0-56-amd64/vmlinux
#
# Idempotent: on a cache hit it prints the path and nothing else.
# Only ./boot of the .deb is extracted; nothing touches the host's /boot.
#
# Environment:
#   ENFORCE_VM_CACHE           cache dir (default $HOME/.cache/enforce-vm)
#   ENFORCE_VM_KERNEL_PACKAGE  concrete package (default: what linux-image-amd64 depends on),
#                              e.g. linux-image-6.12.100+deb12-amd64 (zstd-compressed)
#
# Layout of the cache:
#   debs/linux-image-<ver>_*.deb     the downloaded package (~70 MB)
#   <ver>/boot/{vmlinuz,config}-<ver>
#   <ver>/vmlinux                    ELF extracted from the bzImage
#   <ver>/version                    the kernel version string (uname -r)
#   <ver>/package                    Debian package name and version
#   kernel-version                   the version the last run resolved to
set -eu

cache=${ENFORCE_VM_CACHE:-$HOME/.cache/enforce-vm}
mkdir -p "$cache/debs"

log() { echo "fetch-kernel: $*" >&2; }
die() { log "error: $*"; exit 1; }

resolve_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9][0-9]*-amd64\)$/\1/p' | head -n1
}

pkg=${ENFORCE_VM_KERNEL_PACKAGE:-}
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
    echo "$ver" >"$cache/kernel-version"
    echo "$vmlinux"
    exit 0
fi

# 1. Download the .deb (cached).
deb=$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | tail -n1 || true)
if [ -z "$deb" ]; then
    log "downloading $pkg"
    tmp=$(mktemp -d "$cache/debs/.dl.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    # As root, apt drops to _apt for downloads; let it write into the temp dir.
    chmod 0777 "$tmp"
    (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) || die "apt-get download $pkg failed"
    for f in "$tmp"/*.deb; do
        [ -s "$f" ] || die "apt-get download produced no .deb"
        mv "$f" "$cache/debs/"
        deb=$cache/debs/${f##*/}
    done
    rm -rf "$tmp"
    trap - EXIT
fi

# 2. Extract only ./boot.
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir.tmp" ./boot ||
    die "extracting ./boot from $deb failed"
bz=$dir.tmp/boot/vmlinuz-$ver
[ -s "$bz" ] || die "$deb has no boot/vmlinuz-$ver"

# 3. bzImage -> ELF vmlinux: decompress the xz payload (6.1) or the zstd one (6.12)
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
echo "$ver" >"$cache/kernel-version"
log "kernel $ver ready ($how payload at byte $found)"
echo "$vmlinux"
