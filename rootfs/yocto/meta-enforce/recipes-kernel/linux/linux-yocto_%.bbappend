# Kernel options enforce needs (BPF-LSM with bpf in the LSM list, BTF, syscall
# tracepoints): opt in with ENFORCE_KERNEL_CONFIG = "1" in local.conf. Without
# it nothing is added, so adding the layer alone changes no linux-yocto task
# signature. Other kernel recipes can add file://enforce.cfg the same way.
require ${@'linux-yocto-enforce.inc' if d.getVar('ENFORCE_KERNEL_CONFIG') == '1' else ''}
