SUMMARY = "eBPF deny list for file open, exec and connect on embedded Linux"
DESCRIPTION = "enforce denies file opens, program execs and network connects \
from a deny list: with BPF-LSM where the kernel runs it, with a tracepoint \
signal tier where it cannot, and it reports which of the two is in force."
SECTION = "security"

# Cargo.toml says GPL-2.0-only; LICENSE is the GPL v2 text.
LICENSE = "GPL-2.0-only"
LIC_FILES_CHKSUM = "file://LICENSE;md5=b234ee4d69f5fce4486a80fdaf4a4263"

# Where the source comes from (see meta-enforce/README.md):
#  - a git repository: ENFORCE_GIT_URI = "git://host/path/enforce.git;protocol=https"
#    and SRCREV = "<commit>" (ENFORCE_GIT_BRANCH, default main, must contain it);
#  - a checkout on the build machine: INHERIT += "externalsrc" and
#    EXTERNALSRC:pn-enforce = "/path/to/enforce" (the crates are still fetched
#    from the list below).
# With neither, the recipe is skipped with a message saying so.
ENFORCE_GIT_URI ??= ""
ENFORCE_GIT_BRANCH ??= "main"
SRCREV ??= "0000000000000000000000000000000000000000"
SRC_URI = "${@'${ENFORCE_GIT_URI};branch=${ENFORCE_GIT_BRANCH};destsuffix=enforce-src' if d.getVar('ENFORCE_GIT_URI') else ''}"
# scarthgap unpacks into WORKDIR, later releases into UNPACKDIR.
S = "${@d.getVar('UNPACKDIR') or d.getVar('WORKDIR')}/enforce-src"

# crate:// URIs and checksums for every crates.io package in the Cargo.lock
# files, written by OE-core's cargo-update-recipe-crates class: after changing
# Cargo.lock run `bitbake -c update_crates enforce`, or, without a build,
# rootfs/yocto/update-crates.sh /path/to/poky (the same task body).
require ${BPN}-crates.inc

python () {
    if not d.getVar('EXTERNALSRC') and not d.getVar('ENFORCE_GIT_URI'):
        raise bb.parse.SkipRecipe("set ENFORCE_GIT_URI and SRCREV, or EXTERNALSRC:pn-enforce (see meta-enforce/README.md)")
}

inherit cargo cargo-update-recipe-crates update-rc.d

# build.rs knows the BPF target arch of x86_64 and aarch64 only.
COMPATIBLE_HOST = "(x86_64|aarch64).*-linux"

# clang-native compiles the BPF object: from meta-clang (LAYERDEPENDS), which
# builds the BPF backend by default; OE-core has no clang in walnascar.
# libbpf-sys builds its vendored elfutils with autoreconf and a maintainer-mode
# configure.
DEPENDS += "clang-native autoconf-native automake-native libtool-native \
            gettext-native flex-native bison-native m4-native pkgconfig-native"

export BPF_CLANG = "${STAGING_BINDIR_NATIVE}/clang"
export BPF_STRIP = "${STAGING_BINDIR_NATIVE}/llvm-strip"

# cargo runs in ${B}, so the source tree's .cargo/config.toml is not read: set
# what it sets for the vendored elfutils here. On musl, argp, fts and obstack
# need no library (libelf does not use them), and two elfutils sources include
# <argp.h>, for which .cargo/stubs has a compile-only stub (searched after the
# libc headers: glibc's own argp.h wins).
export ac_cv_search_argp_parse = "none required"
export ac_cv_search_fts_close = "none required"
export ac_cv_search__obstack_free = "none required"
CFLAGS:append = " -idirafter ${S}/.cargo/stubs"

# Cargo.toml strips release binaries; let OE strip and split the debug info
# instead (an already-stripped binary fails QA).
export CARGO_PROFILE_RELEASE_STRIP = "false"

do_install() {
	install -D -m 0755 ${B}/target/${CARGO_TARGET_SUBDIR}/enforce ${D}${sbindir}/enforce
	install -D -m 0644 ${S}/init/enforce.conf ${D}${sysconfdir}/enforce.conf
	if ${@bb.utils.contains('DISTRO_FEATURES', 'sysvinit', 'true', 'false', d)}; then
		install -D -m 0755 ${S}/init/S50enforce ${D}${INIT_D_DIR}/enforce
	fi
}

CONFFILES:${PN} = "${sysconfdir}/enforce.conf"

# SysV init only: no systemd unit is shipped, and OE-core has no OpenRC class
# (init/enforce.openrc can be installed by a bbappend where OpenRC is used).
INITSCRIPT_NAME = "enforce"
INITSCRIPT_PARAMS = "defaults 50"
