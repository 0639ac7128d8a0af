#!/bin/sh
# Write meta-enforce's enforce-crates.inc with OE-core's own
# cargo-update-recipe-crates class, without BitBake.
#
#   rootfs/yocto/update-crates.sh POKY_OR_OE_CORE [OUT]
#
# The recipe inherits cargo-update-recipe-crates, so `bitbake -c update_crates
# enforce` regenerates the file in a build (that task needs python3-native, i.e.
# a build that can fetch). This script runs the same task body taken from the
# class in the given poky (or openembedded-core) tree: BitBake's variables
# (THISDIR, BPN, PN, CARGO_LOCK_SRC_DIR = the source tree, as ${S} would be)
# filled in, nativepython3 = python3 (>= 3.11, for tomllib). Nothing of the class
# is copied into this repository. The class reads every Cargo.lock under the
# source tree, so rootfs/probe/Cargo.lock (a test tool) is listed too; its one
# crate is also in the agent's Cargo.lock. `make check-yocto` checks that the
# committed file is exactly what this writes. OUT defaults to the layer's file.
set -eu
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 POKY_OR_OE_CORE [OUT]" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$(dirname "$here")")
class=$1/meta/classes-recipe/cargo-update-recipe-crates.bbclass
[ -f "$class" ] || { echo "$0: $class not found" >&2; exit 1; }
recipe_dir=$here/meta-enforce/recipes-security/enforce
out=${2:-$recipe_dir/enforce-crates.inc}

body=$(python3 - "$class" "$top" "$recipe_dir" <<'EOF'
import re, sys
cls, src, recipe_dir = sys.argv[1:]
text = open(cls).read()
m = re.search(r"^do_update_crates\(\) \{\n(.*?)^\}", text, re.M | re.S)
if not m:
    sys.exit(f"{cls}: no do_update_crates() shell task")
values = {"THISDIR": recipe_dir, "BPN": "enforce", "PN": "enforce", "CARGO_LOCK_SRC_DIR": src}
body = re.sub(r"\$\{(\w+)\}", lambda v: values.get(v.group(1), v.group(0)), m.group(1))
left = set(re.findall(r"\$\{(\w+)\}", body)) - {"TARGET_FILE"}  # TARGET_FILE: a shell variable
if left:
    sys.exit(f"{cls}: do_update_crates uses BitBake variables this script does not set: {sorted(left)}")
print(body)
EOF
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The task writes ${THISDIR}/${BPN}-crates.inc: run it on a copy of that path.
mkdir -p "$tmp/recipe"
body=$(printf '%s\n' "$body" | sed "s|$recipe_dir/enforce-crates.inc|$tmp/recipe/enforce-crates.inc|g")
printf 'nativepython3() { python3 "$@"; }\nbbnote() { echo "NOTE: $*" >&2; }\n%s\n' "$body" >"$tmp/task.sh"
sh -e "$tmp/task.sh"
cp "$tmp/recipe/enforce-crates.inc" "$out"
echo "wrote $out (OE-core's cargo-update-recipe-crates from $1)"
