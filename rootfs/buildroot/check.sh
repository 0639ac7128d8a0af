#!/bin/sh
# `make check-buildroot BUILDROOT=/path/to/buildroot`: check this external tree
# with Buildroot's own tools. Not part of `make test`: it needs a Buildroot tree
# (CI cannot fetch one), shellcheck and python3-magic/python3-flake8 for
# check-package, and a built x86_64 agent tree (target/, for DEP_BPF_INCLUDE).
# No Buildroot package is built; only step 6 uses the network (crates.io).
#
#   rootfs/buildroot/check.sh BUILDROOT [WORKDIR]
#
# 1. utils/check-package on every file of the external tree and on init/S05enforce
#    (shellcheck, which check-package runs on S05enforce, also on enforce.openrc).
# 2. Kconfig: defconfig loads with BR2_PACKAGE_ENFORCE=y, and whether the option
#    survives, for glibc, musl with and without C++, uClibc, aarch64, OpenRC.
# 3. The package as Buildroot sees it: printvars ENFORCE_% and enforce-show-info.
# 4. The BPF compile through Buildroot's toolchain wrapper: toolchain-wrapper.c
#    from BUILDROOT built exactly as host-clang builds it, with the arguments the
#    default defconfig gives it (-fstack-protector-strong, PIE, RELRO), in front
#    of this machine's clang; then `cargo build` with BPF_CLANG pointing at it.
# 5. The package's install commands run against a scratch TARGET_DIR.
# 6. The download step `make enforce-source` runs (git clone of this repository's
#    HEAD, cargo vendor into the tarball: needs crates.io), then an offline build
#    of that tarball in a network namespace without network.
# WORKDIR (default ${TMPDIR:-/tmp}/enforce-buildroot-check) holds the output dirs.
set -eu
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 BUILDROOT [WORKDIR]" >&2
	exit 2
fi
br=$(cd "$1" && pwd)
work=${2:-${TMPDIR:-/tmp}/enforce-buildroot-check}
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$(dirname "$here")")
[ -x "$br/utils/check-package" ] || { echo "$br is not a Buildroot tree" >&2; exit 1; }
py=/usr/bin/python3 # check-package wants Debian's python3-magic and python3-flake8
failed=
fail() { echo "FAIL: $*"; failed="$failed
  $*"; }
step() { printf '\n== %s\n' "$*"; }
mkdir -p "$work"

step "versions"
echo "buildroot: $(git -C "$br" describe --always --dirty 2>/dev/null || echo '(not a git checkout)')" \
	"$(git -C "$br" rev-parse HEAD 2>/dev/null || cat "$br/.commit" 2>/dev/null || true)"
echo "enforce:   $(git -C "$top" rev-parse HEAD) ($(git -C "$top" status --porcelain | wc -l) uncommitted changes)"
make --version | head -n 1
clang --version | head -n 1
shellcheck --version | sed -n 2p
$py --version

step "1. check-package"
(cd "$here" && find . -type f | LC_ALL=C sort |
	xargs $py "$br/utils/check-package" -b) || fail "check-package on the external tree"
(cd "$top" && $py "$br/utils/check-package" -b init/S05enforce) || fail "check-package on init/S05enforce"
(cd "$top" && shellcheck init/enforce.openrc && echo "shellcheck init/enforce.openrc: clean") ||
	fail "shellcheck init/enforce.openrc"

# load NAME BASE_DEFCONFIG [LINE...]: a defconfig with the package enabled.
load() {
	name=$1 base=$2
	shift 2
	o=$work/$name
	rm -rf "$o" && mkdir -p "$o"
	{ cat "$br/configs/$base"; echo "BR2_PACKAGE_ENFORCE=y"; printf '%s\n' "$@"; } >"$o/defconfig.in"
	make -s -C "$br" O="$o" BR2_EXTERNAL="$here" BR2_DEFCONFIG="$o/defconfig.in" defconfig >"$o/defconfig.log" 2>&1 ||
		{ cat "$o/defconfig.log"; fail "$name: defconfig"; return 1; }
	libc=$(sed -n 's/^BR2_TOOLCHAIN_BUILDROOT_\(GLIBC\|MUSL\|UCLIBC\)=y/\1/p' "$o/.config")
	cxx=$(grep -q '^BR2_INSTALL_LIBSTDCPP=y' "$o/.config" && echo "C++" || echo "no C++")
	if grep -q '^BR2_PACKAGE_ENFORCE=y' "$o/.config"; then got=enabled; else got=unavailable; fi
	echo "$name ($base${*:+ + $*}): $libc, $cxx: BR2_PACKAGE_ENFORCE $got"
}
expect() { # NAME enabled|unavailable
	if grep -q '^BR2_PACKAGE_ENFORCE=y' "$work/$1/.config"; then got=enabled; else got=unavailable; fi
	[ "$got" = "$2" ] || fail "$1: BR2_PACKAGE_ENFORCE is $got, expected $2"
}

step "2. Kconfig: which configurations can enable the package"
load glibc qemu_x86_64_defconfig && expect glibc enabled
load openrc qemu_x86_64_defconfig BR2_INIT_OPENRC=y && expect openrc enabled
load musl qemu_x86_64_defconfig BR2_TOOLCHAIN_BUILDROOT_MUSL=y && expect musl unavailable
load musl-cxx qemu_x86_64_defconfig BR2_TOOLCHAIN_BUILDROOT_MUSL=y BR2_TOOLCHAIN_BUILDROOT_CXX=y &&
	expect musl-cxx enabled
load uclibc qemu_x86_64_defconfig BR2_TOOLCHAIN_BUILDROOT_UCLIBC=y && expect uclibc unavailable
load aarch64 qemu_aarch64_virt_defconfig && expect aarch64 enabled
grep -E '^BR2_(SSP_STRONG|PIC_PIE|RELRO_FULL|FORTIFY_SOURCE_1)=y' "$work/glibc/.config" |
	sed 's/^/glibc default hardening: /'

step "3. the package as Buildroot sees it (glibc; OpenRC for the OpenRC install)"
vars="ENFORCE_VERSION ENFORCE_SITE ENFORCE_SITE_METHOD ENFORCE_SOURCE ENFORCE_DOWNLOAD_POST_PROCESS"
vars="$vars ENFORCE_DL_ENV ENFORCE_DOWNLOAD_DEPENDENCIES ENFORCE_DEPENDENCIES ENFORCE_LICENSE ENFORCE_LICENSE_FILES"
vars="$vars ENFORCE_HASH_FILES BR_NO_CHECK_HASH_FOR"
vars="$vars ENFORCE_OVERRIDE_SRCDIR ENFORCE_PRE_BUILD_HOOKS LLVM_TARGETS_TO_BUILD"
make -s -C "$br" O="$work/glibc" printvars VARS="$vars" | tee "$work/printvars.txt"
grep -qx 'ENFORCE_SITE_METHOD=git' "$work/printvars.txt" || fail "ENFORCE_SITE_METHOD is not git"
grep -qx 'ENFORCE_DOWNLOAD_POST_PROCESS=cargo' "$work/printvars.txt" ||
	fail "no cargo download post-process (crates would not be vendored at download time)"
grep -q '^ENFORCE_DOWNLOAD_DEPENDENCIES=.*host-rustc' "$work/printvars.txt" || fail "host-rustc is not a download dependency"
grep -q '^LLVM_TARGETS_TO_BUILD=.*BPF' "$work/printvars.txt" || fail "host-llvm does not build the BPF backend"
make -s -C "$br" O="$work/glibc" enforce-show-info | $py -c '
import json, sys
info = json.load(sys.stdin)["enforce"]
keep = ("type", "virtual", "version", "licenses", "dl_dir", "install_target", "downloads", "dependencies")
print(json.dumps({k: info[k] for k in keep if k in info}, indent=1))'
make -s -C "$br" O="$work/openrc" printvars VARS=ENFORCE_INSTALL_INIT_OPENRC RAW_VARS=ENFORCE_INSTALL_INIT_OPENRC |
	grep -q 'runlevels/boot/enforce' || fail "the OpenRC install does not link the service into the boot runlevel"

step "4. the BPF compile through Buildroot's clang wrapper"
eval "$(make -s -C "$br" O="$work/glibc" printvars VARS='HOSTCC HOST_CFLAGS TOOLCHAIN_WRAPPER_ARGS HOST_CLANG_TOOLCHAIN_WRAPPER_ARGS TOOLCHAIN_WRAPPER_HASH_STYLE' |
	sed "s/'/'\\\\''/g; s/^\([A-Z_]*\)=\(.*\)$/\1='\2'/")"
hostbin=$work/wrapper/host/bin
rm -rf "$work/wrapper" && mkdir -p "$hostbin"
# package/llvm-project/clang/clang.mk: HOST_CLANG_TOOLCHAIN_WRAPPER_BUILD (where
# TOOLCHAIN_WRAPPER_ARGS begins with HOST_CLANG_TOOLCHAIN_WRAPPER_ARGS), and
# HOST_CLANG_INSTALL_WRAPPER_AND_SIMPLE_SYMLINKS: clang -> the wrapper, which runs
# clang.br_real (here: this machine's clang).
args="$HOST_CLANG_TOOLCHAIN_WRAPPER_ARGS $TOOLCHAIN_WRAPPER_ARGS"
echo "wrapper: $HOSTCC $HOST_CFLAGS $args -s -Wl,--hash-style=$TOOLCHAIN_WRAPPER_HASH_STYLE toolchain/toolchain-wrapper.c"
(cd "$br" && eval "$HOSTCC $HOST_CFLAGS $args -s -Wl,--hash-style=$TOOLCHAIN_WRAPPER_HASH_STYLE \
	toolchain/toolchain-wrapper.c -o '$hostbin/toolchain-wrapper-clang'") || fail "building toolchain-wrapper.c"
ln -snf toolchain-wrapper-clang "$hostbin/clang"
ln -snf "$(command -v clang)" "$hostbin/clang.br_real"
inc=$(find "$top"/target/x86_64-unknown-linux-musl/release/build -path '*/libbpf-sys-*/out/include' -prune 2>/dev/null | head -n 1)
if [ -n "$inc" ]; then
	# What the wrapper does to the compile that build.rs ran before it was made
	# immune (its flags then: -target bpf -O2 -g -Wall -Werror), for the record.
	echo "build.rs's flags before the fix, -Werror:"
	(cd "$top" && BR2_DEBUG_WRAPPER=1 "$hostbin/clang" -target bpf -O2 -g -Wall -Werror -D__TARGET_ARCH_x86 \
		-Ibpf -I"$inc" -c bpf/enforce.bpf.c -o "$work/old-flags.o" 2>&1 | grep -E 'executing|: error' | uniq) || true
	echo "the same without -Werror:"
	(cd "$top" && "$hostbin/clang" -target bpf -O2 -g -Wall -D__TARGET_ARCH_x86 \
		-Ibpf -I"$inc" -c bpf/enforce.bpf.c -o "$work/old-flags.o" 2>&1 | grep ': error' | sed 's/^[^ ]* //' | sort | uniq -c) || true
fi
# The real thing: cargo runs build.rs, which runs BPF_CLANG (the wrapper). build.rs
# reruns when BPF_CLANG or a BPF source changes: the source's time is moved, or a
# second run of this script (the same BPF_CLANG) would build nothing.
touch -c "$top/bpf/enforce.bpf.c"
if (cd "$top" && BR2_DEBUG_WRAPPER=1 BPF_CLANG="$hostbin/clang" cargo build --release \
	--target x86_64-unknown-linux-musl 2>&1 | tail -n 3); then
	# The build script's output, newest first: the run just made.
	err=$(find "$top"/target/x86_64-unknown-linux-musl/release/build -path '*/enforce-*/stderr' -newer "$hostbin/clang.br_real" | head -n 1)
	grep 'Toolchain wrapper executing' "$err" || fail "build.rs did not run the wrapper ($err)"
	obj=$(dirname "$err")/out/enforce.bpf.o
	echo "object: $(file -b "$obj" | cut -d, -f1-2), $(wc -c <"$obj") bytes"
	# The same compile without the wrapper: the hardening flags change nothing.
	# (build.rs's defines and strip, without its anti-hardening flags or the wrapper's.)
	(cd "$top" && clang -target bpf -O2 -g -Wall -Werror -DENFORCE_OBJECT -D__TARGET_ARCH_x86 -Ibpf -I"$inc" \
		-c bpf/enforce.bpf.c -o "$work/plain.o" && llvm-strip -g -R .rel.BTF.ext "$work/plain.o")
	if cmp -s "$obj" "$work/plain.o"; then
		echo "identical to the object of a plain clang call without the wrapper"
	else
		fail "the object built through the wrapper differs from a plain compile"
	fi
	if ! grep -q -- '-fstack-protector-strong' "$err" || ! grep -q -- '-Wl,-z,now' "$err"; then
		fail "the wrapper did not add the default hardening flags"
	fi
else
	fail "cargo build with BPF_CLANG=Buildroot's wrapper"
fi
# (build.rs runs again with the default clang on the next normal build.)

step "5. install commands (ENFORCE_INSTALL_*) against a scratch TARGET_DIR"
root=$work/target-dir
rm -rf "$root" && mkdir -p "$root"
bin=$top/target/x86_64-unknown-linux-musl/release/enforce
mkdir -p "$work/src/target/x86_64-buildroot-linux-gnu/release"
cp -R "$top/init" "$work/src/"
cp "$bin" "$work/src/target/x86_64-buildroot-linux-gnu/release/enforce" 2>/dev/null || : >"$work/src/target/x86_64-buildroot-linux-gnu/release/enforce"
# The .mk's own defines, with $(@D) = the scratch source dir: the target
# "$work/src/install" makes $(@D) that directory.
make -s -f - BR2_EXTERNAL_ENFORCE_PATH="$here" TARGET_DIR="$root" INSTALL=install \
	RUSTC_TARGET_NAME=x86_64-buildroot-linux-gnu BR2_INIT_OPENRC=y <<EOF || fail "install commands"
cargo-package =
include $here/package/enforce/enforce.mk
$work/src/install:
	\$(ENFORCE_INSTALL_TARGET_CMDS)
	\$(ENFORCE_INSTALL_INIT_SYSV)
	\$(ENFORCE_INSTALL_INIT_OPENRC)
EOF
(cd "$root" && find . ! -type d | LC_ALL=C sort | while read -r f; do
	if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"; else echo "$f $(stat -c %a "$f")"; fi
done)
[ "$(readlink "$root/etc/runlevels/boot/enforce")" = /etc/init.d/enforce ] ||
	fail "no /etc/runlevels/boot/enforce -> /etc/init.d/enforce"

step "6. download: Buildroot's download step for the package, then an offline build of its tarball"
# What `make enforce-source` runs (package/pkg-generic.mk: DOWNLOAD with the
# package's DOWNLOAD_POST_PROCESS), through Buildroot's own dl-wrapper and cargo
# post-process, with this machine's tar and cargo: host-tar and host-rustc, its
# download dependencies, are not built here. It clones HEAD of this repository
# (committed changes only) and vendors the crates from crates.io into the tarball.
dl=$work/dl
rm -rf "$dl" && mkdir -p "$dl"
printf '%s\n' 'enforce-download-as-make-source: PKG = ENFORCE' 'enforce-download-as-make-source:' \
	"	\$(call DOWNLOAD,\$(ENFORCE_MAIN_DOWNLOAD),\$(patsubst %,-p '%',\$(ENFORCE_DOWNLOAD_POST_PROCESS)) \$(patsubst %,-P '%',\$(ENFORCE_DOWNLOAD_POST_PROCESS_OPTS)))" \
	>"$work/download.mk"
# The qemu defconfigs set BR2_DOWNLOAD_FORCE_CHECK_HASHES, under which a download
# without a hash fails: first without it (what a configuration that does not set
# it gets), then with it and the archive's hash in a BR2_GLOBAL_PATCH_DIR, as a
# user pins a commit (enforce.mk).
if make -s -C "$br" O="$work/glibc" -f Makefile -f "$work/download.mk" TAR=tar DL_DIR="$dl" \
	BR2_DOWNLOAD_FORCE_CHECK_HASHES= enforce-download-as-make-source >"$work/download.log" 2>&1; then
	grep -E 'Vendoring|WARNING|note:' "$work/download.log" | sed 's| (/.*) to | to |'
	tarball=$(find "$dl/enforce" -name 'enforce-*-cargo*.tar.gz' | head -n 1)
	vendored=$(tar tzf "$tarball" | sed -n 's|^[^/]*/VENDOR/\([^/]*\)/.*|\1|p' | sort -u | wc -l)
	locked=$(grep -c '^source = "registry+https://github.com/rust-lang/crates.io-index"' "$top/Cargo.lock")
	echo "tarball: ${tarball#"$dl/"} ($(wc -c <"$tarball") bytes), $vendored crates in VENDOR/," \
		"$locked crates.io packages in Cargo.lock"
	[ "$vendored" -eq "$locked" ] || fail "VENDOR/ has $vendored crates, Cargo.lock $locked"
	if grep -E '^(ERROR|WARNING):' "$work/download.log"; then
		fail "the download step printed an error or a warning"
	fi
	sum=$(sha256sum "$tarball" | cut -d ' ' -f 1)
	mkdir -p "$work/global-patch-dir/enforce"
	echo "sha256  $sum  ${tarball##*/}" >"$work/global-patch-dir/enforce/enforce.hash"
	if make -s -C "$br" O="$work/glibc" -f Makefile -f "$work/download.mk" TAR=tar DL_DIR="$dl" \
		BR2_DOWNLOAD_FORCE_CHECK_HASHES=y BR2_GLOBAL_PATCH_DIR="$work/global-patch-dir" \
		enforce-download-as-make-source >"$work/download-pinned.log" 2>&1; then
		echo "download with BR2_DOWNLOAD_FORCE_CHECK_HASHES=y and the archive's hash ($sum)" \
			"in BR2_GLOBAL_PATCH_DIR/enforce/enforce.hash: passed"
		sed 's/^/  /' "$work/download-pinned.log"
	else
		cat "$work/download-pinned.log"
		fail "the download with BR2_DOWNLOAD_FORCE_CHECK_HASHES and the archive's hash in BR2_GLOBAL_PATCH_DIR"
	fi
	# The license files, as `make legal-info` checks them: Buildroot's check-hash
	# against enforce.hash, on the files in the tarball.
	rm -rf "$work/licenses" && mkdir -p "$work/licenses"
	tar xzf "$tarball" -C "$work/licenses"
	lsrc=$(find "$work/licenses" -maxdepth 1 -name 'enforce-*' -type d)
	nlic=0
	# shellcheck disable=SC2013 # one license file per word
	for f in $(sed -n 's/^ENFORCE_LICENSE_FILES=//p' "$work/printvars.txt"); do
		nlic=$((nlic + 1))
		"$br/support/download/check-hash" -q "$lsrc/$f" "$f" "$here/package/enforce/enforce.hash" ||
			fail "license file $f: check-hash against enforce.hash"
	done
	echo "license files: $nlic checked against enforce.hash with support/download/check-hash"
	echo ".cargo/config.toml in the tarball:"
	tar xzf "$tarball" -O --wildcards '*/.cargo/config.toml' | sed 's/^/  /'
	# The build runs offline: the tarball alone, in a network namespace without
	# network, an empty CARGO_HOME, and only what ENFORCE_CARGO_ENV sets for
	# libbpf-sys (the autoconf cache variables), with this machine's musl C
	# compiler wrapper in place of Buildroot's cross compiler.
	rm -rf "$work/offline" && mkdir -p "$work/offline/cargo-home"
	tar xzf "$tarball" -C "$work/offline"
	src=$(find "$work/offline" -maxdepth 1 -name 'enforce-*' -type d)
	if (cd "$src" && unshare -n env CARGO_HOME="$work/offline/cargo-home" \
		CC_x86_64_unknown_linux_musl="$src/.cargo/musl/cc" ac_cv_search_argp_parse="none required" \
		ac_cv_search_fts_close="none required" ac_cv_search__obstack_free="none required" \
		cargo build --offline --locked --release --target x86_64-unknown-linux-musl 2>&1 | tail -n 2); then
		file "$src/target/x86_64-unknown-linux-musl/release/enforce" | sed "s|$work/||"
	else
		fail "the vendored tarball does not build offline"
	fi
else
	cat "$work/download.log"
	fail "the download step"
fi

step "result"
if [ -n "$failed" ]; then
	echo "check-buildroot: FAILED:$failed"
	exit 1
fi
echo "check-buildroot: every check passed"
