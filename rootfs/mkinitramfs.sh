#!/bin/sh
# Build a gzipped newc initramfs for the VM tests (no root needed).
#
#   rootfs/mkinitramfs.sh OUT.cpio.gz [HOSTFILE=GUESTPATH ...]
#
# Contents: busybox-static at /bin/busybox with a symlink for every applet
# (busybox --list-full), rootfs/init as /init, a minimal /etc, and every
# HOSTFILE copied to GUESTPATH (mode kept; a directory is copied recursively).
# The guest test must be given as SOMETHING=/test/run.sh.
#
# Environment: BUSYBOX  static busybox to install (default: busybox on PATH); one
#              that cannot run here (arm64) gets its applet list from the busybox
#              on PATH, which must be the same Debian version
set -eu

die() { echo "mkinitramfs: error: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 OUT.cpio.gz [HOSTFILE=GUESTPATH ...]"
out=$1
shift
here=$(cd "$(dirname "$0")" && pwd)

busybox=${BUSYBOX:-$(command -v busybox || true)}
[ -n "$busybox" ] && [ -x "$busybox" ] || die "busybox not found (apt-get install busybox-static)"
if LC_ALL=C readelf -l "$busybox" 2>/dev/null | grep -q 'INTERP'; then
    die "$busybox is dynamically linked (need busybox-static)"
fi

# The image's modes do not depend on the builder's umask: the agent refuses a config
# in a group-writable directory, or a group-writable config.
umask 022
stage=$(mktemp -d "${TMPDIR:-/tmp}/enforce-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM HUP

mkdir -p "$stage/bin" "$stage/sbin" "$stage/usr/bin" "$stage/usr/sbin" \
    "$stage/etc" "$stage/proc" "$stage/sys" "$stage/dev" "$stage/tmp" \
    "$stage/run" "$stage/var/log" "$stage/root" "$stage/test"
cp "$busybox" "$stage/bin/busybox"
chmod 0755 "$stage/bin/busybox"
lister=$busybox
"$lister" --list-full >/dev/null 2>&1 || lister=$(command -v busybox) ||
    die "cannot list $busybox's applets: it does not run here and there is no busybox on PATH"
"$lister" --list-full | while read -r applet; do
    case $applet in
        */*) ;;              # skip root-level entries such as linuxrc
        *) continue ;;
    esac
    [ -e "$stage/$applet" ] || [ -L "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
done
[ -L "$stage/bin/sh" ] || die "busybox has no sh applet"

cp "$here/init" "$stage/init"
chmod 0755 "$stage/init"

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$stage/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$stage/etc/hosts"

for pair in "$@"; do
    case $pair in
        *=/*) ;;
        *) die "bad argument '$pair' (want HOSTFILE=/GUEST/PATH)" ;;
    esac
    src=${pair%%=*}
    dst=${pair#*=}
    [ -e "$src" ] || die "$src does not exist"
    mkdir -p "$stage$(dirname "$dst")"
    rm -rf "$stage$dst"
    cp -RL "$src" "$stage$dst"
done
[ -e "$stage/test/run.sh" ] || echo "mkinitramfs: warning: no /test/run.sh in the image" >&2

mkdir -p "$(dirname "$out")"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
    gzip -n -6 >"$out.tmp"
mv "$out.tmp" "$out"
