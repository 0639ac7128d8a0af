#!/bin/sh
# `make deps`: install the Debian packages the build and the tests need, and only those.
#
#   rootfs/apt-deps.sh PACKAGE...
#
# Packages already installed are left alone. The rest are installed without their
# recommendations (qemu's alone would pull in a desktop's worth). apt's plan is shown
# before anything changes: if it must remove a package to resolve a conflict, the
# removal is named first. Seen on fresh Debian 12 machines: qemu-utils from
# bookworm-backports Breaks bookworm's qemu-system-common; apt removes qemu-utils,
# which nothing here uses. If apt cannot resolve at all, its reasons are printed with
# what to do, and nothing is changed.
set -eu
missing=
for p in "$@"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
[ -n "$missing" ] || exit 0
echo "make deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
if ! plan=$(apt-get install -s --no-install-recommends $missing 2>&1); then
    echo "$plan" | grep -E 'Depends:|Breaks:|Conflicts:|E: ' >&2 || echo "$plan" >&2
    cat >&2 <<EOF
make deps: apt cannot install:$missing
  The lines above say why. When they name packages that conflict, usually one of them was installed
  from another suite (bookworm-backports, testing) than the one apt offers now: remove
  it (apt-get remove NAME), or install the packages above from that same suite
  (apt-get install -t SUITE ...), then run make deps again.
EOF
    exit 1
fi
removals=$(echo "$plan" | sed -n 's/^Remv \([^ ]*\) \[\([^]]*\)\].*/\1 (\2)/p')
if [ -n "$removals" ]; then
    echo "make deps: to resolve a conflict apt removes these packages, which the build and the tests do not use:"
    echo "$removals" | sed 's/^/  /'
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
