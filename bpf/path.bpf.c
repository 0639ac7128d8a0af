// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * enforce, the `path` tier: for kernels without BTF.
 *
 * Every other tier reads kernel structures through BTF (LSM, fmod_ret and tp_btf
 * attach by it; kprobe and tracepoint programs use CO-RE relocations), and libbpf
 * demands the kernel's BTF for a whole object as soon as it has one CO-RE relocation.
 * So this tier is an object of its own with none: no vmlinux.h (whose types carry
 * preserve_access_index), only fixed layouts — the classic tracepoint formats and the
 * user-space ABI (a unit test checks it has no CO-RE relocation).  It loads where
 * nothing else can.
 *
 * What it matches is strings, not inodes: the path an open, a link or a rename names,
 * the file name exec reports, the destination a connect or send passes.  So it misses
 * every other name of a file (README: limits of the path tier).  Like the tracepoint
 * tier it kills; the syscall still runs, the signal lands on the way back.
 *
 * It declares the shared maps it uses from bpf/shared_maps.h, as bpf/enforce.bpf.c
 * does (the agent creates them from that source's maps-only object and this object
 * reuses them), and its own: deny_paths, path_scratch and path_agent, names no shared
 * map has, made by the agent only when the ladder brings this tier up.
 */

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define NULL ((void *)0)
#define true 1
#define false 0

/* The uapi values this object needs (linux/bpf.h is not usable for every target here). */
enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LPM_TRIE = 11,
	BPF_MAP_TYPE_RINGBUF = 27,
};
#define BPF_ANY 0
#define BPF_F_NO_PREALLOC (1U << 0)

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "enforce.h"

#define AF_UNSPEC 0
#define AF_INET 2
#define AF_INET6 10
#define SIN6_LEN_RFC2133 24
#define UIO_MAXIOV 1024
#define SIGKILL 9
#define CLONE_FILES 0x00000400
#define CLONE_THREAD 0x00010000

char LICENSE[] SEC("license") = "GPL";

_Static_assert(sizeof(struct enforce_settings) == 16, "settings layout");
_Static_assert(sizeof(struct enforce_handover) == 24, "handover layout");
_Static_assert(sizeof(struct enforce_path_agent) == 24, "path agent layout");
_Static_assert(sizeof(struct enforce_event) == 136, "event layout");
_Static_assert(sizeof(struct enforce_path_key) == ENFORCE_PATH_LEN, "path key layout");

/*
 * A syscall tracepoint's record (the `syscalls/sys_enter_*` format): the common
 * header, the syscall number, then the arguments as `unsigned long`, which is 4
 * bytes on 32-bit kernels.  The one arch-dependent layout of this object.
 */
#if defined(__TARGET_ARCH_arm) || defined(__TARGET_ARCH_i386)
typedef __u32 sysarg_t;
#else
typedef __u64 sysarg_t;
#endif
struct sys_enter {
	__u64 common;
	__s32 nr;
	sysarg_t args[6];
};
#define ARG_PTR(ctx, i) ((const void *)(unsigned long)(ctx)->args[i])

/* `sched/sched_process_exec`: common header, __data_loc char[] filename, pid, old_pid. */
struct sched_process_exec {
	__u64 common;
	__u32 filename_loc; /* offset in the record (low 16 bits), length (high 16) */
	__s32 pid;
	__s32 old_pid;
};

/* The user-space ABI of socket addresses (same on every architecture). */
struct sockaddr_in {
	__u16 sin_family;
	__be16 sin_port;
	__u8 sin_addr[4];
	__u8 sin_zero[8];
};

struct sockaddr_in6 {
	__u16 sin6_family;
	__be16 sin6_port;
	__be32 sin6_flowinfo;
	__u8 sin6_addr[16];
	__u32 sin6_scope_id;
};

/* struct user_msghdr: pointers and sizes are `unsigned long` wide. */
struct msghdr_user {
	sysarg_t msg_name;
	__s32 msg_namelen;
	sysarg_t msg_iov;
	sysarg_t msg_iovlen;
	sysarg_t msg_control;
	sysarg_t msg_controllen;
	__u32 msg_flags;
};

struct mmsghdr_user {
	struct msghdr_user msg_hdr;
	__u32 msg_len;
};

/* ---- the shared maps it uses (the agent's, reused by name) ---- */

#include "shared_maps.h"

/* The path tier's own: denied paths (and their last components).  Preallocated (the
 * agent sizes it to the names it writes): before 6.1 a tracing program that uses a
 * hash without preallocation makes the verifier warn in the kernel log. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct enforce_path_key);
	__type(value, struct enforce_inode_rule);
} deny_paths SEC(".maps");

/* Per-CPU room for a path and its last component (too large for the stack together). */
struct path_scratch {
	struct enforce_path_key path __attribute__((aligned(8)));
	struct enforce_path_key base __attribute__((aligned(8)));
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_scratch);
} path_scratch SEC(".maps");

/* Who the agent is, for is_agent() (enforce.h: struct enforce_path_agent). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct enforce_path_agent);
} path_agent SEC(".maps");

static __always_inline void count(__u32 counter)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &counter);

	if (n)
		*n += 1;
}

/*
 * The agent, which no generation denies: the hand-over names it by host PID and start
 * time, but the start time is in the task struct, which this object cannot read (no
 * BTF, no CO-RE, no kfunc).  Instead: its PID, and a random value the agent holds at
 * an address of its own memory (path_agent), read from the calling process.  A
 * process that got the PID after the agent died has other memory there, or none (the
 * read fails): it is not exempt.  Checked only for the agent's PID, so the read costs
 * nothing to anyone else.
 */
static __always_inline bool is_agent(const struct enforce_handover *h, __u32 pid)
{
	__u32 zero = 0;
	struct enforce_path_agent *a;
	__u64 held = 0;

	if (pid != h->agent_tgid)
		return false;
	a = bpf_map_lookup_elem(&path_agent, &zero);
	return a && a->tgid == pid && a->cookie && !bpf_probe_read_user(&held, sizeof(held), (const void *)a->cookie_addr) &&
	       held == a->cookie;
}

/* The hand-over, as in bpf/enforce.bpf.c: the generation the hand-over entry names
 * acts; beside it another acts only when both end what they deny (for this signal
 * tier: SIGKILL in enforce mode), the first of the two to kill ending the operation. */
static __always_inline bool acting(const struct enforce_settings *s, const struct enforce_handover *h)
{
	__u32 zero = 0;
	__u32 *gen = bpf_map_lookup_elem(&generation, &zero);

	if (gen && *gen == h->generation)
		return true;
	return (h->flags & ENFORCE_HANDOVER_EXACT) && s->mode == ENFORCE_MODE_ENFORCE && s->signal == SIGKILL;
}

/*
 * A rule matched: the same decision as the other tiers' act() (bpf/enforce.bpf.c),
 * canary children included, but for what needs the task struct.  dying() (an earlier hook already killed
 * the task) needs its pending signals: this tier has one program per operation, so
 * nothing counts an operation twice within a generation.
 */
static __noinline bool act(struct enforce_event *ev)
{
	__u32 tier = ENFORCE_TIER_PATH, zero = 0;
	struct enforce_settings *s = bpf_map_lookup_elem(&settings, &tier);
	struct enforce_handover *h = bpf_map_lookup_elem(&handover, &zero);
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	bool canary = ev->rule == ENFORCE_RULE_CANARY;
	bool deny;

	if (!s || !h || is_agent(h, pid))
		return false;
	if (!canary && (s->mode == ENFORCE_MODE_QUIET || canary_task(pid) || !acting(s, h)))
		return false;
	deny = canary || s->mode == ENFORCE_MODE_ENFORCE;
	if (pid == 1)
		deny = false; /* killing init panics the machine: reported as audited */
	else if (deny)
		ev->signal = s->signal;
	ev->pid = pid;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	ev->action = deny ? ENFORCE_ACTION_DENIED : ENFORCE_ACTION_AUDITED;
	ev->tier = ENFORCE_TIER_PATH;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	if (!canary)
		count(deny ? ENFORCE_COUNTER_DENIED : ENFORCE_COUNTER_AUDITED);
	if (bpf_ringbuf_output(&events, ev, sizeof(*ev), 0))
		count(ENFORCE_COUNTER_DROPPED);
	if (ev->signal)
		bpf_send_signal(ev->signal);
	return deny;
}

/*
 * A path or destination this tier could not read from the caller's memory: a page
 * not present, which a tracepoint may not fault in (the kernel's own copy, made after
 * it, faults it in and reads it).  Counted while the policy has rules of the class
 * (never otherwise) and the tier is not quiet; returns whether it was.
 */
static __always_inline bool unreadable_counted(__u8 class)
{
	__u32 tier = ENFORCE_TIER_PATH;
	struct enforce_settings *s = bpf_map_lookup_elem(&settings, &tier);
	__u32 flag = class == ENFORCE_CLASS_OPEN   ? ENFORCE_FLAG_OPEN_RULES
		     : class == ENFORCE_CLASS_EXEC ? ENFORCE_FLAG_EXEC_RULES
						   : ENFORCE_FLAG_CONNECT_RULES;

	if (!s || !(s->flags & flag) || s->mode == ENFORCE_MODE_QUIET)
		return false;
	count(ENFORCE_COUNTER_UNREADABLE);
	return true;
}

/* A destination: not reading it must never mean "allowed", and this tier has no state
 * of the kernel's to look at instead, so the caller is signalled, whatever it named. */
static __noinline bool unreadable_dest(__u8 op)
{
	struct enforce_event ev = {};

	if (!unreadable_counted(ENFORCE_CLASS_CONNECT))
		return false;
	ev.class = ENFORCE_CLASS_CONNECT;
	ev.op = op;
	ev.reason = ENFORCE_REASON_UNREADABLE;
	return act(&ev);
}

/* ---- paths ---- */

/* 1 when the bytes a and b are equal, else 0, in 64-bit arithmetic and opaque to
 * the compiler: the scan below must have no branch on the path's bytes (but its end),
 * or the verifier's states multiply with every '/' of every possible path. */
static __always_inline __u64 same(__u64 a, __u64 b)
{
	__u64 x = ((a ^ b) & 0xff) - 1; /* all ones when equal, else < 255 */

	x >>= 63;
	asm volatile("" : "+r"(x));
	return x;
}

/*
 * The rule for the path in `s->path` (`len` bytes with its NUL): the path itself;
 * else, when it is not a canonical absolute path (relative, or with an empty, "."
 * or ".." component), its last component, which the agent stores for every rule:
 * such a path may name a denied file by a way this tier cannot resolve (the working
 * directory, a directory descriptor), so it is taken for it — conservatively.
 */
static __noinline struct enforce_inode_rule *path_rule(struct path_scratch *s, long len)
{
	struct enforce_inode_rule *rule = bpf_map_lookup_elem(&deny_paths, &s->path);
	__u64 p1 = 0, p2 = 0, p3 = 0, odd = 0, last = 0;
	int i;

	if (rule || len <= 1)
		return rule;
	/* p1..p3: the previous three bytes; `odd` counts the signs of a non-canonical path. */
	for (i = 0; i < ENFORCE_PATH_LEN; i++) {
		__u64 c = (__u8)s->path.path[i];
		__u64 end = same(c, 0), slash = same(c, '/');
		__u64 sep = end | slash;

		if (i >= len)
			break;
		odd += same(p1, '/') & sep;                                      /* "//", or a trailing '/' */
		odd += same(p2, '/') & same(p1, '.') & sep;                    /* "/./" or a final "/." */
		odd += same(p3, '/') & same(p2, '.') & same(p1, '.') & sep;    /* "/../" or a final "/.." */
		last += (i + 1 - last) * slash;                                /* just past the last '/' */
		p3 = p2;
		p2 = p1;
		p1 = c;
		if (end)
			break;
	}
	if (s->path.path[0] == '/' && !odd)
		return NULL; /* canonical: only the exact string names a rule */
	__builtin_memset(&s->base, 0, sizeof(s->base));
	if (bpf_probe_read_kernel_str(s->base.path, sizeof(s->base.path), &s->path.path[last & (ENFORCE_PATH_LEN - 1)]) <= 1)
		return NULL;
	return bpf_map_lookup_elem(&deny_paths, &s->base);
}

static __always_inline struct path_scratch *scratch(void)
{
	__u32 zero = 0;
	struct path_scratch *s = bpf_map_lookup_elem(&path_scratch, &zero);

	if (s)
		__builtin_memset(&s->path, 0, sizeof(s->path));
	return s;
}

/* Reports and acts on `rule` for a class; false when that class has no rule there.
 * `newname`: the name a link, symlink or rename makes (in the caller's memory), which
 * the event carries so that whoever reads it knows where the file can now be reached. */
static __always_inline bool act_on(struct enforce_inode_rule *rule, __u8 class, const void *newname)
{
	struct enforce_event ev = {};
	__u32 id;

	if (!rule)
		return false;
	id = class == ENFORCE_CLASS_OPEN ? rule->open_rule : rule->exec_rule;
	if (!id)
		return false;
	ev.class = class;
	ev.op = class == ENFORCE_CLASS_OPEN ? ENFORCE_OP_OPEN : ENFORCE_OP_EXEC;
	ev.rule = id;
	if (newname)
		bpf_probe_read_user_str(ev.file, sizeof(ev.file), newname);
	return act(&ev);
}

/* A path in the caller's memory, checked for `class` (`newname`: see act_on()).  Out
 * of line: every open-family and alias program is only this call. */
static __noinline int user_path(const void *upath, __u8 class, const void *newname)
{
	struct path_scratch *s = scratch();
	long len;

	if (!s || !upath)
		return 0;
	len = bpf_probe_read_user_str(s->path.path, sizeof(s->path.path), upath);
	if (len > 0)
		act_on(path_rule(s, len), class, newname);
	else if (len < 0)
		/* Only counted: the strings of a program not yet run (the dynamic loader's
		 * own paths) are in pages it has not touched, so signalling here would kill
		 * ordinary programs at start (README: limits of the path tier). */
		unreadable_counted(class);
	return 0;
}

/* ================= open: the path as the caller passes it ================= */

SEC("tracepoint/syscalls/sys_enter_open")
int enf_path_open(struct sys_enter *ctx) { return user_path(ARG_PTR(ctx, 0), ENFORCE_CLASS_OPEN, NULL); }

SEC("tracepoint/syscalls/sys_enter_openat")
int enf_path_openat(struct sys_enter *ctx) { return user_path(ARG_PTR(ctx, 1), ENFORCE_CLASS_OPEN, NULL); }

SEC("tracepoint/syscalls/sys_enter_openat2")
int enf_path_openat2(struct sys_enter *ctx) { return user_path(ARG_PTR(ctx, 1), ENFORCE_CLASS_OPEN, NULL); }

SEC("tracepoint/syscalls/sys_enter_creat")
int enf_path_creat(struct sys_enter *ctx) { return user_path(ARG_PTR(ctx, 0), ENFORCE_CLASS_OPEN, NULL); }

/*
 * New names for a denied file: a hardlink to it, a symlink to it, or moving it away
 * (rename) would let it be reached by a name no rule holds, so the process that tries
 * is killed (the syscall may still have run: the new name is then there, and the
 * event says so).  Replacing a denied file (renaming onto its path) is not a way
 * around a path rule and is left alone: that is how passwd and package upgrades work.
 * One program per class, so each hook carries its own.
 */
#define ALIAS(syscall, cls, CLASS, old, new)                                                                 \
	SEC("tracepoint/syscalls/sys_enter_" #syscall)                                                       \
	int enf_path_##syscall##_##cls(struct sys_enter *ctx)                                                \
	{                                                                                                    \
		return user_path(ARG_PTR(ctx, old), CLASS, ARG_PTR(ctx, new));                               \
	}
/* The name the file is given, and the new name (argument indexes). */
#define ALIAS_PROGRAMS(cls, CLASS)                                                                          \
	ALIAS(link, cls, CLASS, 0, 1)                                                                       \
	ALIAS(linkat, cls, CLASS, 1, 3)                                                                     \
	ALIAS(symlink, cls, CLASS, 0, 1)                                                                    \
	ALIAS(symlinkat, cls, CLASS, 0, 2)                                                                  \
	ALIAS(rename, cls, CLASS, 0, 1)                                                                     \
	ALIAS(renameat, cls, CLASS, 1, 3)                                                                   \
	ALIAS(renameat2, cls, CLASS, 1, 3)

ALIAS_PROGRAMS(open, ENFORCE_CLASS_OPEN)
ALIAS_PROGRAMS(exec, ENFORCE_CLASS_EXEC)

/*
 * A clone that makes a new process (not a thread) share the caller's descriptor table:
 * this tier kills only the process that opens a denied file, and the descriptor would
 * stay in the table the other one goes on using.  So the caller is killed here while
 * the policy has open rules; with the signal pending, fork makes no child.  (This tier
 * sees no executable mapping, so a shared memory (CLONE_VM) holds nothing it denied.)
 */
static __noinline int shared_clone(__u64 flags)
{
	__u32 tier = ENFORCE_TIER_PATH;
	struct enforce_settings *s = bpf_map_lookup_elem(&settings, &tier);
	struct enforce_event ev = {};

	if (!s || (flags & CLONE_THREAD) || !(flags & CLONE_FILES) || !(s->flags & ENFORCE_FLAG_OPEN_RULES))
		return 0;
	ev.class = ENFORCE_CLASS_OPEN;
	ev.op = ENFORCE_OP_OPEN;
	ev.reason = ENFORCE_REASON_SHARED;
	act(&ev);
	return 0;
}

/* clone's flags are its first argument on every architecture. */
SEC("tracepoint/syscalls/sys_enter_clone")
int enf_path_clone(struct sys_enter *ctx) { return shared_clone(ctx->args[0]); }

/* clone3's are the first field of its arguments; ones that cannot be read are taken
 * for sharing ones. */
SEC("tracepoint/syscalls/sys_enter_clone3")
int enf_path_clone3(struct sys_enter *ctx)
{
	__u64 flags;

	if (bpf_probe_read_user(&flags, sizeof(flags), ARG_PTR(ctx, 0)))
		flags = CLONE_FILES;
	return shared_clone(flags);
}

/* ================= exec: the file name the kernel reports ================= */

/* The new image is in place and has not run an instruction: the kernel's own copy of
 * the name given to execve (a script's own name, not its interpreter's). */
SEC("tracepoint/sched/sched_process_exec")
int enf_path_exec(struct sched_process_exec *ctx)
{
	struct path_scratch *s = scratch();
	long len;

	if (!s)
		return 0;
	len = bpf_probe_read_kernel_str(s->path.path, sizeof(s->path.path),
					(const char *)ctx + (ctx->filename_loc & 0xffff));
	if (len > 0)
		act_on(path_rule(s, len), ENFORCE_CLASS_EXEC, NULL);
	return 0;
}

/* ================= connect and sends: the destination from the caller's memory ================= */

/*
 * A destination of `len` bytes at `uaddr` in the caller's memory, matched as the
 * other tiers match it (an IPv4-mapped IPv6 destination as IPv4).  AF_UNSPEC is
 * matched as AF_INET: IPv4 datagram sockets send to such an address; without the
 * socket (no task struct here) the family is not known, so this is conservative.
 */
static __noinline int check_dest(const void *uaddr, int len, __u8 op)
{
	struct sockaddr_in6 sa = {};
	struct enforce_event ev = {};
	__u16 family;
	long err;

	if (!uaddr)
		return 0;
	if (len >= (int)sizeof(struct sockaddr_in6))
		err = bpf_probe_read_user(&sa, sizeof(struct sockaddr_in6), uaddr);
	else if (len >= SIN6_LEN_RFC2133)
		err = bpf_probe_read_user(&sa, SIN6_LEN_RFC2133, uaddr);
	else if (len >= (int)sizeof(struct sockaddr_in))
		err = bpf_probe_read_user(&sa, sizeof(struct sockaddr_in), uaddr);
	else
		return 0;
	if (err) {
		unreadable_dest(op);
		return 0;
	}
	family = sa.sin6_family;
	if (family == AF_UNSPEC)
		family = AF_INET;
	if (family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;

		ev.family = AF_INET;
		ev.port = bpf_ntohs(in->sin_port);
		__builtin_memcpy(ev.addr, in->sin_addr, 4);
		ev.rule = net4_trie_rule(ev.addr, in->sin_port);
	} else if (family == AF_INET6 && len >= SIN6_LEN_RFC2133) {
		ev.port = bpf_ntohs(sa.sin6_port);
		if (is_v4_mapped(sa.sin6_addr)) {
			ev.family = AF_INET;
			__builtin_memcpy(ev.addr, sa.sin6_addr + 12, 4);
			ev.rule = net4_trie_rule(ev.addr, sa.sin6_port);
		} else {
			ev.family = AF_INET6;
			__builtin_memcpy(ev.addr, sa.sin6_addr, 16);
			ev.rule = net6_trie_rule(ev.addr, sa.sin6_port);
		}
	}
	if (!ev.rule)
		return 0;
	ev.class = ENFORCE_CLASS_CONNECT;
	ev.op = op;
	act(&ev);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int enf_path_connect(struct sys_enter *ctx)
{
	return check_dest(ARG_PTR(ctx, 1), (int)ctx->args[2], ENFORCE_OP_CONNECT);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int enf_path_sendto(struct sys_enter *ctx)
{
	return check_dest(ARG_PTR(ctx, 4), (int)ctx->args[5], ENFORCE_OP_SEND);
}

/* One message header of a sendmsg or sendmmsg.  A global function: the verifier checks
 * it once, not once per message of sendmmsg's loop. */
__noinline int enf_path_send_msghdr(unsigned long umsg)
{
	struct msghdr_user msg;

	if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)umsg)) {
		/* The header, and so the destination, could not be read. */
		unreadable_dest(ENFORCE_OP_SEND);
		return 1;
	}
	check_dest((const void *)(unsigned long)msg.msg_name, msg.msg_namelen, ENFORCE_OP_SEND);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enf_path_sendmsg(struct sys_enter *ctx)
{
	enf_path_send_msghdr(ctx->args[1]);
	return 0;
}

/* Every message of the vector (the kernel takes at most UIO_MAXIOV); a bounded loop,
 * not bpf_loop, which kernels before 5.17 lack. */
SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int enf_path_sendmmsg(struct sys_enter *ctx)
{
	unsigned long vec = ctx->args[1];
	__u32 vlen = ctx->args[2], i;

	for (i = 0; i < UIO_MAXIOV; i++) {
		if (i >= vlen || enf_path_send_msghdr(vec + i * sizeof(struct mmsghdr_user)))
			break;
	}
	return 0;
}
