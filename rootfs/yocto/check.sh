#!/bin/sh
# `make check-yocto POKY=/path/to/poky META_CLANG=/path/to/meta-clang`: check the
# meta-enforce layer with BitBake and yocto-check-layer. Not part of `make test`:
# it needs poky and meta-clang trees of the release the layer claims (walnascar),
# which CI cannot fetch. Nothing is fetched or built: BB_NO_NETWORK, parse and
# task graphs only.
#
#   rootfs/yocto/check.sh POKY META_CLANG [WORKDIR]
#
# 1. enforce-crates.inc is exactly what OE-core's cargo-update-recipe-crates class
#    (from POKY) writes for this tree (rootfs/yocto/update-crates.sh).
# 2. A build directory (WORKDIR, default ${TMPDIR:-/tmp}/enforce-yocto-check) with
#    meta-clang and meta-enforce, the recipe pointed at this tree by externalsrc:
#    bitbake -p; bitbake -g enforce; what bitbake -e says of the recipe, and of
#    linux-yocto with and without ENFORCE_KERNEL_CONFIG = "1".
# 3. yocto-check-layer --no-auto-dependency --dependency META_CLANG on the layer
#    (meta-clang itself is not tested), in a fresh build directory. It takes
#    about 40 minutes here: most tests parse everything and compute world signatures.
# BitBake refuses to run as root: as root, the BitBake steps run as `nobody`
# (WORKDIR is handed to it). BitBake needs an en_US.UTF-8 locale: when the system
# has none, one is made with localedef in WORKDIR/locale (LOCPATH, passed through
# to BitBake). poky's host tools (chrpath and diffstat among them) must be on PATH.
set -eu
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	echo "usage: $0 POKY META_CLANG [WORKDIR]" >&2
	exit 2
fi
poky=$(cd "$1" && pwd)
clang=$(cd "$2" && pwd)
work=${3:-${TMPDIR:-/tmp}/enforce-yocto-check}
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$(dirname "$here")")
layer=$here/meta-enforce
[ -f "$poky/oe-init-build-env" ] || { echo "$poky has no oe-init-build-env" >&2; exit 1; }
[ -f "$clang/conf/layer.conf" ] || { echo "$clang is not a layer" >&2; exit 1; }
failed=
fail() {
	echo "FAIL: $*"
	failed="$failed
  $*"
}
step() { printf '\n== %s\n' "$*"; }
commit() { git -C "$1" rev-parse HEAD 2>/dev/null || cat "$1/.commit" 2>/dev/null || echo "(not a git checkout)"; }
mkdir -p "$work"
if [ -z "${LOCPATH:-}" ] && ! locale -a 2>/dev/null | grep -qix 'en_US.utf-\{0,1\}8'; then
	mkdir -p "$work/locale"
	localedef -i en_US -f UTF-8 "$work/locale/en_US.UTF-8"
	LOCPATH=$work/locale
fi

# bb SCRIPT: run SCRIPT with sh in the poky build environment of $work/$build,
# as nobody when run as root.
bb() {
	cat >"$work/run.sh" <<EOF
set -e
export HOME=$work/home PATH="$PATH" BB_ENV_PASSTHROUGH_ADDITIONS="LOCPATH"
# yocto-check-layer asks git for the layer's repository (test_security looks for
# SECURITY* at its top too); as nobody, git refuses a repository owned by root.
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0="*"
mkdir -p "\$HOME"
cd "$poky"
. ./oe-init-build-env "$work/$build" >/dev/null
$1
EOF
	# The locale is in the environment bash starts with (LOCPATH must be there
	# before LC_ALL takes effect).
	set -- env LOCPATH="${LOCPATH:-}" LANG=en_US.UTF-8 LC_ALL=en_US.UTF-8 bash "$work/run.sh"
	if [ "$(id -u)" = 0 ]; then
		chown -R nobody "$work"
		runuser -u nobody -- "$@"
	else
		"$@"
	fi
}

step "versions"
echo "poky:       $(commit "$poky") ($(sed -n 's/^DISTRO_VERSION = "\(.*\)"/\1/p' "$poky/meta-poky/conf/distro/poky.conf"))"
echo "meta-clang: $(commit "$clang")"
echo "enforce:    $(git -C "$top" rev-parse HEAD) ($(git -C "$top" status --porcelain | wc -l) uncommitted changes)"
echo "rust:       $(find "$poky/meta/recipes-devtools/rust" -name 'rust_*.bb' -exec basename {} \;)"
echo "clang:      meta-clang LLVMVERSION $(sed -n 's/^LLVMVERSION = "\(.*\)"/\1/p' "$clang/conf/layer.conf")"
python3 --version

step "1. the crate list is cargo-update-recipe-crates' output"
"$here/update-crates.sh" "$poky" "$work/crates.inc" 2>/dev/null
if cmp -s "$work/crates.inc" "$layer/recipes-security/enforce/enforce-crates.inc"; then
	echo "enforce-crates.inc: identical ($(grep -c 'crate://' "$work/crates.inc") crate:// lines)"
else
	diff -u "$layer/recipes-security/enforce/enforce-crates.inc" "$work/crates.inc" || true
	fail "enforce-crates.inc differs from what the class writes (rootfs/yocto/update-crates.sh $poky)"
fi

step "2. bitbake -p, bitbake -g enforce, bitbake -e"
build=build
rm -rf "${work:?}/$build" "${work:?}/home"
bb "bitbake-layers add-layer '$clang' '$layer' >/dev/null
cat >>conf/local.conf <<'CONF'

# rootfs/yocto/check.sh: no network; parse and task graphs only.
CONNECTIVITY_CHECK_URIS = \"\"
BB_NO_NETWORK = \"1\"
BB_NUMBER_THREADS = \"2\"
BB_NUMBER_PARSE_THREADS = \"2\"
INHERIT += \"externalsrc\"
EXTERNALSRC:pn-enforce = \"$top\"
CONF
bitbake-layers show-layers
bitbake -p 2>&1 | grep -v '^Parsing recipes\|^Loading cache\|^Loaded\|^$'
bitbake -g enforce 2>&1 | grep -v '^Parsing recipes\|^Loading cache\|^Loaded\|^$'
bitbake -e enforce >enforce.env
bitbake -e linux-yocto >linux-yocto.env
echo 'ENFORCE_KERNEL_CONFIG = \"1\"' >>conf/local.conf
bitbake -e linux-yocto >linux-yocto-kconfig.env" || fail "bitbake in $work/$build"
b=$work/$build
if [ -s "$b/task-depends.dot" ]; then
	for t in enforce.do_compile enforce.do_install clang-native.do_populate_sysroot cargo-native.do_populate_sysroot \
		rust-native.do_populate_sysroot; do
		if grep -q "\"$t\"" "$b/task-depends.dot"; then echo "task graph has $t"; else fail "task graph lacks $t"; fi
	done
	echo "enforce.do_compile depends on: $(sed -n 's/^"enforce.do_compile" -> "\([^"]*\)".*/\1/p' "$b/task-depends.dot" | LC_ALL=C sort | tr '\n' ' ')"
else
	fail "bitbake -g enforce wrote no task-depends.dot"
fi
getvar() { sed -n "s/^$1=\"\\(.*\\)\"\$/\\1/p" "$2"; }
echo "enforce: PV=$(getvar PV "$b/enforce.env") RUSTVERSION=$(getvar RUSTVERSION "$b/enforce.env")" \
	"crates in SRC_URI: $(getvar SRC_URI "$b/enforce.env" | tr ' ' '\n' | grep -c '^crate://')" \
	"EXTERNALSRC=$(getvar EXTERNALSRC "$b/enforce.env")"
if getvar SRC_URI "$b/linux-yocto.env" | grep -q 'enforce\.cfg'; then
	fail "linux-yocto has enforce.cfg without ENFORCE_KERNEL_CONFIG"
else
	echo "linux-yocto without ENFORCE_KERNEL_CONFIG: no enforce.cfg in SRC_URI"
fi
if getvar SRC_URI "$b/linux-yocto-kconfig.env" | tr ' ' '\n' | grep -q '^file://enforce\.cfg$'; then
	echo "linux-yocto with ENFORCE_KERNEL_CONFIG = \"1\": file://enforce.cfg in SRC_URI"
else
	fail "ENFORCE_KERNEL_CONFIG = \"1\" does not add file://enforce.cfg to linux-yocto"
fi

step "3. yocto-check-layer --no-auto-dependency --dependency meta-clang meta-enforce"
build=check-layer
rm -rf "${work:?}/$build"
if bb "cat >>conf/local.conf <<'CONF'

CONNECTIVITY_CHECK_URIS = \"\"
BB_NO_NETWORK = \"1\"
BB_NUMBER_THREADS = \"2\"
BB_NUMBER_PARSE_THREADS = \"2\"
CONF
yocto-check-layer --no-auto-dependency --dependency '$clang' -- '$layer' 2>&1 |
	sed -e 's/^[0-9-]* [0-9:,]* - yocto-check-layer - //' >'$work/yocto-check-layer.log'
"; then
	# Each test and its result (the log puts them on two lines), then the summary.
	awk '/^INFO: (test_|setUpClass)/ { t = $2 } /^INFO:  \.\.\. / { sub(/^INFO:  \.\.\. /, ""); print t ": " $0 }
		/^INFO: (Ran |OK|FAILED|UNEXPECTED|ERROR|FAIL)/ || /^INFO: [A-Za-z0-9_.-]+ \.\.\. (PASS|FAIL)/ || /^(ERROR|WARNING):/' \
		"$work/yocto-check-layer.log"
	grep -q 'INFO: meta-enforce \.\.\. PASS' "$work/yocto-check-layer.log" || fail "yocto-check-layer"
else
	cat "$work/yocto-check-layer.log"
	fail "yocto-check-layer did not run"
fi

step "result"
if [ -n "$failed" ]; then
	echo "check-yocto: FAILED:$failed"
	exit 1
fi
echo "check-yocto: every check passed"
