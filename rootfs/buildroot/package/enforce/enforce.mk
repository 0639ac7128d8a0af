################################################################################
#
# enforce
#
################################################################################

# The source is the git repository this external tree is part of, at the commit
# checked out there: `make enforce-source` clones that commit, and the cargo
# infrastructure vendors the crates of its Cargo.lock into the tarball in DL_DIR
# (the only step that needs the network); the build runs offline. Uncommitted
# changes are not built: for work in progress, set ENFORCE_OVERRIDE_SRCDIR in
# local.mk. ENFORCE_VERSION (a commit or tag of that repository) can be set on the
# command line or in local.mk.
ENFORCE_SITE = $(realpath $(BR2_EXTERNAL_ENFORCE_PATH)/../..)
ENFORCE_SITE_METHOD = git
ifeq ($(ENFORCE_VERSION),)
ENFORCE_VERSION := $(shell git -C $(BR2_EXTERNAL_ENFORCE_PATH) rev-parse --verify -q HEAD 2>/dev/null)
endif

# enforce.hash has the license files. The source archive (generated from the
# git commit, with the crates vendored) has no hash there: its version is whatever
# commit is checked out, and a file in the tree cannot hold the hash of an archive
# that contains it. With BR2_DOWNLOAD_FORCE_CHECK_HASHES=y (Buildroot's qemu
# defconfigs set it) the download fails without one: put the archive's hash in
# <BR2_GLOBAL_PATCH_DIR>/enforce/enforce.hash (utils/add-custom-hashes).
BR_NO_CHECK_HASH_FOR += $(ENFORCE_SOURCE)

# Everything the binary links (rootfs/linked.sh prints it for a build): the agent,
# the BPF programs it embeds, the C libraries libbpf-sys builds from its own
# sources, and the crates linked at run time (not build-only ones), by license as
# their Cargo.toml says. Buildroot writes SPDX GPL-2.0-only as GPL-2.0 and
# -or-later as +. The cargo infrastructure still appends "vendored dependencies
# licenses probably not listed" to every cargo package's license.
ENFORCE_LICENSE = \
	GPL-2.0 (enforce), \
	GPL-2.0 or BSD-2-Clause (BPF programs), \
	LGPL-2.1 or BSD-2-Clause (libbpf), \
	LGPL-3.0+ or GPL-2.0+ (libelf), \
	Zlib (zlib), \
	BSD-2-Clause (libbpf-sys), \
	MIT or Apache-2.0 (bitflags, hash32, heapless, log, stable_deref_trait), \
	Unlicense or MIT (byteorder), \
	MIT (lexopt, simple_logger), \
	Apache-2.0 with LLVM-exception or Apache-2.0 or MIT (linux-raw-sys, rustix)
# LICENSE is the GPL v2 text; the BPF sources state their BSD-2-Clause
# alternative in their SPDX lines. The crates' files are in the download tarball's
# VENDOR/ (libbpf, elfutils and zlib inside libbpf-sys; elfutils' COPYING is the
# GPL v3, which the LGPL v3 is written as additions to). An
# ENFORCE_OVERRIDE_SRCDIR build has no VENDOR/: its crates are in cargo's home.
ENFORCE_LICENSE_FILES = LICENSE
ifeq ($(ENFORCE_OVERRIDE_SRCDIR),)
ENFORCE_LICENSE_FILES += \
	VENDOR/bitflags/LICENSE-APACHE \
	VENDOR/bitflags/LICENSE-MIT \
	VENDOR/byteorder/COPYING \
	VENDOR/byteorder/LICENSE-MIT \
	VENDOR/byteorder/UNLICENSE \
	VENDOR/hash32/LICENSE-APACHE \
	VENDOR/hash32/LICENSE-MIT \
	VENDOR/heapless/LICENSE-APACHE \
	VENDOR/heapless/LICENSE-MIT \
	VENDOR/lexopt/LICENSE \
	VENDOR/libbpf-sys/LICENSE \
	VENDOR/libbpf-sys/libbpf/LICENSE \
	VENDOR/libbpf-sys/libbpf/LICENSE.BSD-2-Clause \
	VENDOR/libbpf-sys/libbpf/LICENSE.LGPL-2.1 \
	VENDOR/libbpf-sys/elfutils/COPYING-GPLV2 \
	VENDOR/libbpf-sys/elfutils/COPYING-LGPLV3 \
	VENDOR/libbpf-sys/elfutils/COPYING \
	VENDOR/libbpf-sys/zlib/LICENSE \
	VENDOR/linux-raw-sys/LICENSE-APACHE \
	VENDOR/linux-raw-sys/LICENSE-Apache-2.0_WITH_LLVM-exception \
	VENDOR/linux-raw-sys/LICENSE-MIT \
	VENDOR/log/LICENSE-APACHE \
	VENDOR/log/LICENSE-MIT \
	VENDOR/rustix/LICENSE-APACHE \
	VENDOR/rustix/LICENSE-Apache-2.0_WITH_LLVM-exception \
	VENDOR/rustix/LICENSE-MIT \
	VENDOR/simple_logger/LICENSE \
	VENDOR/stable_deref_trait/LICENSE-APACHE \
	VENDOR/stable_deref_trait/LICENSE-MIT
endif

# ENFORCE_OVERRIDE_SRCDIR: do not copy a developer's build products.
ENFORCE_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /target --exclude /rootfs/probe/target --exclude /.cargo/musl/include

# host-clang/host-llvm: the BPF object (clang -target bpf, llvm-strip; see
# external.mk for the BPF backend). The rest: libbpf-sys builds its vendored
# elfutils with autoreconf and a maintainer-mode configure.
ENFORCE_DEPENDENCIES = \
	host-clang \
	host-llvm \
	host-autoconf \
	host-automake \
	host-libtool \
	host-gettext \
	host-flex \
	host-bison \
	host-m4 \
	host-gawk \
	host-pkgconf

# The target triple with underscores, as cc-rs spells its per-target variables.
ENFORCE_CC_TARGET = $(subst -,_,$(RUSTC_TARGET_NAME))

# - BPF_CLANG/BPF_STRIP: build.rs runs these for the BPF object.
# - CC_/AR_<target>: .cargo/config.toml points the x86_64 musl C compiler at a
#   host musl-gcc wrapper; the Buildroot cross compiler must win (cargo's [env]
#   does not override variables that are already set).
# - CFLAGS_<target>: the compile-only <argp.h> stub for elfutils on musl
#   (searched after the libc headers, so glibc's own argp.h wins). cc-rs adds it
#   to the CFLAGS Buildroot passes.
# - ac_cv_search_*: elfutils' configure insists on argp, fts and obstack, which
#   musl lacks and libelf does not use. .cargo/config.toml [env] says the same,
#   but vendoring at download time replaces that file with cargo's vendor
#   settings, so they are set here.
ENFORCE_CARGO_ENV = \
	BPF_CLANG=$(HOST_DIR)/bin/clang \
	BPF_STRIP=$(HOST_DIR)/bin/llvm-strip \
	CC_$(ENFORCE_CC_TARGET)="$(TARGET_CC)" \
	AR_$(ENFORCE_CC_TARGET)="$(TARGET_AR)" \
	CFLAGS_$(ENFORCE_CC_TARGET)="-idirafter $(@D)/.cargo/stubs" \
	ac_cv_search_argp_parse="none required" \
	ac_cv_search_fts_close="none required" \
	ac_cv_search__obstack_free="none required"

# ENFORCE_OVERRIDE_SRCDIR is rsynced, not downloaded, so nothing vendors its
# crates: fetch them (by Cargo.lock) into Buildroot's cargo home, where the
# --offline build finds them. `make enforce-source` of the same Cargo.lock has
# put them there already; otherwise this needs the network. A pre-build hook,
# so that host-rustc (a dependency) is already built.
ifneq ($(ENFORCE_OVERRIDE_SRCDIR),)
define ENFORCE_CARGO_FETCH
	cd $(@D) && $(TARGET_MAKE_ENV) $(PKG_CARGO_ENV) cargo fetch --locked
endef
ENFORCE_PRE_BUILD_HOOKS += ENFORCE_CARGO_FETCH
else ifeq ($(BR2_PACKAGE_ENFORCE):$(ENFORCE_VERSION),y:)
$(error enforce: $(ENFORCE_SITE) is not a git checkout: set ENFORCE_VERSION, or ENFORCE_OVERRIDE_SRCDIR in local.mk)
endif

# The agent goes to /usr/sbin (cargo install would put it in /usr/bin).
define ENFORCE_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 \
		$(@D)/target/$(RUSTC_TARGET_NAME)/$(if $(BR2_ENABLE_DEBUG),debug,release)/enforce \
		$(TARGET_DIR)/usr/sbin/enforce
	$(INSTALL) -D -m 0644 $(@D)/init/enforce.conf $(TARGET_DIR)/etc/enforce.conf
endef

# A kernel without BTF: its BTF made from the kernel's vmlinux (DWARF, so the
# kernel needs DEBUG_INFO) with pahole, for CO-RE relocation of the kprobe and
# tracepoint tiers, and the config pointed at it.
ifeq ($(BR2_PACKAGE_ENFORCE_KERNEL_BTF),y)
ENFORCE_DEPENDENCIES += linux host-pahole
define ENFORCE_INSTALL_KERNEL_BTF
	mkdir -p $(TARGET_DIR)/usr/lib/enforce
	$(HOST_DIR)/bin/pahole --btf_encode_detached=$(TARGET_DIR)/usr/lib/enforce/vmlinux.btf \
		$(LINUX_DIR)/vmlinux
	grep -q '^btf *=' $(TARGET_DIR)/etc/enforce.conf || \
		echo 'btf = /usr/lib/enforce/vmlinux.btf' >>$(TARGET_DIR)/etc/enforce.conf
endef
ENFORCE_POST_INSTALL_TARGET_HOOKS += ENFORCE_INSTALL_KERNEL_BTF
endif

# BusyBox init and SysV init. S05: after syslog (S01, S02), before the network
# (S40network) and sshd (S50).
define ENFORCE_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(@D)/init/S05enforce $(TARGET_DIR)/etc/init.d/S05enforce
endef

# OpenRC starts only what a runlevel links to (rc-update add enforce boot): the
# boot runlevel, where the network services are, which the service comes before.
define ENFORCE_INSTALL_INIT_OPENRC
	$(INSTALL) -D -m 0755 $(@D)/init/enforce.openrc $(TARGET_DIR)/etc/init.d/enforce
	$(INSTALL) -D -m 0644 $(@D)/init/enforce.confd $(TARGET_DIR)/etc/conf.d/enforce
	$(INSTALL) -d -m 0755 $(TARGET_DIR)/etc/runlevels/boot
	ln -sf /etc/init.d/enforce $(TARGET_DIR)/etc/runlevels/boot/enforce
endef

$(eval $(cargo-package))
