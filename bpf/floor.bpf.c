// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The cost floor of each tier, for `make bench` only (never in the product binary):
 * empty programs on exactly the hooks that tier of bpf/enforce.bpf.c attaches, so
 * that "the agent / this floor" is what our program bodies cost, and "this floor /
 * no programs" what the mechanism itself costs (trampolines, kprobes, the syscall
 * tracing slow path). Names: fl_TIER_*, TIER as in src/ladder.rs (lsm, fmr, kp, tp).
 * examples/floor.rs loads one tier's programs and attaches them all.
 *
 * Keep this list in step with src/ladder.rs (a unit test there compares the
 * section names of both objects).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define EMPTY(sec, name)                                                                                       \
	SEC(sec) int name(void *ctx) { return 0; }

/* lsm */
EMPTY("lsm/file_open", fl_lsm_open)
EMPTY("lsm/bprm_check_security", fl_lsm_exec)
EMPTY("lsm/mmap_file", fl_lsm_mmap)
EMPTY("lsm/file_mprotect", fl_lsm_mprotect)
EMPTY("lsm/socket_connect", fl_lsm_connect)
EMPTY("lsm/socket_sendmsg", fl_lsm_send)
EMPTY("lsm/inode_rename", fl_lsm_rename)
EMPTY("lsm/inode_free_security", fl_lsm_free)
EMPTY("lsm/inode_unlink", fl_lsm_unlink)

/* fmodret */
EMPTY("fmod_ret/security_file_open", fl_fmr_open)
EMPTY("fmod_ret/security_bprm_check", fl_fmr_exec)
EMPTY("fmod_ret/security_mmap_file", fl_fmr_mmap)
EMPTY("fmod_ret/security_file_mprotect", fl_fmr_mprotect)
EMPTY("fmod_ret/security_socket_connect", fl_fmr_connect)
EMPTY("fmod_ret/security_socket_sendmsg", fl_fmr_send)
EMPTY("fentry/security_inode_rename", fl_fmr_rename)
EMPTY("fentry/security_inode_free", fl_fmr_free)
EMPTY("fentry/security_inode_unlink", fl_fmr_unlink)

/* kprobe */
EMPTY("kprobe/security_file_open", fl_kp_open)
EMPTY("kprobe/security_bprm_check", fl_kp_exec)
EMPTY("kprobe/security_mmap_file", fl_kp_mmap)
EMPTY("kprobe/security_file_mprotect", fl_kp_mprotect)
EMPTY("kprobe/security_socket_connect", fl_kp_connect)
EMPTY("kprobe/security_socket_sendmsg", fl_kp_send)
EMPTY("kprobe/security_inode_rename", fl_kp_rename)
EMPTY("kprobe/security_inode_free", fl_kp_free)
EMPTY("kprobe/security_inode_unlink", fl_kp_unlink)

/* tracepoint */
EMPTY("tracepoint/syscalls/sys_exit_open", fl_tp_open)
EMPTY("tracepoint/syscalls/sys_exit_openat", fl_tp_openat)
EMPTY("tracepoint/syscalls/sys_exit_openat2", fl_tp_openat2)
EMPTY("tracepoint/syscalls/sys_exit_creat", fl_tp_creat)
EMPTY("tracepoint/syscalls/sys_exit_open_by_handle_at", fl_tp_openbh)
EMPTY("tracepoint/syscalls/sys_enter_clone", fl_tp_clone_files)
EMPTY("tracepoint/syscalls/sys_enter_clone3", fl_tp_clone3_files)
EMPTY("tp_btf/sched_process_exec", fl_tp_exec)
EMPTY("tp_btf/sched_process_exec", fl_tp_exec_interp)
EMPTY("tracepoint/syscalls/sys_enter_mmap", fl_tp_mmap)
EMPTY("tracepoint/syscalls/sys_enter_clone", fl_tp_clone_vm)
EMPTY("tracepoint/syscalls/sys_enter_clone3", fl_tp_clone3_vm)
EMPTY("tracepoint/syscalls/sys_exit_vfork", fl_tp_vforked)
EMPTY("tracepoint/syscalls/sys_exit_clone", fl_tp_cloned)
EMPTY("tracepoint/syscalls/sys_exit_clone3", fl_tp_cloned3)
EMPTY("tracepoint/syscalls/sys_enter_shmat", fl_tp_shmat)
EMPTY("tracepoint/syscalls/sys_enter_mprotect", fl_tp_mprotect)
EMPTY("tracepoint/syscalls/sys_enter_pkey_mprotect", fl_tp_pkey_mprotect)
EMPTY("tracepoint/syscalls/sys_enter_connect", fl_tp_connect)
EMPTY("tracepoint/syscalls/sys_exit_connect", fl_tp_connected)
EMPTY("tracepoint/syscalls/sys_enter_sendto", fl_tp_sendto)
EMPTY("tracepoint/syscalls/sys_enter_sendmsg", fl_tp_sendmsg)
EMPTY("tracepoint/syscalls/sys_enter_sendmmsg", fl_tp_sendmmsg)
