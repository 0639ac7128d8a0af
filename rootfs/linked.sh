#!/bin/sh
# What the agent built for TARGET links, and each part's license, one line each:
#
#   crate NAME VERSION LICENSE        a crate linked at run time (cargo tree -e normal:
#                                     no build or dev dependency)
#   c NAME VERSION LICENSE vendored   a C library libbpf-sys's build script linked in
#                                     from its own sources
#   c NAME - - system                 one it took from the system (pkg-config)
#
#   rootfs/linked.sh TARGET [PROFILE]    (`make` writes target/TARGET/release/enforce.linked)
#
# The C libraries are read from the build script's output in target/TARGET/PROFILE
# (its rustc-link-lib lines), so TARGET must have been built. The Rust standard
# library and the C library come from the toolchain and are not listed. The license
# lists of the Buildroot package and the Yocto recipe are checked against the crate
# lines by rootfs/check-build-systems.sh.
set -eu
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 TARGET [PROFILE]" >&2
	exit 2
fi
cd "$(dirname "$0")/.."
target=$1 profile=${2:-release}
cargo tree --offline --locked --target "$target" -e normal --prefix none -f '{p}|{l}' |
	LC_ALL=C sort -u | sed -n 's/^\([^ ]*\) v\([^ |]*\)[^|]*|\(.*\)$/crate \1 \2 \3/p' | grep -v '^crate enforce '
# The newest build of libbpf-sys (cargo's directory names are plain).
# shellcheck disable=SC2012
out=$(ls -td target/"$target"/"$profile"/build/libbpf-sys-*/output 2>/dev/null | head -n 1)
[ -n "$out" ] || { echo "$0: no libbpf-sys build output under target/$target/$profile: build it first" >&2; exit 1; }
src=$(cargo metadata --offline --locked --format-version 1 --filter-platform "$target" |
	python3 -c 'import json, os, sys
print(next(os.path.dirname(p["manifest_path"]) for p in json.load(sys.stdin)["packages"] if p["name"] == "libbpf-sys"))')
# The licenses of the parts libbpf-sys links (libelf: every source file's header;
# elfutils' programs, GPL-3.0-or-later, are not built).
for lib in bpf:libbpf:"LGPL-2.1-only OR BSD-2-Clause" elf:libelf:"LGPL-3.0-or-later OR GPL-2.0-or-later" z:zlib:Zlib; do
	l=${lib%%:*} rest=${lib#*:}
	name=${rest%%:*} license=${rest#*:}
	if grep -qx "cargo:rustc-link-lib=static=$l" "$out" && grep -q "^Using feature vendored-$name=true" "$out"; then
		case $name in
		libbpf) v=$(sed -n 's/^#define LIBBPF_\(MAJOR\|MINOR\)_VERSION \([0-9]*\)$/\2/p' "$src/libbpf/src/libbpf_version.h" |
			paste -sd.) ;;
		libelf) v=$(sed -n "s/^PACKAGE_VERSION='\(.*\)'$/\1/p" "$src/elfutils/configure") ;;
		zlib) v=$(sed -n 's/^#define ZLIB_VERSION "\(.*\)"$/\1/p' "$src/zlib/zlib.h") ;;
		esac
		echo "c $name $v $license vendored"
	elif grep -q "^cargo:rustc-link-lib=\(static=\|dylib=\)\{0,1\}$l$" "$out"; then
		echo "c $name - - system"
	else
		echo "$0: $out does not say how lib$l is linked" >&2
		exit 1
	fi
done
