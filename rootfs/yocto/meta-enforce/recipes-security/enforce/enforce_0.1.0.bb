SUMMARY = "eBPF deny list for file open, exec and connect on embedded Linux"
DESCRIPTION = "enforce denies file opens, program execs and network connects \
from a deny list: with BPF-LSM where the kernel runs it, with a tracepoint \
signal tier where it cannot, and it reports which of the two is in force."
SECTION = "security"

# Everything the binary links (rootfs/linked.sh prints it for a build): the agent
# (GPL-2.0-only), the BPF programs it embeds (GPL-2.0 OR BSD-2-Clause, as
# Cargo.toml's license says), the C libraries libbpf-sys builds from its own
# sources (libbpf, libelf, zlib), and the crates linked at run time (not build-only
# ones), each as its Cargo.toml says. LICENSE is the GPL v2 text; the BPF sources'
# SPDX line states their alternative. OE-core's cargo classes fetch the crates
# into CARGO_VENDORING_DIRECTORY (name-version/), where their license files are;
# libbpf, elfutils and zlib are inside libbpf-sys (elfutils' COPYING is the GPL v3,
# which the LGPL v3 is written as additions to).
LICENSE = "GPL-2.0-only & (GPL-2.0-only | BSD-2-Clause) \
    & (LGPL-2.1-only | BSD-2-Clause) & (LGPL-3.0-or-later | GPL-2.0-or-later) & Zlib \
    & BSD-2-Clause & (MIT | Apache-2.0) & (Unlicense | MIT) & MIT \
    & (Apache-2.0-with-LLVM-exception | Apache-2.0 | MIT)"
LIC_FILES_CHKSUM = " \
    file://LICENSE;md5=b234ee4d69f5fce4486a80fdaf4a4263 \
    file://bpf/enforce.bpf.c;beginline=1;endline=1;md5=b0eae288671a3bc9bdbec31a57fa2f8f \
    file://${CARGO_VENDORING_DIRECTORY}/bitflags-2.13.2/LICENSE-APACHE;md5=1836efb2eb779966696f473ee8540542 \
    file://${CARGO_VENDORING_DIRECTORY}/bitflags-2.13.2/LICENSE-MIT;md5=362255802eb5aa87810d12ddf3cfedb4 \
    file://${CARGO_VENDORING_DIRECTORY}/byteorder-1.5.0/COPYING;md5=034e2d49ef70c35b64be514bef39415a \
    file://${CARGO_VENDORING_DIRECTORY}/byteorder-1.5.0/LICENSE-MIT;md5=8d0d0aa488af0ab9aafa3b85a7fc8e12 \
    file://${CARGO_VENDORING_DIRECTORY}/byteorder-1.5.0/UNLICENSE;md5=7246f848faa4e9c9fc0ea91122d6e680 \
    file://${CARGO_VENDORING_DIRECTORY}/hash32-0.3.1/LICENSE-APACHE;md5=1836efb2eb779966696f473ee8540542 \
    file://${CARGO_VENDORING_DIRECTORY}/hash32-0.3.1/LICENSE-MIT;md5=90f387ed9106313fc39fbf12f2d88539 \
    file://${CARGO_VENDORING_DIRECTORY}/heapless-0.8.0/LICENSE-APACHE;md5=1836efb2eb779966696f473ee8540542 \
    file://${CARGO_VENDORING_DIRECTORY}/heapless-0.8.0/LICENSE-MIT;md5=0577af1a417d95a5f126537664e9b704 \
    file://${CARGO_VENDORING_DIRECTORY}/lexopt-0.3.2/LICENSE;md5=b8e97d3bdc0d12b1a2528d5a52417f25 \
    file://${CARGO_VENDORING_DIRECTORY}/libbpf-sys-1.7.0+v1.7.0/LICENSE;md5=0fc46ee3d6ba77bf08d6b5312092f0ef \
    file://${CARGO_VENDORING_DIRECTORY}/libbpf-sys-1.7.0+v1.7.0/libbpf/LICENSE;md5=ef85bb9c22630a7bfbcbbea6ec81ac72 \
    file://${CARGO_VENDORING_DIRECTORY}/libbpf-sys-1.7.0+v1.7.0/libbpf/LICENSE.BSD-2-Clause;md5=67cb4c623fc9a9acea2f039dad14f71a \
    file://${CARGO_VENDORING_DIRECTORY}/libbpf-sys-1.7.0+v1.7.0/libbpf/LICENSE.LGPL-2.1;md5=b370887980db5dd40659b50909238dbd \
    file://${CARGO_VENDORING_DIRECTORY}/libbpf-sys-1.7.0+v1.7.0/elfutils/COPYING-GPLV2;md5=b234ee4d69f5fce4486a80fdaf4a4263 \
    file://${CARGO_VENDORING_DIRECTORY}/libbpf-sys-1.7.0+v1.7.0/elfutils/COPYING-LGPLV3;md5=e6a600fd5e1d9cbde2d983680233ad02 \
    file://${CARGO_VENDORING_DIRECTORY}/libbpf-sys-1.7.0+v1.7.0/elfutils/COPYING;md5=d32239bcb673463ab874e80d47fae504 \
    file://${CARGO_VENDORING_DIRECTORY}/libbpf-sys-1.7.0+v1.7.0/zlib/LICENSE;md5=b51a40671bc46e961c0498897742c0b8 \
    file://${CARGO_VENDORING_DIRECTORY}/linux-raw-sys-0.12.1/LICENSE-APACHE;md5=1836efb2eb779966696f473ee8540542 \
    file://${CARGO_VENDORING_DIRECTORY}/linux-raw-sys-0.12.1/LICENSE-Apache-2.0_WITH_LLVM-exception;md5=a1ba2b4c4f909ac0b517d8a37d2ac70f \
    file://${CARGO_VENDORING_DIRECTORY}/linux-raw-sys-0.12.1/LICENSE-MIT;md5=b377b220f43d747efdec40d69fcaa69d \
    file://${CARGO_VENDORING_DIRECTORY}/log-0.4.35/LICENSE-APACHE;md5=1836efb2eb779966696f473ee8540542 \
    file://${CARGO_VENDORING_DIRECTORY}/log-0.4.35/LICENSE-MIT;md5=362255802eb5aa87810d12ddf3cfedb4 \
    file://${CARGO_VENDORING_DIRECTORY}/rustix-1.1.6/LICENSE-APACHE;md5=1836efb2eb779966696f473ee8540542 \
    file://${CARGO_VENDORING_DIRECTORY}/rustix-1.1.6/LICENSE-Apache-2.0_WITH_LLVM-exception;md5=a1ba2b4c4f909ac0b517d8a37d2ac70f \
    file://${CARGO_VENDORING_DIRECTORY}/rustix-1.1.6/LICENSE-MIT;md5=b377b220f43d747efdec40d69fcaa69d \
    file://${CARGO_VENDORING_DIRECTORY}/simple_logger-5.2.0/LICENSE;md5=245629b89103d37f7bb65fa004367d28 \
    file://${CARGO_VENDORING_DIRECTORY}/stable_deref_trait-1.2.1/LICENSE-APACHE;md5=1836efb2eb779966696f473ee8540542 \
    file://${CARGO_VENDORING_DIRECTORY}/stable_deref_trait-1.2.1/LICENSE-MIT;md5=5434f8986388952c209d3be8db2ea2a1 \
"

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

# cve-check matches every CVE_PRODUCT against PV, so the vendored libbpf, libelf
# and zlib (other versions than PV) cannot be listed here: they are not tracked.
CVE_PRODUCT = "enforce"

# build.rs knows the BPF target arch of x86_64, aarch64 and 32-bit ARM.
COMPATIBLE_HOST = "(x86_64|aarch64|arm).*-linux.*"

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

# A kernel without BTF (no CONFIG_DEBUG_INFO_BTF): ENFORCE_KERNEL_BTF = "1" makes
# ${libdir}/enforce/vmlinux.btf from the kernel's vmlinux with pahole and points
# the config at it ("btf ="), for CO-RE relocation of the kprobe and tracepoint
# tiers (LSM and fmod_ret need the kernel's own BTF). The vmlinux must have DWARF
# (CONFIG_DEBUG_INFO) and be deployed: KERNEL_ALT_IMAGETYPE = "vmlinux", or set
# ENFORCE_KERNEL_VMLINUX to where it is.
ENFORCE_KERNEL_BTF ??= "0"
ENFORCE_KERNEL_VMLINUX ??= "${DEPLOY_DIR_IMAGE}/vmlinux"
DEPENDS += "${@'pahole-native' if d.getVar('ENFORCE_KERNEL_BTF') == '1' else ''}"
do_install[depends] += "${@'virtual/kernel:do_deploy' if d.getVar('ENFORCE_KERNEL_BTF') == '1' else ''}"
FILES:${PN} += "${libdir}/enforce"
# The BTF file is one machine's kernel's, and enforce.conf then names it: the
# package is that machine's, so that sstate and feeds do not hand it to another.
PACKAGE_ARCH = "${@oe.utils.conditional('ENFORCE_KERNEL_BTF', '1', '${MACHINE_ARCH}', '${TUNE_PKGARCH}', d)}"

do_install() {
	install -D -m 0755 ${B}/target/${CARGO_TARGET_SUBDIR}/enforce ${D}${sbindir}/enforce
	install -D -m 0644 ${S}/init/enforce.conf ${D}${sysconfdir}/enforce.conf
	if [ "${ENFORCE_KERNEL_BTF}" = "1" ]; then
		install -d ${D}${libdir}/enforce
		pahole --btf_encode_detached=${D}${libdir}/enforce/vmlinux.btf ${ENFORCE_KERNEL_VMLINUX}
		echo "btf = ${libdir}/enforce/vmlinux.btf" >>${D}${sysconfdir}/enforce.conf
	fi
	if ${@bb.utils.contains('DISTRO_FEATURES', 'sysvinit', 'true', 'false', d)}; then
		install -D -m 0755 ${S}/init/S05enforce ${D}${INIT_D_DIR}/enforce
	fi
}

CONFFILES:${PN} = "${sysconfdir}/enforce.conf"

# SysV init only: no systemd unit is shipped, and OE-core has no OpenRC class
# (init/enforce.openrc can be installed by a bbappend where OpenRC is used, linked
# into the boot runlevel). Started in rcS.d after populate-volatile.sh (S37: /var/run
# and /var/log exist) and so before rc5.d, where the network comes up
# (S01networking) and sshd or dropbear start; syslog starts there too (S20), so
# until it listens the agent's events go to its log file. Stopped after the
# network (K80networking), before sendsigs (S20) would kill it.
INITSCRIPT_NAME = "enforce"
INITSCRIPT_PARAMS = "start 39 S . stop 81 0 1 6 ."
