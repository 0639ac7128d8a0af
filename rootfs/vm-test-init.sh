#!/bin/sh
# `make vm-test` (init systems): boot images whose init system starts and stops
# enforce through the scripts shipped in init/, exactly as shipped, and run
# rootfs/guest/init-system.sh in between.
#
#   rootfs/vm-test-init.sh ENFORCE_BINARY PROBE_BINARY
#
# Boots Debian's x86_64 6.1 kernel with lsm=...,bpf and rdinit=/sbin/init (BusyBox
# init reads /etc/inittab) four times:
#   init-sysv       Buildroot-style rcS/rcK + init/S05enforce as /etc/init.d/S05enforce,
#                   with BusyBox's start-stop-daemon
#   init-sysv-dpkg  the same as on Debian with sysvinit: dpkg's start-stop-daemon
#                   and dash as /bin/sh (BusyBox's sh would run its own
#                   start-stop-daemon applet whatever PATH says); both from Debian's
#                   packages, extracted into the cache, with the glibc libraries
#                   they need, copied from this machine
#   init-respawn    the ::respawn: line of init/inittab
#   init-openrc     OpenRC from Debian's openrc package (with its glibc libraries)
#                   + init/enforce.openrc and init/enforce.confd as
#                   /etc/init.d/enforce and /etc/conf.d/enforce
# Stand-ins for the services around enforce record what ran before the agent
# attached: Buildroot's S01syslogd, S40network, S50dropbear (sysv); localmount,
# syslogd, dhcpcd (provides net) in the boot runlevel and sshd in default
# (OpenRC). rootfs/guest/init-system.sh checks that order and `checkconfig`, and
# drives each script through ENFORCE_VM_CYCLES (30) start/reload/restart/stop cycles. Each boot passes only on the guest's PASS marker.
# ENFORCE_VM_INIT="sysv-dpkg openrc" boots a subset; ENFORCE_VM_INIT_SCRIPTS=DIR
# takes S05enforce, enforce.openrc, enforce.confd and inittab from DIR instead of
# init/ (e.g. an older version, to see what the test catches).
set -eu
[ $# -eq 2 ] || { echo "usage: $0 ENFORCE_BINARY PROBE_BINARY" >&2; exit 2; }
bin=$1 probe=$2
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
out=${ENFORCE_VM_WORK:-target/vm}
cache=${ENFORCE_VM_CACHE:-$HOME/.cache/enforce-vm}
fix=$here/guest/init-system
scripts=${ENFORCE_VM_INIT_SCRIPTS:-$top/init}
cycles=${ENFORCE_VM_CYCLES:-30}
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
# dpkg's start-stop-daemon and dash, from Debian's dpkg and dash packages,
# extracted (not installed).
dpkg=$cache/dpkg/root
if [ ! -x "$dpkg/sbin/start-stop-daemon" ] || [ ! -x "$dpkg/bin/dash" ]; then
    mkdir -p "$cache/dpkg/debs"
    chmod 0777 "$cache/dpkg/debs"
    (cd "$cache/dpkg/debs" && apt-get download -q -o APT::Sandbox::User=root dpkg dash >&2) ||
        die "apt-get download dpkg dash failed"
    rm -rf "$dpkg.tmp" && mkdir -p "$dpkg.tmp"
    for deb in "$cache"/dpkg/debs/dpkg_*.deb "$cache"/dpkg/debs/dash_*.deb; do dpkg-deb -x "$deb" "$dpkg.tmp"; done
    [ -x "$dpkg.tmp/sbin/start-stop-daemon" ] || die "the dpkg package has no /sbin/start-stop-daemon"
    [ -x "$dpkg.tmp/bin/dash" ] || die "the dash package has no /bin/dash"
    rm -rf "$dpkg" && mv "$dpkg.tmp" "$dpkg"
fi

# lib_args BINARY...: HOST=GUEST pairs for the shared libraries the binaries need,
# from this (Debian 12) machine; those inside $openrc come with its tree.
lib_args() {
    _libs=$(for b in "$@"; do
        [ -f "$b" ] && LD_LIBRARY_PATH=$openrc/lib/x86_64-linux-gnu ldd "$b" 2>/dev/null
    done | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\/lib64\// { print $1 }' | sort -u)
    [ -n "$_libs" ] || die "ldd found no libraries for $*"
    for l in $_libs; do
        case $l in
        "$openrc"/*) ;;
        *) printf ' %s=%s' "$(readlink -f "$l")" "$l" ;;
        esac
    done
}
lib_args=$(lib_args "$openrc"/sbin/* "$openrc"/bin/* "$openrc"/lib/rc/bin/* "$openrc"/lib/rc/sbin/*)
ssd_lib_args=$(lib_args "$dpkg/sbin/start-stop-daemon" "$dpkg/bin/dash")

# The scripts as installed: executable (init/ keeps them 0644, as Buildroot does;
# every installer uses install -m 0755).
inst=$(mktemp -d)
trap 'rm -rf "$inst"' EXIT
for f in S05enforce enforce.openrc enforce.confd inittab; do
    [ -f "$scripts/$f" ] || die "$scripts/$f does not exist"
    cp "$scripts/$f" "$inst/$f"
done
chmod 0755 "$inst/S05enforce" "$inst/enforce.openrc"

common="$bin=/usr/sbin/enforce $probe=/bin/probe $fix/sysinit.sh=/etc/sysinit.sh
    $fix/mark-boot=/sbin/mark-boot
    $here/guest/init-system.sh=/test/init-system.sh $here/guest/init-system.sh=/test/run.sh"

# init-sysv, init-sysv-dpkg
sysv="$common $fix/inittab.sysv=/etc/inittab $fix/rcS=/etc/init.d/rcS $fix/rcK=/etc/init.d/rcK
    $fix/S01syslogd=/etc/init.d/S01syslogd $inst/S05enforce=/etc/init.d/S05enforce
    $fix/S40network=/etc/init.d/S40network $fix/S40network=/etc/init.d/S50dropbear
    $fix/enforce.conf=/etc/enforce.conf"
"$here/mkinitramfs.sh" "$out/init-sysv.cpio.gz" $sysv
"$here/mkinitramfs.sh" "$out/init-sysv-dpkg.cpio.gz" $sysv $ssd_lib_args \
    "$dpkg/sbin/start-stop-daemon=/sbin/start-stop-daemon" "$dpkg/bin/dash=/bin/dash" "$dpkg/bin/dash=/bin/sh"

# init-respawn: the shipped inittab line, appended as is.
tab=$inst/inittab.respawn
cat "$fix/inittab.respawn" >"$tab"
grep '^::respawn:' "$inst/inittab" >>"$tab" || die "$scripts/inittab has no ::respawn: line"
"$here/mkinitramfs.sh" "$out/init-respawn.cpio.gz" $common "$tab=/etc/inittab" \
    "$fix/enforce.conf=/etc/enforce.conf"

# init-openrc
orc_args=
for f in "$openrc"/sbin/* "$openrc"/bin/*; do orc_args="$orc_args $f=${f#"$openrc"}"; done
"$here/mkinitramfs.sh" "$out/init-openrc.cpio.gz" $common $orc_args $lib_args \
    "$openrc/lib/rc=/lib/rc" "$openrc/lib/x86_64-linux-gnu/librc.so.1=/lib/x86_64-linux-gnu/librc.so.1" \
    "$openrc/lib/x86_64-linux-gnu/libeinfo.so.1=/lib/x86_64-linux-gnu/libeinfo.so.1" \
    "$openrc/etc/rc.conf=/etc/rc.conf" "$fix/inittab.openrc=/etc/inittab" \
    "$fix/syslogd.openrc=/etc/init.d/syslogd" "$inst/enforce.openrc=/etc/init.d/enforce" \
    "$fix/localmount.openrc=/etc/init.d/localmount" "$fix/dhcpcd.openrc=/etc/init.d/dhcpcd" \
    "$fix/sshd.openrc=/etc/init.d/sshd" \
    "$inst/enforce.confd=/etc/conf.d/enforce" "$fix/enforce.conf=/etc/enforce.conf" \
    /dev/null=/etc/insserv.conf


# The cycles take minutes under TCG (OpenRC about 4 s a cycle, more on a busy
# machine): allow 900 s a boot unless ENFORCE_VM_TIMEOUT says otherwise.
ENFORCE_VM_TIMEOUT=${ENFORCE_VM_TIMEOUT:-900}
# Single-threaded TCG, as for the reliability boots (vm-test.sh says why): each cycle
# attaches and detaches LSM programs while the scripts exec in a loop, and under
# multi-threaded TCG init-sysv-dpkg once hung that way (rcu stalls, a vCPU spinning
# in the int3 of the kernel's text patching at bpf_lsm_bprm_check_security) until the
# timeout.
ENFORCE_VM_ACCEL=${ENFORCE_VM_ACCEL:-tcg,thread=single}
export ENFORCE_VM_TIMEOUT ENFORCE_VM_ACCEL
. "$here/boot-all.sh"
for name in ${ENFORCE_VM_INIT:-sysv sysv-dpkg respawn openrc}; do
    case $name in
    sysv) flavour="enforce_init=sysv enforce_ssd=busybox" ;;
    sysv-dpkg) flavour="enforce_init=sysv enforce_ssd=dpkg" ;;
    respawn | openrc) flavour="enforce_init=$name" ;;
    *) die "unknown ENFORCE_VM_INIT entry '$name'" ;;
    esac
    echo "init-$name $out/init-$name.cpio.gz - lsm=lockdown,capability,bpf rdinit=/sbin/init $flavour enforce_cycles=$cycles"
done | boot_all vm-test-init x86_64
