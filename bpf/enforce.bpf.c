// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * enforce: deny file open, exec and connect for the objects in the deny maps.
 *
 * LSM tier: the programs return -EPERM from the hook (enforce mode) or only
 * report (audit mode).  Every decision is one ring-buffer event.
 * The maps are filled by the agent between load and attach.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "enforce.h"

#define EPERM 1
#define AF_INET 2
#define AF_INET6 10

char LICENSE[] SEC("license") = "GPL";

/* The layout both sides agree on; src/abi.rs pins the same numbers. */
_Static_assert(sizeof(struct enforce_settings) == 16, "settings layout");
_Static_assert(sizeof(struct enforce_inode_key) == 16, "inode key layout");
_Static_assert(sizeof(struct enforce_inode_rule) == 8, "inode rule layout");
_Static_assert(sizeof(struct enforce_net4_key) == 12, "net4 key layout");
_Static_assert(sizeof(struct enforce_net6_key) == 24, "net6 key layout");
_Static_assert(sizeof(struct enforce_event) == 72, "event layout");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct enforce_settings);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENFORCE_MAX_INODE_RULES);
	__type(key, struct enforce_inode_key);
	__type(value, struct enforce_inode_rule);
} deny_inodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, ENFORCE_MAX_NET4_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct enforce_net4_key);
	__type(value, struct enforce_net_rule);
} deny_net4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, ENFORCE_MAX_NET6_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct enforce_net6_key);
	__type(value, struct enforce_net_rule);
} deny_net6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); /* the agent resizes it from the config */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ENFORCE_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 counter)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &counter);

	if (n)
		*n += 1; /* per-CPU: no other writer */
}

/* The settings, or NULL when the current task is the agent itself. */
static __always_inline struct enforce_settings *settings_for_current(void)
{
	__u32 zero = 0;
	struct enforce_settings *s = bpf_map_lookup_elem(&settings, &zero);

	if (!s || (bpf_get_current_pid_tgid() >> 32) == s->agent_tgid)
		return NULL;
	return s;
}

/*
 * Fill in who did it, report the event, count it, and say whether to deny; the
 * signal tier sends its signal here.  The canary rule is denied in every mode:
 * it proves the hook runs.  The signal tier never signals PID 1 (killing init
 * panics the machine): that is reported as audited.  A full ring buffer never
 * changes the verdict.
 */
static __always_inline bool decide(const struct enforce_settings *s, struct enforce_event *ev,
				   __u8 tier)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	bool deny = s->mode == ENFORCE_MODE_ENFORCE || ev->rule == ENFORCE_RULE_CANARY;

	if (tier == ENFORCE_TIER_SIGNAL && pid == 1)
		deny = false;
	if (tier == ENFORCE_TIER_SIGNAL && deny)
		ev->signal = s->signal;
	ev->pid = pid;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	ev->action = deny ? ENFORCE_ACTION_DENIED : ENFORCE_ACTION_AUDITED;
	ev->tier = tier;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	if (ev->rule != ENFORCE_RULE_CANARY) /* the self-test is not a denial of anything */
		count(deny ? ENFORCE_COUNTER_DENIED : ENFORCE_COUNTER_AUDITED);
	if (bpf_ringbuf_output(&events, ev, sizeof(*ev), 0))
		count(ENFORCE_COUNTER_DROPPED);
	if (ev->signal)
		bpf_send_signal(ev->signal);
	return deny;
}

static __always_inline struct enforce_inode_key inode_key(struct file *file)
{
	struct enforce_inode_key key = {
		.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev),
		.ino = BPF_CORE_READ(file, f_inode, i_ino),
	};
	return key;
}

/* Deny by inode: `class` picks the open or the exec rule of the entry. */
static __always_inline bool check_file(struct file *file, __u8 class, __u8 tier)
{
	struct enforce_inode_key key = inode_key(file);
	struct enforce_inode_rule *rule = bpf_map_lookup_elem(&deny_inodes, &key);
	struct enforce_settings *s;
	struct enforce_event ev = {};
	__u32 id;

	if (!rule)
		return 0;
	id = class == ENFORCE_CLASS_OPEN ? rule->open_rule : rule->exec_rule;
	if (!id)
		return 0;
	s = settings_for_current();
	if (!s)
		return 0;
	ev.class = class;
	ev.rule = id;
	ev.dev = key.dev;
	ev.ino = key.ino;
	return decide(s, &ev, tier);
}

/*
 * An LSM program's verdict: -EPERM or 0.  Since 6.12 the verifier checks that an LSM
 * program returns within [-4095, 0], but it does not follow the negation clang
 * emits for `deny ? -EPERM : 0` (-(deny & 1)).  barrier_var hides the constant from
 * clang, so each path returns a plain constant the verifier can see.
 */
static __always_inline int lsm_verdict(bool deny)
{
	int ret = 0;

	if (deny) {
		ret = -EPERM;
		barrier_var(ret);
	}
	return ret;
}

SEC("lsm/file_open")
int BPF_PROG(enforce_file_open, struct file *file, int ret)
{
	if (ret)
		return ret;
	return lsm_verdict(check_file(file, ENFORCE_CLASS_OPEN, ENFORCE_TIER_LSM));
}

SEC("lsm/bprm_check_security")
int BPF_PROG(enforce_exec, struct linux_binprm *bprm, int ret)
{
	if (ret)
		return ret;
	return lsm_verdict(check_file(BPF_CORE_READ(bprm, file), ENFORCE_CLASS_EXEC, ENFORCE_TIER_LSM));
}

/* Rule id of the longest IPv4 match for this port, else for every port; 0 = none. */
static __always_inline __u32 net4_rule(const __u8 *addr, __u16 port_be)
{
	struct enforce_net4_key key = { .prefixlen = 64, .port = port_be };
	struct enforce_net_rule *rule;

	__builtin_memcpy(key.addr, addr, 4);
	rule = bpf_map_lookup_elem(&deny_net4, &key);
	if (rule)
		return rule->rule;
	key.port = 0;
	rule = bpf_map_lookup_elem(&deny_net4, &key);
	return rule ? rule->rule : 0;
}

static __always_inline __u32 net6_rule(const __u8 *addr, __u16 port_be)
{
	struct enforce_net6_key key = { .prefixlen = 160, .port = port_be };
	struct enforce_net_rule *rule;

	__builtin_memcpy(key.addr, addr, 16);
	rule = bpf_map_lookup_elem(&deny_net6, &key);
	if (rule)
		return rule->rule;
	key.port = 0;
	rule = bpf_map_lookup_elem(&deny_net6, &key);
	return rule ? rule->rule : 0;
}

static __always_inline bool is_v4_mapped(const __u8 *a)
{
	return !(a[0] | a[1] | a[2] | a[3] | a[4] | a[5] | a[6] | a[7] | a[8] | a[9]) &&
	       a[10] == 0xff && a[11] == 0xff;
}

/*
 * Match a destination sockaddr (copied into `sa`, `addrlen` bytes valid) against
 * the tries.  Fills the event's object and rule; returns the rule id, 0 when
 * nothing matches.  An IPv4-mapped IPv6 destination is matched, and reported,
 * as IPv4.
 */
static __always_inline __u32 match_sockaddr(const struct sockaddr_in6 *sa, int addrlen,
					    struct enforce_event *ev)
{
	if (sa->sin6_family == AF_INET && addrlen >= (int)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		ev->family = AF_INET;
		ev->port = bpf_ntohs(in->sin_port);
		__builtin_memcpy(ev->addr, &in->sin_addr, 4);
		ev->rule = net4_rule(ev->addr, in->sin_port);
	} else if (sa->sin6_family == AF_INET6 && addrlen >= (int)sizeof(struct sockaddr_in6)) {
		const __u8 *a = sa->sin6_addr.in6_u.u6_addr8;

		ev->port = bpf_ntohs(sa->sin6_port);
		if (is_v4_mapped(a)) {
			ev->family = AF_INET;
			__builtin_memcpy(ev->addr, a + 12, 4);
			ev->rule = net4_rule(ev->addr, sa->sin6_port);
		} else {
			ev->family = AF_INET6;
			__builtin_memcpy(ev->addr, a, 16);
			ev->rule = net6_rule(ev->addr, sa->sin6_port);
		}
	}
	return ev->rule;
}

/* Copy size for a sockaddr of `addrlen` bytes: enough for either family, never more than given. */
static __always_inline __u32 sockaddr_copy_len(int addrlen)
{
	return addrlen >= (int)sizeof(struct sockaddr_in6) ? sizeof(struct sockaddr_in6)
							   : sizeof(struct sockaddr_in);
}

SEC("lsm/socket_connect")
int BPF_PROG(enforce_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	struct enforce_settings *s;
	struct enforce_event ev = {};
	struct sockaddr_in6 sa = {};

	if (ret)
		return ret;
	if (addrlen < (int)sizeof(struct sockaddr_in) ||
	    bpf_probe_read_kernel(&sa, sockaddr_copy_len(addrlen), address))
		return 0;
	if (!match_sockaddr(&sa, addrlen, &ev))
		return 0;
	s = settings_for_current();
	if (!s)
		return 0;
	ev.class = ENFORCE_CLASS_CONNECT;
	return lsm_verdict(decide(s, &ev, ENFORCE_TIER_LSM));
}

/*
 * Signal tier: where BPF-LSM cannot deny, kill the offender.  The syscall has
 * already run when the signal lands (on the way back to user space).
 */

/* The file behind a descriptor of the current task (CO-RE reads; NULL if none). */
static __always_inline struct file *current_fd_file(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;

	if (fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

/* After a successful open-family syscall: is the new descriptor a denied inode? */
static __always_inline int signal_on_open(struct trace_event_raw_sys_exit *ctx)
{
	struct file *file = current_fd_file(ctx->ret);

	if (file)
		check_file(file, ENFORCE_CLASS_OPEN, ENFORCE_TIER_SIGNAL);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_open")
int signal_open(struct trace_event_raw_sys_exit *ctx) { return signal_on_open(ctx); }

SEC("tracepoint/syscalls/sys_exit_openat")
int signal_openat(struct trace_event_raw_sys_exit *ctx) { return signal_on_open(ctx); }

SEC("tracepoint/syscalls/sys_exit_openat2")
int signal_openat2(struct trace_event_raw_sys_exit *ctx) { return signal_on_open(ctx); }

SEC("tracepoint/syscalls/sys_exit_creat")
int signal_creat(struct trace_event_raw_sys_exit *ctx) { return signal_on_open(ctx); }

/* The new image is in place and has not run an instruction yet. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(signal_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	check_file(BPF_CORE_READ(bprm, file), ENFORCE_CLASS_EXEC, ENFORCE_TIER_SIGNAL);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int signal_connect(struct trace_event_raw_sys_enter *ctx)
{
	int addrlen = (int)ctx->args[2];
	struct sockaddr_in6 sa = {};
	struct enforce_event ev = {};
	struct enforce_settings *s;

	if (addrlen < (int)sizeof(struct sockaddr_in) ||
	    bpf_probe_read_user(&sa, sockaddr_copy_len(addrlen), (void *)ctx->args[1]))
		return 0;
	if (!match_sockaddr(&sa, addrlen, &ev))
		return 0;
	s = settings_for_current();
	if (!s)
		return 0;
	ev.class = ENFORCE_CLASS_CONNECT;
	decide(s, &ev, ENFORCE_TIER_SIGNAL);
	return 0;
}
