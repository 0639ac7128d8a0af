#!/bin/sh
# Static checks of the Buildroot external tree (rootfs/buildroot) and the Yocto
# layer (rootfs/yocto/meta-enforce) against the source tree. Neither Buildroot
# nor BitBake is needed (POSIX sh, python3's standard library, and cargo for
# `cargo tree`/`cargo metadata` offline): this checks what can be checked without
# them, and fails loudly on any mismatch.
#
#   rootfs/check-build-systems.sh        (make build-systems-test)
#
# What it checks: the crate list covers every crates.io package of every
# Cargo.lock with its checksum, in the form OE-core's cargo-update-recipe-crates
# writes (`make check-yocto` compares it with that class's own output); versions
# agree with Cargo.toml; the license lists of both packages (Buildroot's
# ENFORCE_LICENSE, LICENSE_FILES and enforce.hash; the recipe's LICENSE and
# LIC_FILES_CHKSUM) name every crate linked at run time for the targets they build
# for, with its Cargo.toml license, and libbpf, libelf and zlib, and their license
# files' checksums match the crates' sources; enforce.mk uses only
# ENFORCE_ variables Buildroot knows (or its own helpers) and the package name
# matches its directory, takes its source from this git repository and vendors
# the crates at download time; every file the .mk and the .bb install exists; the
# Kconfig entries are well formed and their dependency comment mirrors them;
# BitBake files have balanced quotes, continuations and functions, and their
# inline Python compiles; the kernel fragments agree and name what the agent
# needs; the layer has what yocto-check-layer's test_readme and test_security
# look for; shell scripts pass `sh -n`. `make check-buildroot` and `make
# check-yocto` run Buildroot's and BitBake's own tools.
set -u
cd "$(dirname "$0")/.." || exit 1

fail=0
for f in init/S05enforce init/enforce.openrc init/enforce.confd rootfs/check-build-systems.sh \
	rootfs/buildroot/check.sh rootfs/yocto/check.sh rootfs/yocto/update-crates.sh rootfs/linked.sh; do
	if [ ! -f "$f" ]; then
		echo "FAIL sh -n: $f does not exist"
		fail=1
	elif ! sh -n "$f"; then
		echo "FAIL sh -n: $f"
		fail=1
	fi
done

# The init scripts learn the outcome of start/reload/stop only from the agent's own
# lifecycle lines: a line counts when the message starts right after the agent's
# log prefix (its logger's "LEVEL [module] ", or its syslog frame with *its* pid),
# not wherever "attached:" appears (an event names a process's comm, which anyone
# can choose). Run each script's matcher on lines the agent and others could write.
lines=$(mktemp)
trap 'rm -f "$lines"' EXIT
cat >"$lines" <<'EOF'
INFO  [enforce::probe] mounted securityfs on /sys/kernel/security to read the LSM list
<28>Nov 30 12:00:00 enforce[4242]: denied class=open tier=lsm pid=9 uid=0 comm=attached: postu dev=8:1 ino=5 rule=3
<28>Nov 30 12:00:00 enforce[4242]: denied class=exec tier=lsm pid=9 uid=0 comm=reloaded: x dev=8:1 ino=6 rule=4
<30>Nov 30 12:00:01 enforce[999]: attached: posture=FROM-ANOTHER-PID
<30>Nov 30 12:00:01 enforce[42420]: refused: posture=FROM-ANOTHER-PID
someone else: attached: posture=NOT-AT-THE-START
INFO  [enforce] attached: posture=ENFORCE tier.open=lsm tier.exec=lsm tier.connect=lsm rules open=1 exec=0 connect=0
<30>Nov 30 12:00:02 enforce[4242]: reloaded: posture=ENFORCE tier.open=lsm tier.exec=lsm tier.connect=lsm rules open=2 exec=0 connect=0
ERROR [enforce] reload failed: /etc/enforce.conf:8: expected key = value; keeping the current policy
stopped: denied=1 audited=0 dropped=0
EOF
want='attached: posture=ENFORCE tier.open=lsm tier.exec=lsm tier.connect=lsm rules open=1 exec=0 connect=0
reloaded: posture=ENFORCE tier.open=lsm tier.exec=lsm tier.connect=lsm rules open=2 exec=0 connect=0
reload failed: /etc/enforce.conf:8: expected key = value; keeping the current policy
stopped: denied=1 audited=0 dropped=0'
for spec in "init/S05enforce lifecycle" "init/enforce.openrc _lifecycle"; do
	script=${spec% *} fn=${spec#* }
	body=$(sed -n "/^$fn() {/,/^}/p" "$script")
	if [ -z "$body" ]; then
		echo "FAIL $script has no $fn()"
		fail=1
	elif got=$(sh -c "$body
$fn \"\$1\" 1 4242" sh "$lines") && [ "$got" = "$want" ]; then
		echo "ok $script: $fn() takes only the agent's own lifecycle lines ($(echo "$got" | wc -l) of $(($(wc -l <"$lines") - 1)))"
	else
		echo "FAIL $script: $fn() on crafted lines gave:"
		echo "$got" | sed 's/^/    /'
		fail=1
	fi
done

python3 - <<'PYEOF' || fail=1
import sys, traceback
def _crash(kind, value, tb):
    traceback.print_exception(kind, value, tb)
    for f in globals().get("failures", []):
        print("FAIL", f)
    print(f"FAIL the checks stopped early: {kind.__name__}: {value}")
    sys.exit(1)
sys.excepthook = _crash
import hashlib, os, re, subprocess, sys, textwrap, tomllib

failures = []
count = 0

def check(ok, what, detail=""):
    global count
    count += 1
    if not ok:
        failures.append(what + (f": {detail}" if detail else ""))
    return ok

def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()

def exists(path):
    return os.path.exists(path)

BR = "rootfs/buildroot"
pkgdirs = sorted(os.listdir(f"{BR}/package"))
check(pkgdirs == ["enforce"], f"{BR}/package holds one package, enforce", str(pkgdirs))
PKG = f"{BR}/package/{pkgdirs[0]}"
MK = f"{PKG}/{pkgdirs[0]}.mk"
check(exists(MK), f"{PKG} has {os.path.basename(MK)}: the .mk is named after its directory",
      str(os.listdir(PKG)))
LAYER = "rootfs/yocto/meta-enforce"
RECIPE_DIR = f"{LAYER}/recipes-security/enforce"
INC = f"{RECIPE_DIR}/enforce-crates.inc"

cargo = tomllib.loads(read("Cargo.toml"))
version = cargo["package"]["version"]
license_ = cargo["package"]["license"]
lock = tomllib.loads(read("Cargo.lock"))

# --- the crate list ---------------------------------------------------------
# OE-core's cargo-update-recipe-crates class (`bitbake -c update_crates enforce`,
# or rootfs/yocto/update-crates.sh) writes one "# from PATH" block per Cargo.lock
# under the source tree: SRC_URI += crate://crates.io/NAME/VERSION for each
# crates.io package, then SRC_URI[NAME-VERSION.sha256sum]. Checked here against
# the lock files themselves, independently of the class.
inc = read(INC) if exists(INC) else ""
check(exists(INC), f"{INC} exists")
check(inc.startswith("# Autogenerated with 'bitbake -c update_crates enforce'\n"),
      f"{INC} is the cargo-update-recipe-crates output for enforce", inc[:80])
locks = sorted(os.path.relpath(os.path.join(d, f), ".") for d, _, fs in os.walk(".")
               if not d.startswith(("./.git", "./target", "./rootfs/probe/target")) for f in fs if f == "Cargo.lock")
blocks = re.findall(r"^# from (\S+)\n", inc, re.M)
check(sorted(blocks) == locks, f"{INC} has one block per Cargo.lock", f"blocks {blocks}, lock files {locks}")
sums = {}
for k, v in re.findall(r'^SRC_URI\[(\S+)\.sha256sum\] = "([0-9a-f]{64})"$', inc, re.M):
    check(sums.get(k, v) == v, f"{INC}: one checksum for {k}")
    sums[k] = v
for block in re.split(r"^# from ", inc, flags=re.M)[1:]:
    path = block.split("\n", 1)[0]
    if not exists(path):
        continue
    lk = tomllib.loads(read(path))
    want = {(p["name"], p["version"], p.get("checksum"))
            for p in lk["package"] if "crates.io" in p.get("source", "")}
    uris = re.findall(r"^    crate://crates\.io/([^/\s]+)/(\S+) \\$", block, re.M)
    check(len(uris) == len(set(uris)), f"{INC} ({path}): each crate once")
    got = {(n, v, sums.get(f"{n}-{v}")) for n, v in uris}
    for c in sorted(want - got, key=str):
        check(False, f"{path}: crate {c[0]} {c[1]} is in {INC} with checksum {c[2]}",
              "Cargo.lock changed? run `bitbake -c update_crates enforce` or rootfs/yocto/update-crates.sh")
    for c in sorted(got - want, key=str):
        check(False, f"{INC} crate {c[0]} {c[1]} (sum {c[2]}) is in {path}")
    for r in [p["name"] for p in lk["package"] if "source" not in p]:
        check(f"crates.io/{r}/" not in block, f"{INC} leaves out the local package {r}")

# --- Buildroot: external tree -------------------------------------------------
desc = read(f"{BR}/external.desc")
m = re.search(r"^name:\s*(\S+)\s*$", desc, re.M)
ext_name = m.group(1) if m else None
check(ext_name == "ENFORCE", f"{BR}/external.desc has name: ENFORCE", repr(ext_name))
check(bool(re.search(r"^desc:\s*\S", desc, re.M)), f"{BR}/external.desc has a desc:")
for root, _, files in os.walk(BR):
    for fn in files:
        p = os.path.join(root, fn)
        for used in set(re.findall(r"BR2_EXTERNAL_(\w+?)_PATH", read(p))):
            check(used == ext_name, f"{p} uses BR2_EXTERNAL_{ext_name}_PATH", f"found BR2_EXTERNAL_{used}_PATH")
for src in re.findall(r'^\s*source\s+"([^"]+)"', read(f"{BR}/Config.in"), re.M):
    path = src.replace(f"$BR2_EXTERNAL_{ext_name}_PATH", BR)
    check(exists(path), f"{BR}/Config.in sources an existing file", src)
check(f"{PKG}/Config.in" in [s.replace(f"$BR2_EXTERNAL_{ext_name}_PATH", BR)
      for s in re.findall(r'^\s*source\s+"([^"]+)"', read(f"{BR}/Config.in"), re.M)],
      f"{BR}/Config.in sources {PKG}/Config.in")
check("$(BR2_EXTERNAL_ENFORCE_PATH)/package/*/*.mk" in read(f"{BR}/external.mk"),
      f"{BR}/external.mk includes the package .mk files")

# --- Buildroot: package Config.in -----------------------------------------------
kc = read(f"{PKG}/Config.in")
check(kc.startswith("config BR2_PACKAGE_ENFORCE\n"), f"{PKG}/Config.in starts with config BR2_PACKAGE_ENFORCE")

def kconfig_entries(text):
    """[(kind, name, [attribute lines])], continuation lines joined."""
    entries, cur, lines, i = [], None, text.split("\n"), 0
    in_help = False
    while i < len(lines):
        line = lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1].rstrip() + " " + lines[i].strip()
        i += 1
        if not line.strip():
            continue
        head = re.match(r"^(config|comment|menu|if|endif|endmenu|source)\b\s*(.*)$", line)
        if head:
            in_help = False
            cur = (head.group(1), head.group(2), [])
            entries.append(cur)
            continue
        if in_help:
            check(line.startswith("\t  "), f"{PKG}/Config.in help text is indented tab + 2 spaces", repr(line))
            continue
        check(cur is not None and line.startswith("\t") and not line.startswith("\t "),
              f"{PKG}/Config.in attribute lines are indented with one tab", repr(line))
        if line.strip() == "help":
            in_help = True
        cur[2].append(line.strip())
    return entries

entries = kconfig_entries(kc)
configs = [e for e in entries if e[0] == "config"]
# The package's own comment (for unmet toolchain dependencies); the BTF option has its own.
comments = [e for e in entries if e[0] == "comment" and "enforce needs" in e[1]]
check(len(configs) >= 1 and configs[0][1] == "BR2_PACKAGE_ENFORCE", f"{PKG}/Config.in defines BR2_PACKAGE_ENFORCE")
check([c[1] for c in configs[1:]] == ["BR2_PACKAGE_ENFORCE_KERNEL_BTF"],
      f"{PKG}/Config.in: its only sub-option is BR2_PACKAGE_ENFORCE_KERNEL_BTF", str([c[1] for c in configs]))
# The BTF option: inside `if BR2_PACKAGE_ENFORCE`, needs a kernel Buildroot builds.
btf_opt = configs[1][2] if len(configs) > 1 else []
check("depends on BR2_LINUX_KERNEL" in btf_opt, f"{PKG}/Config.in: BR2_PACKAGE_ENFORCE_KERNEL_BTF depends on BR2_LINUX_KERNEL")
order = [(e[0], e[1]) for e in entries]
check(("if", "BR2_PACKAGE_ENFORCE") in order and ("config", "BR2_PACKAGE_ENFORCE_KERNEL_BTF") in order and
      order.index(("if", "BR2_PACKAGE_ENFORCE")) < order.index(("config", "BR2_PACKAGE_ENFORCE_KERNEL_BTF")),
      f"{PKG}/Config.in: BR2_PACKAGE_ENFORCE_KERNEL_BTF is inside if BR2_PACKAGE_ENFORCE")
attrs = configs[0][2] if configs else []
check('bool "enforce"' in attrs, f'{PKG}/Config.in: bool "enforce"')
check("select BR2_PACKAGE_HOST_RUSTC" in attrs, f"{PKG}/Config.in selects BR2_PACKAGE_HOST_RUSTC")
check("help" in attrs, f"{PKG}/Config.in has help text")

def clauses(attr_lines):
    out = []
    for a in attr_lines:
        if a.startswith("depends on "):
            out.append(re.sub(r"\s+", " ", a[len("depends on "):].split("#")[0]).strip())
    return out

pkg_deps = clauses(attrs)
check("BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS" in pkg_deps,
      f"{PKG}/Config.in depends on BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS")
for a in attrs:
    for sym in re.findall(r"\bBR2_\w+|\b[A-Z][A-Z0-9_]{3,}\b", a.split("#")[0]):
        check(sym.startswith("BR2_"), f"{PKG}/Config.in symbols are BR2_*", sym)
check(len(comments) == 1, f"{PKG}/Config.in has a comment for unmet dependencies")
if comments:
    cdeps = clauses(comments[0][2])
    plain = [c for c in cdeps if "!" not in c]
    negated = set(re.findall(r"!(BR2_\w+)", " ".join(c for c in cdeps if "!" in c)))
    for c in plain:
        check(c in pkg_deps, f"{PKG}/Config.in comment depends on '{c}' as the package does")
    rest = set()
    for c in pkg_deps:
        if c not in plain:
            check(re.fullmatch(r"BR2_\w+", c) is not None,
                  f"{PKG}/Config.in: toolchain dependency '{c}' is a single symbol the comment can negate")
            rest.add(c)
    check(negated == rest, f"{PKG}/Config.in comment negates exactly the toolchain dependencies",
          f"comment !{sorted(negated)} vs package {sorted(rest)}")
    check("enforce needs" in comments[0][1], f"{PKG}/Config.in comment says what enforce needs")

# --- Buildroot: enforce.mk ------------------------------------------------------
mk = read(MK)
pkgname = os.path.basename(PKG)
prefix = pkgname.upper().replace("-", "_") + "_"
check(re.search(rf"^# {re.escape(pkgname)}\n", mk, re.M) is not None, f"{MK} banner names the package {pkgname}")
check(mk.rstrip().endswith("$(eval $(cargo-package))"), f"{MK} ends with $(eval $(cargo-package))")
check(not re.search(r"\\[ \t]+$", mk, re.M), f"{MK} has no blank after a line continuation")
KNOWN = {  # generic-package and cargo-package variables used by this package
    "VERSION", "SITE", "SITE_METHOD", "SOURCE", "LICENSE", "LICENSE_FILES", "SUBDIR",
    "OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS", "DEPENDENCIES", "CARGO_ENV", "CARGO_BUILD_OPTS",
    "CARGO_INSTALL_OPTS", "INSTALL_TARGET_CMDS", "INSTALL_INIT_SYSV", "INSTALL_INIT_OPENRC",
    "INSTALL_INIT_SYSTEMD", "PRE_BUILD_HOOKS", "POST_RSYNC_HOOKS", "POST_INSTALL_TARGET_HOOKS",
    "CPE_ID_VENDOR",
}
defines, names, body, cur = {}, [], [], None
for line in mk.split("\n"):
    if cur is not None:
        if line.strip() == "endef":
            defines[cur] = "\n".join(body)
            cur = None
        else:
            body.append(line)
        continue
    d = re.match(r"^define\s+(\S+)\s*$", line)
    if d:
        cur, body = d.group(1), []
        names.append(cur)
        continue
    a = re.match(r"^([A-Za-z0-9_$().-]+)\s*(\+=|\?=|:=|=)", line)
    if a:
        names.append(a.group(1))
check(cur is None, f"{MK}: every define has its endef")
hook_names = set(" ".join(re.findall(r"_HOOKS\s*\+?=\s*(.*)$", mk, re.M)).split())
for n in names:
    if n == "BR_NO_CHECK_HASH_FOR":  # Buildroot's list of downloads without a hash
        continue
    if not check(n.startswith(prefix), f"{MK} variable {n} starts with {prefix}"):
        continue
    suffix = n[len(prefix):]
    helper = f"$({n})" in mk or n in hook_names
    check(suffix in KNOWN or helper,
          f"{MK} variable {n} is a Buildroot package variable or a helper it uses",
          "unknown and unused: a typo?")
# The source: this git repository at its HEAD, downloaded with the git method so
# that the cargo infrastructure vendors the crates at download time (a local
# site method is rsynced and never vendored).
check(re.search(r"^ENFORCE_SITE = \$\(realpath \$\(BR2_EXTERNAL_ENFORCE_PATH\)/\.\./\.\.\)$", mk, re.M) is not None
      and os.path.samefile(os.path.join(BR, "../.."), "."),
      f"{MK}: ENFORCE_SITE is this repository, from BR2_EXTERNAL_ENFORCE_PATH")
check(re.search(r"^ENFORCE_SITE_METHOD = git$", mk, re.M) is not None, f"{MK}: ENFORCE_SITE_METHOD = git")
check(re.search(r"^ENFORCE_VERSION := \$\(shell git -C \$\(BR2_EXTERNAL_ENFORCE_PATH\) rev-parse --verify -q HEAD",
                mk, re.M) is not None, f"{MK}: ENFORCE_VERSION defaults to the repository's HEAD")
check("$(eval $(cargo-package))" in mk and "_BUILD_CMDS" not in mk,
      f"{MK}: the cargo infrastructure builds it (and vendors at download time)")
check(re.search(r"^ifneq \(\$\(ENFORCE_OVERRIDE_SRCDIR\),\)\ndefine ENFORCE_CARGO_FETCH", mk, re.M) is not None,
      f"{MK}: crates are fetched at build time only for ENFORCE_OVERRIDE_SRCDIR")
# --- licenses: what the binary links --------------------------------------------
# The crates linked at run time (normal dependencies, not build or dev ones) for
# every target the packages build for, with the license their Cargo.toml gives, as
# `cargo tree` resolves them (rootfs/linked.sh prints the same for one build), and
# where each crate's sources are (for its license files).
TARGETS = ("x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl", "armv7-unknown-linux-musleabihf",
           "x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf")
linked = {}
for t in TARGETS:
    r = subprocess.run(["cargo", "tree", "--offline", "--locked", "--target", t, "-e", "normal",
                        "--prefix", "none", "-f", "{p}|{l}"], capture_output=True, text=True)
    if not check(r.returncode == 0, f"cargo tree --target {t} -e normal runs (offline)", r.stderr.strip()[-300:]):
        continue
    for line in r.stdout.splitlines():
        m = re.match(r"^(\S+) v(\S+)[^|]*\|(.*)$", line)
        if m and m.group(1) != cargo["package"]["name"]:
            linked[m.group(1)] = (m.group(2), m.group(3))
check(len(linked) > 0, "cargo tree names the crates the agent links")
for n, (v, _) in linked.items():
    check(any(p["name"] == n and p["version"] == v and "crates.io" in p.get("source", "") for p in lock["package"]),
          f"linked crate {n} {v} is a crates.io package of Cargo.lock")
r = subprocess.run(["cargo", "metadata", "--offline", "--locked", "--format-version", "1",
                    "--filter-platform", TARGETS[0]], capture_output=True, text=True)
crate_dir = {}
if check(r.returncode == 0, "cargo metadata runs (offline)", r.stderr.strip()[-300:]):
    import json
    crate_dir = {(p["name"], p["version"]): os.path.dirname(p["manifest_path"]) for p in json.loads(r.stdout)["packages"]}
# The C libraries libbpf-sys builds from its sources, and their licenses (libelf:
# its files' headers), as rootfs/linked.sh reports them.
C_LIBS = {"libbpf": "LGPL-2.1-only OR BSD-2-Clause", "libelf": "LGPL-3.0-or-later OR GPL-2.0-or-later", "zlib": "Zlib"}
linked_sh = read("rootfs/linked.sh")
for name, lic in C_LIBS.items():
    check(re.search(rf':{name}:"?{re.escape(lic)}"?[ ;]', linked_sh) is not None, f"rootfs/linked.sh gives {name} {lic}")
ours = [t.strip("()") for t in license_.split(" AND ")]
check(len(ours) == 2 and ours[0] == "GPL-2.0-only" and ours[1] == "GPL-2.0-only OR BSD-2-Clause",
      "Cargo.toml: license is the agent's GPL-2.0-only AND the BPF programs' GPL-2.0-only OR BSD-2-Clause", license_)
spdx_bpf = {f: read(f).split("\n", 1)[0] for f in ("bpf/enforce.bpf.c", "bpf/path.bpf.c", "bpf/enforce.h", "bpf/shared_maps.h")}
for f, line in spdx_bpf.items():
    check("SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause" in line, f"{f}: SPDX GPL-2.0 OR BSD-2-Clause", line)

def br_spdx(e):
    """SPDX as Buildroot writes it: GPL-2.0 for -only, + for -or-later, lower-case or/with."""
    return e.replace("-only", "").replace("-or-later", "+").replace(" OR ", " or ").replace(" WITH ", " with ")

def oe_spdx(e):
    """SPDX as OE writes it: | for OR, one name for Apache-2.0 WITH LLVM-exception."""
    e = e.replace("Apache-2.0 WITH LLVM-exception", "Apache-2.0-with-LLVM-exception").replace(" OR ", " | ")
    return f"({e})" if "|" in e else e

# Buildroot: ENFORCE_LICENSE is "LICENSE (names), ..." over continuation lines.
m = re.search(r"^ENFORCE_LICENSE = ((?:.*\\\n)*.*)$", mk, re.M)
br_parts = {}
if check(m is not None, f"{MK}: ENFORCE_LICENSE is set"):
    for part in re.split(r",(?![^()]*\))", m.group(1).replace("\\\n", " ")):
        pm = re.fullmatch(r"\s*(.+?) \(([^()]+)\)\s*", part)
        if check(pm is not None, f"{MK}: ENFORCE_LICENSE part '{part.strip()}' is 'LICENSE (what)'"):
            for n in pm.group(2).split(", "):
                check(n not in br_parts, f"{MK}: ENFORCE_LICENSE names {n} once")
                br_parts[n] = pm.group(1)
want_br = {"enforce": br_spdx(ours[0]), "BPF programs": br_spdx(ours[1])}
want_br.update({n: br_spdx(l) for n, l in C_LIBS.items()})
want_br.update({n: br_spdx(l) for n, (_, l) in linked.items()})
for n, l in sorted(want_br.items()):
    check(br_parts.get(n) == l, f"{MK}: ENFORCE_LICENSE has {l} ({n})", f"has {br_parts.get(n)}")
for n in sorted(set(br_parts) - set(want_br)):
    check(False, f"{MK}: ENFORCE_LICENSE names {n}, which the binary links", "not linked (an old crate?)")
# The license files: LICENSE, and (unless ENFORCE_OVERRIDE_SRCDIR) each linked
# crate's in VENDOR/, with libbpf's, elfutils' and zlib's inside libbpf-sys.
m = re.search(r"^ENFORCE_LICENSE_FILES = (.+)$", mk, re.M)
br_files = m.group(1).split() if m else []
check(br_files == ["LICENSE"], f"{MK}: ENFORCE_LICENSE_FILES = LICENSE", str(br_files))
m = re.search(r"^ifeq \(\$\(ENFORCE_OVERRIDE_SRCDIR\),\)\nENFORCE_LICENSE_FILES \+= ((?:.*\\\n)*.*)\nendif$", mk, re.M)
vendor_files = m.group(1).replace("\\\n", " ").split() if m else []
check(bool(vendor_files), f"{MK}: ENFORCE_LICENSE_FILES += VENDOR/... unless ENFORCE_OVERRIDE_SRCDIR")
br_files += vendor_files
for n in linked:
    check(any(f.startswith(f"VENDOR/{n}/") for f in vendor_files), f"{MK}: ENFORCE_LICENSE_FILES has a file of {n}")
for sub in ("libbpf/", "elfutils/COPYING-LGPLV3", "elfutils/COPYING-GPLV2", "zlib/"):
    check(any(f.startswith(f"VENDOR/libbpf-sys/{sub}") for f in vendor_files),
          f"{MK}: ENFORCE_LICENSE_FILES has VENDOR/libbpf-sys/{sub}...")

def license_file(path):
    """A license file's path in this tree (VENDOR/NAME/... or a crate dir), or None."""
    vm = re.match(r"^(?:VENDOR/([^/]+)/|\$\{CARGO_VENDORING_DIRECTORY\}/([^/]+)/)(.+)$", path)
    if not vm:
        return path
    if vm.group(1):
        n, v = vm.group(1), linked.get(vm.group(1), ("?", ""))[0]
    else:
        n, v = next(((n, v) for n, (v, _) in linked.items() if vm.group(2) == f"{n}-{v}"), (vm.group(2), "?"))
    d = crate_dir.get((n, v))
    check(d is not None, f"{path}: {n} {v} is a linked crate whose sources cargo has")
    return os.path.join(d, vm.group(3)) if d else None

HASH = f"{PKG}/{pkgname}.hash"
hashes = {}
if check(exists(HASH), f"{HASH} exists"):
    for line in read(HASH).splitlines():
        if line and not line.startswith("#"):
            t, h, f = line.split("  ")
            check(t == "sha256" and f not in hashes, f"{HASH}: one sha256 for {f}")
            hashes[f] = h
check(sorted(hashes) == sorted(br_files), f"{HASH} has exactly the license files",
      f"only in hash: {sorted(set(hashes) - set(br_files))}, no hash: {sorted(set(br_files) - set(hashes))}")
for f in br_files:
    p = license_file(f)
    if p and check(exists(p), f"{MK}: license file {f} exists ({p})"):
        check(hashlib.sha256(open(p, "rb").read()).hexdigest() == hashes.get(f), f"{HASH}: sha256 of {f}")
check(re.search(r"^BR_NO_CHECK_HASH_FOR \+= \$\(ENFORCE_SOURCE\)$", mk, re.M) is not None,
      f"{MK}: the archive of the checked-out commit is exempt from the hash check (BR_NO_CHECK_HASH_FOR)")

deps = re.search(r"^ENFORCE_DEPENDENCIES = ((?:.*\\\n)*.*)$", mk, re.M)
deps = deps.group(1).replace("\\\n", " ").split() if deps else []
for d in ("host-clang", "host-llvm"):
    check(d in deps, f"{MK}: ENFORCE_DEPENDENCIES has {d}")
build_rs = read("build.rs")
for var, tool in (("BPF_CLANG", "clang"), ("BPF_STRIP", "llvm-strip")):
    check(f'env::var("{var}")' in build_rs, f"build.rs reads {var}")
    check(f"{var}=$(HOST_DIR)/bin/{tool}" in mk, f"{MK}: ENFORCE_CARGO_ENV sets {var} to $(HOST_DIR)/bin/{tool}")
check("-idirafter $(@D)/.cargo/stubs" in mk and "CFLAGS_$(ENFORCE_CC_TARGET)" in mk,
      f"{MK}: the argp stub is on the target's CFLAGS_<triple>")
check(exists(".cargo/stubs/argp.h"), ".cargo/stubs/argp.h exists")
cfg = tomllib.loads(read(".cargo/config.toml"))
AC = ("ac_cv_search_argp_parse", "ac_cv_search_fts_close", "ac_cv_search__obstack_free")
for v in AC:
    check(cfg.get("env", {}).get(v) == "none required", f".cargo/config.toml [env] sets {v} = none required")
    # Vendoring at download time replaces .cargo/config.toml with cargo's vendor
    # settings: the package must set these itself.
    check(f'{v}="none required"' in mk, f"{MK}: ENFORCE_CARGO_ENV sets {v}")

def installs(text, src_re):
    """(source, destination) of each install -D line, continuations joined."""
    text = text.replace("\\\n", " ")
    out = []
    for line in text.split("\n"):
        if re.search(r"\$\(INSTALL\)|\binstall\b", line) and " -D" in line:
            words = line.split()
            srcs = [w for w in words if re.match(src_re, w)]
            if srcs:
                out.append((srcs[0], words[-1]))
    return out

def mk_install(define, src, dst):
    pairs = installs(defines.get(define, ""), r"\$\(@D\)/")
    return (f"$(@D)/{src}", dst) in pairs

check(mk_install("ENFORCE_INSTALL_TARGET_CMDS", "init/enforce.conf", "$(TARGET_DIR)/etc/enforce.conf"),
      f"{MK}: ENFORCE_INSTALL_TARGET_CMDS installs init/enforce.conf to /etc/enforce.conf")
check(any(d == "$(TARGET_DIR)/usr/sbin/enforce" and "/target/$(RUSTC_TARGET_NAME)/" in s
          for s, d in installs(defines.get("ENFORCE_INSTALL_TARGET_CMDS", ""), r"\$\(@D\)/")),
      f"{MK}: ENFORCE_INSTALL_TARGET_CMDS installs the binary to /usr/sbin/enforce")
check(mk_install("ENFORCE_INSTALL_INIT_SYSV", "init/S05enforce", "$(TARGET_DIR)/etc/init.d/S05enforce"),
      f"{MK}: ENFORCE_INSTALL_INIT_SYSV installs init/S05enforce to /etc/init.d/S05enforce")
check(mk_install("ENFORCE_INSTALL_INIT_OPENRC", "init/enforce.openrc", "$(TARGET_DIR)/etc/init.d/enforce"),
      f"{MK}: ENFORCE_INSTALL_INIT_OPENRC installs init/enforce.openrc to /etc/init.d/enforce")
check(mk_install("ENFORCE_INSTALL_INIT_OPENRC", "init/enforce.confd", "$(TARGET_DIR)/etc/conf.d/enforce"),
      f"{MK}: ENFORCE_INSTALL_INIT_OPENRC installs init/enforce.confd to /etc/conf.d/enforce")
check("ln -sf /etc/init.d/enforce $(TARGET_DIR)/etc/runlevels/boot/enforce"
      in defines.get("ENFORCE_INSTALL_INIT_OPENRC", ""),
      f"{MK}: ENFORCE_INSTALL_INIT_OPENRC links the service into the boot runlevel")
for name, text in defines.items():
    for s, _ in installs(text, r"\$\(@D\)/"):
        rel = s[len("$(@D)/"):]
        if not rel.startswith("target/"):
            check(exists(rel), f"{MK}: {name} installs {rel}, which exists in the tree")

# --- Buildroot and Yocto: the BTF file for a kernel without BTF ------------------
BTF_PATH = "/usr/lib/enforce/vmlinux.btf"
check(re.search(r'^\s*"btf" => Key::Btf,$', read("src/config.rs"), re.M) is not None,
      "src/config.rs has the btf key the build systems write")
btf_mk = re.search(r"^ifeq \(\$\(BR2_PACKAGE_ENFORCE_KERNEL_BTF\),y\)\n(.*?)^endif$", mk, re.M | re.S)
if check(btf_mk is not None, f"{MK}: an ifeq block for BR2_PACKAGE_ENFORCE_KERNEL_BTF"):
    block = btf_mk.group(1)
    check(re.search(r"^ENFORCE_DEPENDENCIES \+= .*\blinux\b.*\bhost-pahole\b", block, re.M) is not None,
          f"{MK}: the BTF option depends on linux and host-pahole")
    hook = defines.get("ENFORCE_INSTALL_KERNEL_BTF", "").replace("\\\n", " ")
    check(re.search(r"\$\(HOST_DIR\)/bin/pahole --btf_encode_detached=\$\(TARGET_DIR\)" + re.escape(BTF_PATH)
                    + r"\s+\$\(LINUX_DIR\)/vmlinux", hook) is not None,
          f"{MK}: ENFORCE_INSTALL_KERNEL_BTF runs pahole on $(LINUX_DIR)/vmlinux into {BTF_PATH}", hook)
    check(f"btf = {BTF_PATH}" in hook and "$(TARGET_DIR)/etc/enforce.conf" in hook,
          f"{MK}: ENFORCE_INSTALL_KERNEL_BTF points /etc/enforce.conf at {BTF_PATH}")
    check("ENFORCE_POST_INSTALL_TARGET_HOOKS += ENFORCE_INSTALL_KERNEL_BTF" in block,
          f"{MK}: ENFORCE_INSTALL_KERNEL_BTF is a post-install hook")
for arch in ("BR2_x86_64", "BR2_aarch64", "BR2_arm"):
    check(arch in kc, f"{PKG}/Config.in allows {arch}")
for rust_arch in ('"x86_64"', '"aarch64"', '"arm"'):
    check(f"Ok({rust_arch}) =>" in build_rs, f"build.rs maps {rust_arch} to a BPF arch")

# --- Yocto: the recipe -----------------------------------------------------------
recipes = [f for f in os.listdir(RECIPE_DIR) if f.endswith(".bb")]
check(recipes == [f"enforce_{version}.bb"], f"{RECIPE_DIR} has one recipe, enforce_<Cargo.toml version>.bb",
      f"found {recipes}, Cargo.toml says {version}")
BB = f"{RECIPE_DIR}/{recipes[0]}" if recipes else None

def bitbake_parse(path):
    """Statements of a BitBake file: assignments {name: (op, value)} (last wins, += joined),
    directives, functions. Records failures for what it cannot parse."""
    text = read(path)
    check(not re.search(r"\\[ \t]+$", text, re.M), f"{path} has no blank after a line continuation")
    lines = text.split("\n")
    assigns, directives, functions, i = {}, [], {}, 0
    while i < len(lines):
        line, start = lines[i], i + 1
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fn = re.match(r"^(python\s+)?([\w:${}.-]*)\s*\(\)\s*\{\s*$", line)
        if fn:
            body = []
            while i < len(lines) and lines[i] != "}":
                body.append(lines[i])
                i += 1
            if not check(i < len(lines), f"{path}:{start}: function closed by a '}}' line"):
                break
            i += 1
            functions[(bool(fn.group(1)), fn.group(2) or "__anon__")] = "\n".join(body)
            continue
        while line.endswith("\\"):
            if not check(i < len(lines), f"{path}:{start}: continuation at end of file"):
                break
            line = line[:-1] + "\n" + lines[i]
            i += 1
        d = re.match(r"^(inherit|require|include|addtask|deltask|EXPORT_FUNCTIONS)\s+(.+)$", line)
        if d:
            directives.append((d.group(1), d.group(2).split()))
            continue
        a = re.match(r'^(export\s+)?([A-Za-z0-9_${}@:/.+%-]+(?:\[[^\]]+\])?)\s*(\?\?=|\?=|:=|\+=|=\+|\.=|=\.|=)\s*"(.*)"\s*$',
                     line, re.S)
        if not check(a is not None, f"{path}:{start}: a BitBake assignment with a double-quoted value", repr(line[:80])):
            continue
        name, op, value = a.group(2), a.group(3), a.group(4)
        check(not re.search(r'(?<!\\)"', value), f"{path}:{start}: {name}: quotes are balanced", repr(value[:80]))
        check(value.count("{") == value.count("}"), f"{path}:{start}: {name}: braces are balanced")
        for expr in inline_python(value):
            try:
                compile(re.sub(r"\$\{[A-Za-z0-9_:.-]+\}", "X", expr), f"{path}:{start}", "eval")
            except SyntaxError as e:
                check(False, f"{path}:{start}: {name}: inline python compiles", str(e))
        if op in ("+=", "=+", ".=", "=.") and name in assigns:
            assigns[name] = (assigns[name][0], assigns[name][1] + " " + value)
        else:
            assigns[name] = (op, value)
    return assigns, directives, functions

def inline_python(value):
    out, i = [], 0
    while True:
        j = value.find("${@", i)
        if j < 0:
            return out
        depth, k = 1, j + 3
        while k < len(value) and depth:
            depth += {"{": 1, "}": -1}.get(value[k], 0)
            k += 1
        if not check(depth == 0, "inline python ${@...} is closed", value[j:j + 60]):
            return out
        out.append(value[j + 3:k - 1])
        i = k

def check_functions(path, functions):
    for (is_py, name), body in functions.items():
        if is_py:
            check("\t" not in body, f"{path}: python function {name} is indented with spaces")
            try:
                compile(textwrap.dedent(body), f"{path}:{name}", "exec")
            except SyntaxError as e:
                check(False, f"{path}: python function {name} compiles", str(e))
        else:
            for expr in inline_python(body):
                try:
                    compile(re.sub(r"\$\{[A-Za-z0-9_:.-]+\}", "X", expr), f"{path}:{name}", "eval")
                except SyntaxError as e:
                    check(False, f"{path}: {name}: inline python compiles", str(e))
            sh = re.sub(r"\$\{@", "${X", body)  # ${@...} is not shell: keep its place
            sh = re.sub(r"\$\{X[^}]*\}", "true", sh)
            r = subprocess.run(["sh", "-n"], input=sh, text=True, capture_output=True)
            check(r.returncode == 0, f"{path}: shell function {name} passes sh -n", r.stderr.strip())

if BB:
    bb, directives, functions = bitbake_parse(BB)
    check_functions(BB, functions)
    val = lambda n: bb.get(n, (None, ""))[1]
    inherits = [w for k, ws in directives if k == "inherit" for w in ws]
    for c in ("cargo", "cargo-update-recipe-crates", "update-rc.d"):
        check(c in inherits, f"{BB} inherits {c}")
    check(("require", ["${BPN}-crates.inc"]) in directives, f"{BB} requires ${{BPN}}-crates.inc")
    for k, ws in directives:
        if k in ("require", "include"):
            f = ws[0].replace("${BPN}", "enforce")
            check(exists(os.path.join(RECIPE_DIR, f)), f"{BB}: {k}d {f} exists")
    check("PV" not in bb or val("PV") == version, f"{BB}: PV is Cargo.toml's {version}", val("PV"))
    # LICENSE: every term (joined by &) once, and exactly the licenses of what is linked.
    terms = [t.strip() for t in re.sub(r"\s+", " ", val("LICENSE")).split(" & ")]
    check(len(terms) == len(set(terms)), f"{BB}: LICENSE names each term once", val("LICENSE"))
    want_oe = {oe_spdx(t) for t in ours} | {oe_spdx(l) for l in C_LIBS.values()} | {oe_spdx(l) for _, l in linked.values()}
    check(set(terms) == want_oe, f"{BB}: LICENSE is the licenses of the agent, the BPF programs, libbpf, libelf, "
          "zlib and the linked crates", f"missing {sorted(want_oe - set(terms))}, extra {sorted(set(terms) - want_oe)}")
    lic_uris = val("LIC_FILES_CHKSUM").split()
    for n, (v, _) in linked.items():
        check(any(u.startswith(f"file://${{CARGO_VENDORING_DIRECTORY}}/{n}-{v}/") for u in lic_uris),
              f"{BB}: LIC_FILES_CHKSUM has a license file of {n} {v}")
    for sub in ("libbpf/", "elfutils/COPYING-LGPLV3", "elfutils/COPYING-GPLV2", "zlib/"):
        check(any(re.match(rf"file://\$\{{CARGO_VENDORING_DIRECTORY\}}/libbpf-sys-[^/]+/{sub}", u) for u in lic_uris),
              f"{BB}: LIC_FILES_CHKSUM has libbpf-sys's {sub}...")
    check(any(u.startswith("file://bpf/enforce.bpf.c;beginline=1;endline=1;") for u in lic_uris),
          f"{BB}: LIC_FILES_CHKSUM has the BPF programs' SPDX line")
    for uri in lic_uris:
        m = re.match(r"file://([^;]+)(.*)$", uri)
        if not check(m is not None, f"{BB}: LIC_FILES_CHKSUM entry is file://", uri):
            continue
        params = dict(p.split("=", 1) for p in m.group(2).split(";") if "=" in p)
        path = license_file(m.group(1))
        if not path or not check(exists(path), f"{BB}: license file {m.group(1)} exists ({path})"):
            continue
        data = open(path, "rb").read().splitlines(keepends=True)
        b, e = int(params.get("beginline", 1)), int(params.get("endline", len(data)))
        chunk = b"".join(data[b - 1:e])
        check(hashlib.md5(chunk).hexdigest() == params.get("md5"),
              f"{BB}: LIC_FILES_CHKSUM md5 of {m.group(1)} lines {b}-{e}",
              f"recipe {params.get('md5')}, file {hashlib.md5(chunk).hexdigest()} ({chunk[:80]!r})")
    # The BTF file is one machine's: the package is machine-specific when it has it.
    check(val("PACKAGE_ARCH") == "${@oe.utils.conditional('ENFORCE_KERNEL_BTF', '1', '${MACHINE_ARCH}', '${TUNE_PKGARCH}', d)}",
          f"{BB}: PACKAGE_ARCH is MACHINE_ARCH when ENFORCE_KERNEL_BTF is 1", val("PACKAGE_ARCH"))
    check(val("CVE_PRODUCT") == "enforce", f'{BB}: CVE_PRODUCT = "enforce"', val("CVE_PRODUCT"))
    check(val("INITSCRIPT_NAME") == "enforce", f'{BB}: INITSCRIPT_NAME = "enforce"', val("INITSCRIPT_NAME"))
    # Started in rcS.d after populate-volatile (S37: /var/run, /var/log) and before
    # rc5.d, where the network starts (init-ifupdown: S01networking); stopped in
    # 0, 1 and 6 after the network (K80networking), before sendsigs (S20).
    check(val("INITSCRIPT_PARAMS") == "start 39 S . stop 81 0 1 6 .",
          f'{BB}: INITSCRIPT_PARAMS = "start 39 S . stop 81 0 1 6 ."', val("INITSCRIPT_PARAMS"))
    check("${sysconfdir}/enforce.conf" in val("CONFFILES:${PN}").split(), f"{BB}: CONFFILES has ${{sysconfdir}}/enforce.conf")
    check("clang-native" in val("DEPENDS").split(), f"{BB}: DEPENDS has clang-native")
    check(val("BPF_CLANG") == "${STAGING_BINDIR_NATIVE}/clang", f"{BB}: exports BPF_CLANG")
    check(val("BPF_STRIP") == "${STAGING_BINDIR_NATIVE}/llvm-strip", f"{BB}: exports BPF_STRIP")
    for v in AC:
        check(val(v) == cfg.get("env", {}).get(v), f"{BB}: exports {v} as .cargo/config.toml does")
    check("-idirafter ${S}/.cargo/stubs" in val("CFLAGS:append"), f"{BB}: the argp stub is on CFLAGS")
    inst = installs(functions.get((False, "do_install"), ""), r"\$\{[BS]\}/")
    for src, dst in (("${S}/init/enforce.conf", "${D}${sysconfdir}/enforce.conf"),
                     ("${S}/init/S05enforce", "${D}${INIT_D_DIR}/${INITSCRIPT_NAME}"),
                     ("${B}/target/${CARGO_TARGET_SUBDIR}/enforce", "${D}${sbindir}/enforce")):
        want_dst = dst.replace("${INITSCRIPT_NAME}", val("INITSCRIPT_NAME"))
        check((src, want_dst) in inst, f"{BB}: do_install installs {src} to {want_dst}", str(inst))
    for src, _ in inst:
        if src.startswith("${S}/"):
            check(exists(src[len("${S}/"):]), f"{BB}: installs {src[5:]}, which exists in the tree")
    # The BTF file for a kernel without BTF, when ENFORCE_KERNEL_BTF = "1".
    check(val("ENFORCE_KERNEL_BTF") == "0", f'{BB}: ENFORCE_KERNEL_BTF ??= "0" (an option, off by default)')
    check("pahole-native" in val("DEPENDS") and "ENFORCE_KERNEL_BTF" in val("DEPENDS"),
          f"{BB}: DEPENDS has pahole-native when ENFORCE_KERNEL_BTF is 1", val("DEPENDS"))
    body = functions.get((False, "do_install"), "")
    check('if [ "${ENFORCE_KERNEL_BTF}" = "1" ]' in body, f"{BB}: do_install makes the BTF file only when asked")
    check(re.search(r"pahole --btf_encode_detached=\$\{D\}\$\{libdir\}/enforce/vmlinux\.btf \$\{ENFORCE_KERNEL_VMLINUX\}", body)
          is not None, f"{BB}: do_install runs pahole on the kernel's vmlinux into ${{libdir}}/enforce/vmlinux.btf")
    check('echo "btf = ${libdir}/enforce/vmlinux.btf" >>${D}${sysconfdir}/enforce.conf' in body,
          f"{BB}: do_install points enforce.conf at the BTF file")
    check("${libdir}/enforce" in val("FILES:${PN}"), f"{BB}: FILES:${{PN}} has ${{libdir}}/enforce")

inc_assigns, inc_dirs, inc_fns = bitbake_parse(INC)
check(set(inc_assigns) == {"SRC_URI"} | {f"SRC_URI[{k}.sha256sum]" for k in sums} and not inc_dirs and not inc_fns,
      f"{INC} sets only SRC_URI and its checksums")

# The linux-yocto bbappend changes nothing unless ENFORCE_KERNEL_CONFIG = "1":
# it only requires an .inc named by inline Python (empty otherwise), so adding
# the layer does not change linux-yocto's signatures (yocto-check-layer).
BBAPPEND = f"{LAYER}/recipes-kernel/linux/linux-yocto_%.bbappend"
app, app_dirs, app_fns = bitbake_parse(BBAPPEND)
check(not app and not app_fns and len(app_dirs) == 1 and app_dirs[0][0] == "require",
      f"{BBAPPEND} only requires a file (sets nothing itself)", str((app, app_dirs)))
m = re.fullmatch(r"\$\{@'([\w.-]+)' if d\.getVar\('ENFORCE_KERNEL_CONFIG'\) == '1' else ''\}",
                 " ".join(app_dirs[0][1]) if app_dirs else "")
if check(m is not None, f"{BBAPPEND}: the require is conditional on ENFORCE_KERNEL_CONFIG = \"1\""):
    KINC = f"{LAYER}/recipes-kernel/linux/{m.group(1)}"
    if check(exists(KINC), f"{BBAPPEND}: {m.group(1)} exists"):
        kinc, _, _ = bitbake_parse(KINC)
        for f in re.findall(r"file://([\w.-]+)", " ".join(v for _, v in kinc.values())):
            check(exists(f"{LAYER}/recipes-kernel/linux/files/{f}"), f"{KINC}: file://{f} exists in files/")

LC = f"{LAYER}/conf/layer.conf"
lc, _, _ = bitbake_parse(LC)
coll = lc.get("BBFILE_COLLECTIONS", ("", ""))[1].split()
check(coll == ["enforce"], f'{LC}: BBFILE_COLLECTIONS += "enforce"', str(coll))
for k in ("BBFILE_PATTERN", "BBFILE_PRIORITY", "LAYERSERIES_COMPAT", "LAYERVERSION", "LAYERDEPENDS"):
    check(f"{k}_enforce" in lc, f"{LC}: {k}_enforce is set")
for k in lc:
    s = re.match(r"^(BBFILE_PATTERN|BBFILE_PRIORITY|LAYERSERIES_COMPAT|LAYERVERSION|LAYERDEPENDS|LAYERRECOMMENDS)_(\S+)$", k)
    if s:
        check(s.group(2) in coll, f"{LC}: {k} is for a collection the layer declares")
# Only releases whose Rust is at least Cargo.toml's rust-version.
RUST = {"kirkstone": "1.59", "mickledore": "1.68", "nanbield": "1.70", "scarthgap": "1.75",
        "styhead": "1.79", "walnascar": "1.84"}
need = tuple(int(x) for x in cargo["package"]["rust-version"].split("."))
compat = lc.get("LAYERSERIES_COMPAT_enforce", ("", ""))[1].split()
check(bool(compat), f"{LC}: LAYERSERIES_COMPAT_enforce names a release")
for rel in compat:
    have = RUST.get(rel)
    check(have is not None and tuple(int(x) for x in have.split(".")) >= need,
          f"{LC}: {rel}'s Rust ({have or 'unknown here'}) builds rust-version {cargo['package']['rust-version']}")
check("clang-layer" in lc.get("LAYERDEPENDS_enforce", ("", ""))[1].split(),
      f"{LC}: LAYERDEPENDS_enforce has clang-layer (clang-native comes from meta-clang)")

# --- Yocto: what yocto-check-layer's test_readme and test_security look for ------
readmes = sorted(f for f in os.listdir(LAYER) if f.lower().startswith("readme"))
if check(bool(readmes), f"{LAYER} has a README"):
    text = read(f"{LAYER}/{readmes[0]}")
    # test_readme skips its checks when the README mentions another README.
    check("readme" not in text.lower(), f"{LAYER}/{readmes[0]} does not mention a README (which would skip the test)")
    check("maintainer" in text.lower(), f"{LAYER}/{readmes[0]} names a maintainer")
    check("patch" in text.lower(), f"{LAYER}/{readmes[0]} says where patches go")
    check(re.match(r"[^@]+@[^@]+", text) is not None, f"{LAYER}/{readmes[0]} has an email address")
check(any(f.startswith("SECURITY") and os.path.getsize(f"{LAYER}/{f}") > 0 for f in os.listdir(LAYER)),
      f"{LAYER} has a non-empty SECURITY file")

# --- kernel options ------------------------------------------------------------
FRAG = f"{BR}/board/enforce/linux.fragment"
CFG = f"{LAYER}/recipes-kernel/linux/files/enforce.cfg"
frag = read(FRAG)
check(frag == read(CFG), f"{CFG} is the same as {FRAG}")
opts = {}
for n, line in enumerate(frag.split("\n"), 1):
    m1 = re.match(r'^(CONFIG_[A-Z0-9_]+)=(y|m|n|"[^"]*"|-?\d+|0x[0-9a-fA-F]+)$', line)
    m2 = re.match(r"^# (CONFIG_[A-Z0-9_]+) is not set$", line)
    if m1 or m2:
        k, v = (m1.group(1), m1.group(2)) if m1 else (m2.group(1), "n")
        check(k not in opts, f"{FRAG}:{n}: {k} is set once")
        opts[k] = v
    else:
        check(line == "" or line.startswith("#"), f"{FRAG}:{n}: a kconfig line", repr(line))
for k in ("CONFIG_BPF_SYSCALL", "CONFIG_BPF_LSM", "CONFIG_DEBUG_INFO_BTF", "CONFIG_FTRACE_SYSCALLS",
          "CONFIG_BPF_JIT", "CONFIG_BPF_EVENTS", "CONFIG_SECURITY", "CONFIG_SECURITYFS"):
    check(opts.get(k) == "y", f"{FRAG}: {k}=y")
check("bpf" in opts.get("CONFIG_LSM", "").strip('"').split(","), f"{FRAG}: CONFIG_LSM lists bpf")

for f in failures:
    print("FAIL", f)
print(f"build systems: {count - len(failures)}/{count} checks passed")
sys.exit(1 if failures else 0)
PYEOF

if [ "$fail" -ne 0 ]; then
	echo "check-build-systems: FAILED" >&2
	exit 1
fi
echo "check-build-systems: ok"
