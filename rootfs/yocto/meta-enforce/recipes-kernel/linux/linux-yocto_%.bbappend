# Kernel options enforce needs (BPF-LSM with bpf in the LSM list, BTF, syscall
# tracepoints). Opt in from local.conf with ENFORCE_KERNEL_CONFIG = "1"; other
# kernel recipes can add file://enforce.cfg the same way.
FILESEXTRAPATHS:prepend := "${THISDIR}/files:"
SRC_URI:append = "${@' file://enforce.cfg' if d.getVar('ENFORCE_KERNEL_CONFIG') == '1' else ''}"
