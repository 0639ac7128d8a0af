################################################################################
#
# enforce
#
################################################################################

# Built from the source tree this external tree lives in (rootfs/buildroot/ ->
# the repository root). For a release build, set ENFORCE_SITE to a tarball or
# git URL and drop ENFORCE_SITE_METHOD: the cargo infrastructure then vendors
# the crates at download time, and ENFORCE_CARGO_FETCH is not used.
ENFORCE_VERSION = 0.1.0
ENFORCE_SITE = $(BR2_EXTERNAL_ENFORCE_PATH)/../..
ENFORCE_SITE_METHOD = local
# Buildroot writes SPDX GPL-2.0-only as GPL-2.0.
ENFORCE_LICENSE = GPL-2.0
ENFORCE_LICENSE_FILES = LICENSE

# Do not copy a developer's build products into the build directory.
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
# - CFLAGS_<target>: the compile-only <argp.h> stub for elfutils on musl and
#   uClibc (searched after the libc headers, so glibc's own argp.h wins). cc-rs
#   adds it to the CFLAGS Buildroot passes. The autoconf cache variables that
#   go with it come from .cargo/config.toml [env].
ENFORCE_CARGO_ENV = \
	BPF_CLANG=$(HOST_DIR)/bin/clang \
	BPF_STRIP=$(HOST_DIR)/bin/llvm-strip \
	CC_$(ENFORCE_CC_TARGET)="$(TARGET_CC)" \
	AR_$(ENFORCE_CC_TARGET)="$(TARGET_AR)" \
	CFLAGS_$(ENFORCE_CC_TARGET)="-idirafter $(@D)/.cargo/stubs"

# A local source (this tree, or ENFORCE_OVERRIDE_SRCDIR in local.mk) is
# rsynced, not downloaded, so the cargo download step that vendors the crates
# does not run: fetch them (by Cargo.lock) into Buildroot's cargo home, where
# the --offline build finds them. Needs the network once. A pre-build hook, so
# that host-rustc (a dependency) is already built.
ifneq ($(filter local,$(ENFORCE_SITE_METHOD))$(ENFORCE_OVERRIDE_SRCDIR),)
define ENFORCE_CARGO_FETCH
	cd $(@D) && $(TARGET_MAKE_ENV) $(PKG_CARGO_ENV) cargo fetch --locked
endef
ENFORCE_PRE_BUILD_HOOKS += ENFORCE_CARGO_FETCH
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

# BusyBox init and SysV init.
define ENFORCE_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(@D)/init/S50enforce $(TARGET_DIR)/etc/init.d/S50enforce
endef

define ENFORCE_INSTALL_INIT_OPENRC
	$(INSTALL) -D -m 0755 $(@D)/init/enforce.openrc $(TARGET_DIR)/etc/init.d/enforce
	$(INSTALL) -D -m 0644 $(@D)/init/enforce.confd $(TARGET_DIR)/etc/conf.d/enforce
endef

$(eval $(cargo-package))
