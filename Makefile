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
ZIG_VERSION := 0.17.1
ZIG_HOME    ?= $(HOME)/.cache/enforce-zig/$(ZIG_VERSION)
export ZIG_HOME

APT_PACKAGES := clang llvm musl-tools autoconf automake autopoint libtool flex bison gawk \
	m4 gettext pkg-config make bpftool qemu-system-x86 qemu-system-arm busybox-static cpio \
	xz-utils file util-linux python3 python3-pip

.PHONY: all aarch64 probe deps test unit-test fuzz-test fuzz host-test vm-test bench bench-vm run install clean

all: $(BIN)

# Rebuilt by cargo whenever a source changes; make just asks.
.PHONY: $(BIN) $(PROBE)
$(BIN):
	$(CARGO) build --release --target $(TARGET)
	@file $(BIN) | grep -q 'statically linked' || { echo "$(BIN) is not static" >&2; exit 1; }
	@ls -l $(BIN)

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

# Installs only what is missing, so it is quick on a prepared machine.
deps:
	@rootfs/apt-deps.sh $(APT_PACKAGES)
	@for t in $(TARGET) $(ARM64); do \
		rustup target list --installed | grep -qx $$t || rustup target add $$t || exit 1; \
	done
	@[ -x $(ZIG_HOME)/ziglang/zig ] || { \
		echo "fetching zig $(ZIG_VERSION) (PyPI: ziglang) into $(ZIG_HOME)"; \
		tmp=$$(mktemp -d) && \
		python3 -m pip download -q --no-deps --only-binary :all: -d $$tmp ziglang==$(ZIG_VERSION) && \
		mkdir -p $(ZIG_HOME) && python3 -m zipfile -e $$tmp/ziglang-*.whl $(ZIG_HOME) && \
		chmod +x $(ZIG_HOME)/ziglang/zig; rc=$$?; rm -rf $$tmp; exit $$rc; }

# Every test: unit tests, host tests (root, BPF on this kernel), VM tests (qemu).
test: deps unit-test fuzz-test host-test vm-test build-systems-test

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
# rootfs/yocto) against Cargo.toml, Cargo.lock and init/; needs only sh and python3.
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

vm-test: $(BIN) probe aarch64
	rootfs/vm-test.sh x86_64 $(BIN) $(PROBE)
	rootfs/vm-test-init.sh $(BIN) $(PROBE)
	rootfs/vm-test.sh arm64 $(ARM64_BIN) $(ARM64_PROBE)

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

# INIT=sysv or INIT=openrc also installs that init script; an existing config is kept.
INIT ?=
install: $(BIN)
	@case "$(INIT)" in sysv|openrc|"") ;; *) echo "INIT must be sysv or openrc" >&2; exit 2 ;; esac
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/enforce
	@[ -e $(DESTDIR)/etc/enforce.conf ] || install -D -m 0644 init/enforce.conf $(DESTDIR)/etc/enforce.conf
	@case "$(INIT)" in \
	sysv) install -D -m 0755 init/S50enforce $(DESTDIR)/etc/init.d/S50enforce ;; \
	openrc) install -D -m 0755 init/enforce.openrc $(DESTDIR)/etc/init.d/enforce && \
		{ [ -e $(DESTDIR)/etc/conf.d/enforce ] || install -D -m 0644 init/enforce.confd $(DESTDIR)/etc/conf.d/enforce; } ;; \
	esac

clean:
	$(CARGO) clean
	rm -rf rootfs/probe/target
