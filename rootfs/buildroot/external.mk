include $(sort $(wildcard $(BR2_EXTERNAL_ENFORCE_PATH)/package/*/*.mk))

# enforce compiles its BPF programs with host-clang, which needs the BPF backend
# in host-llvm. Buildroot builds that backend only with BR2_PACKAGE_LLVM_BPF, an
# option of the *target* llvm package; do not build llvm for the target just for
# that. HOST_LLVM_CONF_OPTS expands LLVM_TARGETS_TO_BUILD when host-llvm is
# configured, and external.mk is read after package/*/*.mk, so appending here
# works. A host-llvm built before enforce was enabled lacks the backend:
# `make host-llvm-dirclean` once.
ifeq ($(BR2_PACKAGE_ENFORCE),y)
ifneq ($(BR2_PACKAGE_LLVM_BPF),y)
LLVM_TARGETS_TO_BUILD += BPF
endif
endif
