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

# Buildroot writes SPDX GPL-2.0-only as GPL-2.0.
ENFORCE_LICENSE = GPL-2.0
ENFORCE_LICENSE_FILES = LICENSE

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

# BusyBox init and SysV init.
define ENFORCE_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(@D)/init/S50enforce $(TARGET_DIR)/etc/init.d/S50enforce
endef

# OpenRC starts only what a runlevel links to (rc-update add enforce default).
define ENFORCE_INSTALL_INIT_OPENRC
	$(INSTALL) -D -m 0755 $(@D)/init/enforce.openrc $(TARGET_DIR)/etc/init.d/enforce
	$(INSTALL) -D -m 0644 $(@D)/init/enforce.confd $(TARGET_DIR)/etc/conf.d/enforce
	$(INSTALL) -d -m 0755 $(TARGET_DIR)/etc/runlevels/default
	ln -sf /etc/init.d/enforce $(TARGET_DIR)/etc/runlevels/default/enforce
endef

$(eval $(cargo-package))
