#!/bin/sh
# `make vm-test` (init systems): boot images whose init system starts and stops
# enforce through the scripts shipped in init/, exactly as shipped, and run
# rootfs/guest/init-system.sh in between.
#
#   rootfs/vm-test-init.sh ENFORCE_BINARY PROBE_BINARY
#
# Boots Debian's x86_64 6.1 kernel with lsm=...,bpf and rdinit=/sbin/init (BusyBox
# init reads /etc/inittab) three times:
#   init-sysv     Buildroot-style rcS/rcK + init/S50enforce as /etc/init.d/S50enforce
#   init-respawn  the ::respawn: line of init/inittab
#   init-openrc   OpenRC from Debian's openrc package (with the glibc libraries it
#                 needs, copied from this machine) + init/enforce.openrc and
#                 init/enforce.confd as /etc/init.d/enforce and /etc/conf.d/enforce
# Each boot passes only on the guest's PASS marker. ENFORCE_VM_INIT="openrc" boots a subset.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 ENFORCE_BINARY PROBE_BINARY" >&2; exit 2; }
bin=$1 probe=$2
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
out=${ENFORCE_VM_WORK:-target/vm}
cache=${ENFORCE_VM_CACHE:-$HOME/.cache/enforce-vm}
fix=$here/guest/init-system
mkdir -p "$out"
die() { echo "vm-test-init: error: $*" >&2; exit 1; }

"$here/fetch-kernel.sh" >/dev/null

# OpenRC: Debian's packages, extracted (not installed) into the cache.
openrc=$cache/openrc/root
if [ ! -x "$openrc/sbin/openrc-run" ]; then
    mkdir -p "$cache/openrc/debs"
    chmod 0777 "$cache/openrc/debs" # apt downloads as _apt
    (cd "$cache/openrc/debs" && apt-get download -q -o APT::Sandbox::User=root openrc libeinfo1 librc1 >&2) ||
        die "apt-get download openrc libeinfo1 librc1 failed"
    rm -rf "$openrc.tmp" && mkdir -p "$openrc.tmp"
    for deb in "$cache"/openrc/debs/*.deb; do dpkg-deb -x "$deb" "$openrc.tmp"; done
    rm -rf "$openrc" && mv "$openrc.tmp" "$openrc"
fi
# The shared libraries OpenRC's binaries need, from this (Debian 12) machine.
libs=$(for b in "$openrc"/sbin/* "$openrc"/bin/* "$openrc"/lib/rc/bin/* "$openrc"/lib/rc/sbin/*; do
    [ -f "$b" ] && LD_LIBRARY_PATH=$openrc/lib/x86_64-linux-gnu ldd "$b" 2>/dev/null
done | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\/lib64\// { print $1 }' | sort -u)
[ -n "$libs" ] || die "ldd found no libraries for OpenRC"
lib_args=
for l in $libs; do
    case $l in
    "$openrc"/*) ;; # copied with the package tree below
    *) lib_args="$lib_args $(readlink -f "$l")=$l" ;;
    esac
done

common="$bin=/usr/sbin/enforce $probe=/bin/probe $fix/sysinit.sh=/etc/sysinit.sh
    $here/guest/init-system.sh=/test/init-system.sh $here/guest/init-system.sh=/test/run.sh"

# init-sysv
"$here/mkinitramfs.sh" "$out/init-sysv.cpio.gz" $common \
    "$fix/inittab.sysv=/etc/inittab" "$fix/rcS=/etc/init.d/rcS" "$fix/rcK=/etc/init.d/rcK" \
    "$fix/S01syslogd=/etc/init.d/S01syslogd" "$top/init/S50enforce=/etc/init.d/S50enforce" \
    "$fix/enforce.conf=/etc/enforce.conf"

# init-respawn: the shipped inittab line, appended as is.
tab=$(mktemp)
trap 'rm -f "$tab"' EXIT
cat "$fix/inittab.respawn" >"$tab"
grep '^::respawn:' "$top/init/inittab" >>"$tab" || die "init/inittab has no ::respawn: line"
"$here/mkinitramfs.sh" "$out/init-respawn.cpio.gz" $common "$tab=/etc/inittab" \
    "$fix/enforce.conf=/etc/enforce.conf"

# init-openrc
orc_args=
for f in "$openrc"/sbin/* "$openrc"/bin/*; do orc_args="$orc_args $f=${f#"$openrc"}"; done
"$here/mkinitramfs.sh" "$out/init-openrc.cpio.gz" $common $orc_args $lib_args \
    "$openrc/lib/rc=/lib/rc" "$openrc/lib/x86_64-linux-gnu/librc.so.1=/lib/x86_64-linux-gnu/librc.so.1" \
    "$openrc/lib/x86_64-linux-gnu/libeinfo.so.1=/lib/x86_64-linux-gnu/libeinfo.so.1" \
    "$openrc/etc/rc.conf=/etc/rc.conf" "$fix/inittab.openrc=/etc/inittab" \
    "$fix/syslogd.openrc=/etc/init.d/syslogd" "$top/init/enforce.openrc=/etc/init.d/enforce" \
    "$top/init/enforce.confd=/etc/conf.d/enforce" "$fix/enforce.conf=/etc/enforce.conf" \
    /dev/null=/etc/insserv.conf


. "$here/boot-all.sh"
for name in ${ENFORCE_VM_INIT:-sysv respawn openrc}; do
    echo "init-$name $out/init-$name.cpio.gz - lsm=lockdown,capability,bpf rdinit=/sbin/init enforce_init=$name"
done | boot_all vm-test-init x86_64
