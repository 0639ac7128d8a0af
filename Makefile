# enforce: build, test and install.  `make deps` once on a fresh Debian 12 machine
# (`make test` and `make run` run it for you).

PREFIX  ?= /usr
DESTDIR ?=
TARGET  ?= x86_64-unknown-linux-musl
CARGO   ?= cargo
BIN     := target/$(TARGET)/release/enforce
PROBE   := rootfs/probe/target/$(TARGET)/release/probe
FLOOR   := target/$(TARGET)/release/examples/floor
DEMO    := $(CURDIR)/target/demo
# The arm64 build: `make aarch64` (or TARGET=aarch64-unknown-linux-musl). zig, from
# PyPI's ziglang wheel, is its C compiler and linker (.cargo/zig/).
ARM64       := aarch64-unknown-linux-musl
ARM64_BIN   := target/$(ARM64)/release/enforce
ARM64_PROBE := rootfs/probe/target/$(ARM64)/release/probe
# The 32-bit ARM build: `make armv7` (hard-float ARMv7-A, musl), the same way, with
# zig's arm-linux-musleabihf (.cargo/zig/cc-armv7). Where rustup offers no rust-std
# for it (seen here: the download is a 404), std is built from the rust-src
# component with -Z build-std (RUSTC_BOOTSTRAP on the stable toolchain).
ARMV7       := armv7-unknown-linux-musleabihf
ARMV7_BIN   := target/$(ARMV7)/release/enforce
ARMV7_PROBE := rootfs/probe/target/$(ARMV7)/release/probe
ARMV7_STD    = $(shell rustup target list --installed 2>/dev/null | grep -qx $(ARMV7) || echo "-Z build-std=std,panic_abort")
ARMV7_CARGO  = $(if $(ARMV7_STD),RUSTC_BOOTSTRAP=1 )$(CARGO)
# The shipped agent of every target is built with std compiled from the rust-src
# component (-Z build-std, which RUSTC_BOOTSTRAP allows on the stable toolchain),
# without std's backtrace symbolizer and with its optimize_for_size feature. The
# symbolizer (gimli, addr2line, miniz_oxide, libunwind) was about 230 kB of a binary
# that is stripped and so has nothing for it to read; without it the agent stays
# under 1 MiB with its BPF objects. A plain `cargo build` (as Buildroot and
# Yocto run it) makes the same program on the prebuilt std, about 240 kB larger.
SMALL_STD   := -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size
SMALL_CARGO := RUSTC_BOOTSTRAP=1 $(CARGO)
ZIG_VERSION := 0.17.1
ZIG_HOME    ?= $(HOME)/.cache/enforce-zig/$(ZIG_VERSION)
export ZIG_HOME

APT_PACKAGES := clang llvm musl-tools autoconf automake autopoint libtool flex bison gawk \
	m4 gettext pkg-config make bpftool qemu-system-x86 qemu-system-arm busybox-static cpio \
	xz-utils zstd file util-linux python3 python3-pip dwarves qemu-user btrfs-progs \
	squashfs-tools erofs-utils e2fsprogs

.PHONY: all aarch64 armv7 armv7-unit-test probe deps test check unit-test fuzz-test fuzz host-test vm-test bench bench-vm run install clean

all: $(BIN)

# Rebuilt by cargo whenever a source changes; make just asks.
.PHONY: $(BIN) $(PROBE)
$(BIN):
	$(SMALL_CARGO) build --release --target $(TARGET) $(SMALL_STD)
	@file $(BIN) | grep -q 'statically linked' || { echo "$(BIN) is not static" >&2; exit 1; }
	@ls -l $(BIN)
	@rootfs/linked.sh $(TARGET) >$(BIN).linked && echo "linked in (crates, C libraries; licenses): $(BIN).linked" && \
		sed -n 's/^c \([^ ]*\) \([^ ]*\) .* \([a-z]*\)$$/  \1 \2 (\3)/p' $(BIN).linked

$(PROBE):
	$(CARGO) build --release --target $(TARGET) --manifest-path rootfs/probe/Cargo.toml

# 32-bit test programs (rootfs/compat) for the compat-syscall cases: static musl
# binaries built with zig, i386 for the x86_64 guests and 32-bit ARM for arm64. Both
# come with `probe`, so `aarch64` and `vm-test` build them too.
ZIG    ?= $(ZIG_HOME)/ziglang/zig
COMPAT := target/compat/open32-i386 target/compat/open32-arm
COMPAT_ZIG_TARGET_i386 := x86-linux-musl
COMPAT_ZIG_TARGET_arm  := arm-linux-musleabihf

target/compat/open32-%: rootfs/compat/open32.c
	@[ -x $(ZIG) ] || { echo "zig not found at $(ZIG) (run make deps)" >&2; exit 1; }
	@mkdir -p $(@D)
	$(ZIG) cc -target $(COMPAT_ZIG_TARGET_$*) -static -Os -s -o $@ $<
	@file $@ | grep -q 'statically linked' || { echo "$@ is not static" >&2; rm -f $@; exit 1; }

# A dynamic glibc program that dlopen()s a library, and the library, for the
# trusted-exec cases (libraries mapped executable from trusted filesystems only).
# zig links against glibc 2.34's symbols (dlopen in libc itself), which Debian 12's
# glibc (2.36) runs.
DYNAMIC := target/compat/dlopen-x86_64 target/compat/libhello-x86_64.so \
	target/compat/dlopen-aarch64 target/compat/libhello-aarch64.so
# 32-bit ARM's glibc is the hard-float gnueabihf one.
DYNAMIC_ARM := target/compat/dlopen-arm target/compat/libhello-arm.so

target/compat/dlopen-arm: rootfs/compat/dlopen.c
	@[ -x $(ZIG) ] || { echo "zig not found at $(ZIG) (run make deps)" >&2; exit 1; }
	@mkdir -p $(@D)
	$(ZIG) cc -target arm-linux-gnueabihf.2.34 -Os -s -o $@ $<

target/compat/libhello-arm.so: rootfs/compat/hello.c
	@[ -x $(ZIG) ] || { echo "zig not found at $(ZIG) (run make deps)" >&2; exit 1; }
	@mkdir -p $(@D)
	$(ZIG) cc -target arm-linux-gnueabihf.2.34 -shared -fPIC -Os -s -o $@ $<

target/compat/dlopen-%: rootfs/compat/dlopen.c
	@[ -x $(ZIG) ] || { echo "zig not found at $(ZIG) (run make deps)" >&2; exit 1; }
	@mkdir -p $(@D)
	$(ZIG) cc -target $*-linux-gnu.2.34 -Os -s -o $@ $<

target/compat/libhello-%.so: rootfs/compat/hello.c
	@[ -x $(ZIG) ] || { echo "zig not found at $(ZIG) (run make deps)" >&2; exit 1; }
	@mkdir -p $(@D)
	$(ZIG) cc -target $*-linux-gnu.2.34 -shared -fPIC -Os -s -o $@ $<

probe: $(PROBE) $(COMPAT) $(DYNAMIC)

aarch64:
	$(MAKE) TARGET=$(ARM64) all probe

# armv7: the agent, the guest's probe helper and the 32-bit ARM fixtures. open32-arm
# is a native program there.
.PHONY: $(ARMV7_BIN) $(ARMV7_PROBE)
armv7: $(ARMV7_BIN) $(ARMV7_PROBE) target/compat/open32-arm $(DYNAMIC_ARM)

$(ARMV7_BIN):
	$(SMALL_CARGO) build --release --target $(ARMV7) $(SMALL_STD)
	@file $(ARMV7_BIN) | grep -q 'ARM.*statically linked' || { echo "$(ARMV7_BIN) is not a static ARM binary" >&2; exit 1; }
	@ls -l $(ARMV7_BIN)
	@rootfs/linked.sh $(ARMV7) >$(ARMV7_BIN).linked

$(ARMV7_PROBE):
	$(ARMV7_CARGO) build --release --target $(ARMV7) $(ARMV7_STD) --manifest-path rootfs/probe/Cargo.toml

# The unit tests built for armv7 and run under qemu-arm (user mode): the ABI
# mirror's layout (src/abi.rs) and libbpf's open options on a 32-bit target. A
# target directory of their own, and panic=unwind (the test harness's): with the
# release profile's panic=abort, build-std builds std twice and rustc sees two `core`s.
armv7-unit-test:
	CARGO_TARGET_DIR=target/armv7-unit-test CARGO_PROFILE_RELEASE_PANIC=unwind \
		CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_RUNNER=qemu-arm \
		$(ARMV7_CARGO) test --release --target $(ARMV7) $(subst panic_abort,panic_unwind,$(ARMV7_STD)) --bins \
		-- --skip canary::tests::the_exit0_program_runs --skip follow::tests::
# canary::tests::the_exit0_program_runs execs the ARM exit-0 program, which this
# x86_64 kernel cannot run (qemu-arm emulates the test process, not the programs it
# starts; registering it in binfmt_misc would change the machine). The armhf VM boots
# run it for real: every exec canary there is that program (kprobe.canary.exec=ok).
# follow::tests:: make BPF maps, and qemu-arm does not implement bpf(2) (ENOSYS); they
# run in unit-test (x86_64), and the code they test has nothing 32-bit of its own.

# Installs only what is missing, so it is quick on a prepared machine.
deps:
	@rootfs/apt-deps.sh $(APT_PACKAGES)
	@for t in $(TARGET) $(ARM64); do \
		rustup target list --installed | grep -qx $$t || rustup target add $$t || exit 1; \
	done
	@rustup target list --installed | grep -qx $(ARMV7) || rustup target add $(ARMV7) 2>/dev/null || true
	@rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
	@[ -x $(ZIG_HOME)/ziglang/zig ] || { \
		echo "fetching zig $(ZIG_VERSION) (PyPI: ziglang) into $(ZIG_HOME)"; \
		tmp=$$(mktemp -d) && \
		python3 -m pip download -q --no-deps --only-binary :all: -d $$tmp ziglang==$(ZIG_VERSION) && \
		mkdir -p $(ZIG_HOME) && python3 -m zipfile -e $$tmp/ziglang-*.whl $(ZIG_HOME) && \
		chmod +x $(ZIG_HOME)/ziglang/zig; rc=$$?; rm -rf $$tmp; exit $$rc; }

# Every test: unit tests, host tests (root, BPF on this kernel), VM tests (qemu).
test: deps unit-test armv7-unit-test fuzz-test host-test vm-test build-systems-test

# The everyday subset: no cross builds, no VM (a few minutes).
check: unit-test fuzz-test host-test build-systems-test

unit-test:
	$(CARGO) test --release --target $(TARGET) --bins

# The config parser's fuzzer (src/config_fuzz.rs), on the stable toolchain: a bounded
# run in `make test`; `make fuzz FUZZ_SECS=600` for a longer one (FUZZING.md).
FUZZ_SECS ?= 20
fuzz-test:
	ENFORCE_FUZZ_SECS=20 $(CARGO) test --release --target $(TARGET) --bins fuzz_config_parser -- --nocapture

fuzz:
	ENFORCE_FUZZ_SECS=$(FUZZ_SECS) $(CARGO) test --release --target $(TARGET) --bins fuzz_config_parser -- --nocapture

host-test: $(BIN) probe
	$(CARGO) test --release --target $(TARGET) --test host --test reliability --test path -- --test-threads=1

# Static checks of the Buildroot external tree and the Yocto layer (rootfs/buildroot,
# rootfs/yocto) against Cargo.toml, Cargo.lock (licenses: what `cargo tree` says is
# linked) and init/; needs sh, python3 and cargo (offline).
# (check-buildroot and check-yocto below run those projects' own tools.)
.PHONY: build-systems-test
build-systems-test:
	rootfs/check-build-systems.sh

# Checks with Buildroot's and BitBake's own tools: check-package, defconfig loads,
# printvars, the BPF compile through Buildroot's clang wrapper (check-buildroot);
# bitbake -p / -g enforce, yocto-check-layer (check-yocto). NOT part of `make test`:
# they need a Buildroot tree and walnascar poky + meta-clang trees, which CI cannot
# fetch. What they printed here: rootfs/buildroot/CHECKS.md and
# rootfs/yocto/meta-enforce/CHECKS.md.
.PHONY: check-buildroot check-yocto
check-buildroot: $(BIN)
	@[ -n "$(BUILDROOT)" ] || { echo "usage: make check-buildroot BUILDROOT=/path/to/buildroot" >&2; exit 2; }
	@rootfs/apt-deps.sh shellcheck python3-magic python3-flake8 rsync bc file
	rootfs/buildroot/check.sh $(BUILDROOT)

check-yocto:
	@[ -n "$(POKY)" ] && [ -n "$(META_CLANG)" ] || \
		{ echo "usage: make check-yocto POKY=/path/to/poky META_CLANG=/path/to/meta-clang" >&2; exit 2; }
	@rootfs/apt-deps.sh chrpath diffstat gawk lz4 zstd xz-utils file cpio
	rootfs/yocto/check.sh $(POKY) $(META_CLANG)

vm-test: $(BIN) probe aarch64 armv7
	rootfs/vm-test.sh x86_64 $(BIN) $(PROBE)
	rootfs/vm-test-init.sh $(BIN) $(PROBE)
	rootfs/vm-test.sh arm64 $(ARM64_BIN) $(ARM64_PROBE)
	rootfs/vm-test.sh armhf $(ARMV7_BIN) $(ARMV7_PROBE)

# The cost floor of each tier for the benchmarks: empty programs on its hooks
# (bpf/floor.bpf.c, loaded by examples/floor.rs). Not part of the product.
.PHONY: $(FLOOR)
$(FLOOR):
	$(CARGO) build --release --target $(TARGET) --example floor

# Every figure of issue 11 against its target, natively (tests/bench.sh): per-tier
# cost against its floor, 10,000 rules against one, start, --check, stop, memory, the
# event path, and the profile. Asserts nothing.
bench: $(BIN) $(PROBE) $(FLOOR)
	tests/bench.sh $(BIN) $(PROBE) $(FLOOR)

# The VM tiers (lsm, fmodret, kprobe, tracepoint) against their floors, in the x86_64
# 6.1 VM booted with and without bpf in lsm= (rootfs/bench-vm.sh). Asserts nothing.
bench-vm: $(BIN) $(PROBE) $(FLOOR)
	rootfs/bench-vm.sh $(BIN) $(PROBE) $(FLOOR)

# The main job on an example config that denies a demo file it creates. The agent
# runs in a private mount namespace so that what it mounts (securityfs, tracefs)
# does not change this machine. Stop it with Ctrl-C.
run: deps $(BIN)
	@mkdir -p $(DEMO)
	@echo "this file is denied by the demo config" > $(DEMO)/secret
	@echo "this one is not" > $(DEMO)/public
	@sed 's|@DEMO@|$(DEMO)|g' init/demo.conf > $(DEMO)/enforce.conf
	@echo "demo: agent starting with $(DEMO)/enforce.conf; in another shell try"
	@echo "      cat $(DEMO)/secret   (denied)   and   cat $(DEMO)/public   (allowed)"
	unshare -m --propagation private $(BIN) --config $(DEMO)/enforce.conf

# INIT=sysv or INIT=openrc also installs that init script (OpenRC: linked into the boot
# runlevel, as rc-update add enforce boot does); an existing config is kept.
INIT ?=
install: $(BIN)
	@case "$(INIT)" in sysv|openrc|"") ;; *) echo "INIT must be sysv or openrc" >&2; exit 2 ;; esac
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/enforce
	@[ -e $(DESTDIR)/etc/enforce.conf ] || install -D -m 0644 init/enforce.conf $(DESTDIR)/etc/enforce.conf
	@case "$(INIT)" in \
	sysv) install -D -m 0755 init/S05enforce $(DESTDIR)/etc/init.d/S05enforce ;; \
	openrc) install -D -m 0755 init/enforce.openrc $(DESTDIR)/etc/init.d/enforce && \
		{ [ -e $(DESTDIR)/etc/conf.d/enforce ] || install -D -m 0644 init/enforce.confd $(DESTDIR)/etc/conf.d/enforce; } && \
		install -d -m 0755 $(DESTDIR)/etc/runlevels/boot && \
		ln -sf /etc/init.d/enforce $(DESTDIR)/etc/runlevels/boot/enforce ;; \
	esac

clean:
	$(CARGO) clean
	rm -rf rootfs/probe/target
