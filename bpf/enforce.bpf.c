// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * enforce: deny file open, exec (and executable mappings) and connect (and sends
 * with a destination) for the objects in the deny maps.
 *
 * One body per hook, shared by thin entry points per tier (the ladder, strongest
 * first; src/ladder.rs is the table the agent walks):
 *   lsm         BPF-LSM programs: the hook returns -EPERM
 *   fmodret     fmod_ret programs on the security_*() functions: -EPERM, without
 *               bpf in the LSM list (the function is skipped and its error returned)
 *   kprobe      kprobes on the same functions: the offender is signalled
 *   tracepoint  syscall tracepoints: the offender is signalled after the syscall
 * The synchronous tiers see what the kernel itself sees (copied addresses, the
 * opened file), so io_uring and 32-bit syscalls pass through them too.
 *
 * The maps are shared by every tier's object (the agent creates them once and
 * reuses their fds) and filled between load and attach. Each tier reads its own
 * settings entry, so a tier that only reports can sit beside one that denies.
 */
#include "vmlinux.h"
#if defined(__TARGET_ARCH_arm64)
/* vmlinux.h is generated on x86_64; arm64 kprobe arguments come from this uapi layout. */
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
#endif
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "enforce.h"

#define EPERM 1
#define EINPROGRESS 115
#define AF_UNSPEC 0
#define AF_INET 2
#define AF_INET6 10
#define PROT_READ 0x1
#define PROT_EXEC 0x4
#define MAP_ANONYMOUS 0x20
#define READ_IMPLIES_EXEC 0x0400000
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define SIN6_LEN_RFC2133 24 /* sockaddr_in6 without sin6_scope_id: the kernel accepts it */
#define UIO_MAXIOV 1024     /* the kernel's limit on sendmmsg's vlen */

char LICENSE[] SEC("license") = "GPL";

/* The layout both sides agree on; src/abi.rs pins the same numbers. */
_Static_assert(sizeof(struct enforce_settings) == 16, "settings layout");
_Static_assert(sizeof(struct enforce_inode_key) == 16, "inode key layout");
_Static_assert(sizeof(struct enforce_inode_rule) == 8, "inode rule layout");
_Static_assert(sizeof(struct enforce_net4_key) == 12, "net4 key layout");
_Static_assert(sizeof(struct enforce_net6_key) == 24, "net6 key layout");
_Static_assert(sizeof(struct enforce_event) == 72, "event layout");

/* Capacities below are placeholders: the agent sizes every map to its policy before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ENFORCE_TIER_MAX);
	__type(key, __u32);
	__type(value, struct enforce_settings);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct enforce_inode_key);
	__type(value, struct enforce_inode_rule);
} deny_inodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct enforce_net4_key);
	__type(value, struct enforce_net_rule);
} deny_net4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct enforce_net6_key);
	__type(value, struct enforce_net_rule);
} deny_net6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ENFORCE_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* The cheap first tests (see enforce.h).  The agent sizes inode_filter to the policy. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} inode_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ENFORCE_FOLLOWED_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} followed_inodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * ENFORCE_NET_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} net_filter SEC(".maps");

/* tracepoint tier: the descriptor of a connect in flight, for the exit check.  Task
 * storage: one small slot per thread that connects, made at its first connect and
 * freed with the thread, so a connect costs no allocation (a hash entry per connect
 * did, and its buckets took 256 kB of kernel memory). */
struct connect_pending {
	__u32 fd;
	__u32 pending;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct connect_pending);
} connect_fds SEC(".maps");

/*
 * Built a second time with ENFORCE_MAPS_ONLY (build.rs): the maps and nothing else,
 * the object the agent creates the shared maps from.  Without programs it has no CO-RE
 * relocation or kernel function to resolve, so libbpf does not parse the kernel's BTF
 * (5 MB, tens of milliseconds) just to create maps.
 */
#ifndef ENFORCE_MAPS_ONLY

static __always_inline void count(__u32 counter)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &counter);

	if (n)
		*n += 1; /* per-CPU: no other writer */
}

static __always_inline void report(struct enforce_event *ev)
{
	if (bpf_ringbuf_output(&events, ev, sizeof(*ev), 0))
		count(ENFORCE_COUNTER_DROPPED);
}

/* SIGKILL is already queued for this thread: an earlier hook of the same operation
 * (the exec whose ELF loader now maps the file) has killed it; do not count it twice. */
static __always_inline bool dying(void)
{
	return bpf_get_current_task_btf()->pending.signal.sig[0] & (1UL << (9 - 1));
}

/*
 * A rule matched: fill in who did it, report, count, and say whether to deny; a
 * signal tier sends its signal here.  The canary rule is acted on in every mode (it
 * proves the hook runs); in quiet mode nothing else is.  The agent itself is never
 * denied, and a signal tier never signals PID 1 (killing init panics the machine):
 * that is reported as audited.  A full ring buffer never changes the verdict.
 * Out of line (a BPF-to-BPF call), like follow() and match_sockaddr(): it runs only
 * on a match, and inlined into every program it made the object twice as large.
 */
static __noinline bool act(struct enforce_event *ev, __u32 tier)
{
	struct enforce_settings *s = bpf_map_lookup_elem(&settings, &tier);
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	bool canary = ev->rule == ENFORCE_RULE_CANARY;
	bool deny;

	if (!s || pid == s->agent_tgid || (!canary && s->mode == ENFORCE_MODE_QUIET))
		return false;
	if (tier >= ENFORCE_TIER_KPROBE && dying())
		return true;
	deny = canary || s->mode == ENFORCE_MODE_ENFORCE;
	if (tier >= ENFORCE_TIER_KPROBE) {
		if (pid == 1)
			deny = false;
		else if (deny)
			ev->signal = s->signal;
	}
	ev->pid = pid;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	ev->action = deny ? ENFORCE_ACTION_DENIED : ENFORCE_ACTION_AUDITED;
	ev->tier = tier;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	if (!canary) /* the self-test is not a denial of anything */
		count(deny ? ENFORCE_COUNTER_DENIED : ENFORCE_COUNTER_AUDITED);
	report(ev);
	if (ev->signal)
		bpf_send_signal(ev->signal);
	return deny;
}

/* An LSM or fmod_ret verdict.  barrier_var keeps clang from folding the two constants
 * into -(deny & 1), whose range the 6.12 verifier cannot see is within [-4095, 0]. */
static __always_inline int verdict(bool deny)
{
	int ret = 0;

	if (deny) {
		ret = -EPERM;
		barrier_var(ret);
	}
	return ret;
}

/* ---- files: open, exec, executable mappings ---- */

/* Only the field read here: CO-RE finds it in the kernel's struct bpf_map by name, and
 * the object carries no BTF for the real one (which pulls in hundreds of types). */
struct bpf_map___len {
	__u32 max_entries;
} __attribute__((preserve_access_index));

/* The filter bit and followed slot of inode number `ino` (enforce.h). */
static __always_inline __u64 inode_hash(__u64 ino)
{
	return (ino * ENFORCE_FILTER_MULT) >> 40;
}

/*
 * Whether inode number `ino` may be denied: its bit in inode_filter or its slot in
 * followed_inodes (enforce.h).  Two inlined array reads, where a hash lookup hashes
 * 16 bytes and walks a bucket: the path that matches nothing (nearly every open,
 * exec and mapping of a file) stops here.
 */
static __always_inline bool inode_maybe_denied(__u64 ino)
{
	__u32 words = ((struct bpf_map___len *)&inode_filter)->max_entries;
	__u64 b = inode_hash(ino);
	__u32 word = (b >> 6) & (words - 1), slot = b & (ENFORCE_FOLLOWED_SLOTS - 1);
	__u64 *w = bpf_map_lookup_elem(&inode_filter, &word);

	if (w && (*w & (1ULL << (b & 63))))
		return true;
	w = bpf_map_lookup_elem(&followed_inodes, &slot);
	return w && *w;
}

/* Deny by inode, once the filter let it through: one hash lookup.  Out of line: it
 * runs only for inodes the filter lets through. */
static __noinline bool match_inode(__u64 dev, __u64 ino, __u8 op, __u32 tier)
{
	struct enforce_inode_key key = { .dev = dev, .ino = ino };
	struct enforce_inode_rule *rule = bpf_map_lookup_elem(&deny_inodes, &key);
	struct enforce_event ev = {};
	__u32 id;

	if (!rule)
		return false;
	id = op == ENFORCE_OP_OPEN ? rule->open_rule : rule->exec_rule;
	if (!id)
		return false;
	ev.class = op == ENFORCE_OP_OPEN ? ENFORCE_CLASS_OPEN : ENFORCE_CLASS_EXEC;
	ev.op = op;
	ev.rule = id;
	ev.dev = dev;
	ev.ino = ino;
	return act(&ev, tier);
}

static __always_inline bool check_inode(__u64 dev, __u64 ino, __u8 op, __u32 tier)
{
	return inode_maybe_denied(ino) && match_inode(dev, ino, op, tier);
}

/* Typed arguments (LSM, fmod_ret, tp_btf): plain loads. */
static __always_inline bool check_file(struct file *file, __u8 op, __u32 tier)
{
	struct inode *inode = file->f_inode;

	return check_inode(inode->i_sb->s_dev, inode->i_ino, op, tier);
}

/*
 * Untyped pointers (kprobe arguments, what a tracepoint digs out).  Where the kernel
 * has bpf_rdonly_cast (6.2 on), the pointer is cast to its BTF type and read with
 * plain (fault-safe) loads; elsewhere each step is a bpf_probe_read_kernel call.
 * Either way the device is read only for inodes the filter lets through.  Out of
 * line: one copy serves every kprobe and tracepoint program.
 */
static __noinline bool check_file_core(struct file *file, __u8 op, __u32 tier)
{
	struct inode *inode;
	__u64 ino;

	if (bpf_ksym_exists(bpf_rdonly_cast)) {
		inode = bpf_core_cast(file, struct file)->f_inode;
		ino = inode->i_ino;
		return inode_maybe_denied(ino) && match_inode(inode->i_sb->s_dev, ino, op, tier);
	}
	inode = BPF_CORE_READ(file, f_inode);
	ino = BPF_CORE_READ(inode, i_ino);
	return inode_maybe_denied(ino) && match_inode(BPF_CORE_READ(inode, i_sb, s_dev), ino, op, tier);
}

/* Whether a mapping with `prot` (as the caller asked) is executable: READ_IMPLIES_EXEC
 * makes a readable mapping executable.  The LSM hooks get the effective prot. */
static __always_inline bool maps_exec(unsigned long prot)
{
	if (prot & PROT_EXEC)
		return true;
	if (!(prot & PROT_READ))
		return false;
	return bpf_get_current_task_btf()->personality & READ_IMPLIES_EXEC;
}

/* ---- connect and send ---- */

/* Whether some rule of the family (0: IPv4, 1: IPv6) covers part of the /16 that
 * `addr` starts with (net_filter, enforce.h): otherwise the tries are not walked. */
static __always_inline bool net_maybe_denied(const __u8 *addr, __u32 family6)
{
	__u32 slash16 = ((__u32)addr[0] << 8) | addr[1];
	__u32 word = family6 * ENFORCE_NET_FILTER_WORDS + (slash16 >> 6);
	__u64 *w = bpf_map_lookup_elem(&net_filter, &word);

	return w && (*w & (1ULL << (slash16 & 63)));
}

/* Rule id of the longest IPv4 match for this port, else for every port; 0 = none. */
static __always_inline __u32 net4_rule(const __u8 *addr, __u16 port_be)
{
	struct enforce_net4_key key = { .prefixlen = 64, .port = port_be };
	struct enforce_net_rule *rule;

	if (!net_maybe_denied(addr, 0))
		return 0;
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

	if (!net_maybe_denied(addr, 1))
		return 0;
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
 * Match a destination (copied into `sa`, `len` bytes valid) against the tries and
 * fill the event's object and rule; 0 when nothing matches.  An IPv4-mapped IPv6
 * destination is matched, and reported, as IPv4.  `unspec_as` is the family an
 * AF_UNSPEC address stands for: IPv4 UDP and raw sockets send to the address of an
 * AF_UNSPEC sockaddr as if it were AF_INET.
 */
static __noinline __u32 match_sockaddr(const struct sockaddr_in6 *sa, int len, __u16 unspec_as,
					    struct enforce_event *ev)
{
	__u16 family = sa->sin6_family;

	if (family == AF_UNSPEC)
		family = unspec_as;
	if (family == AF_INET && len >= (int)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		ev->family = AF_INET;
		ev->port = bpf_ntohs(in->sin_port);
		__builtin_memcpy(ev->addr, &in->sin_addr, 4);
		ev->rule = net4_rule(ev->addr, in->sin_port);
	} else if (family == AF_INET6 && len >= SIN6_LEN_RFC2133) {
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

/* Copy a sockaddr of `len` bytes (never more than given, never more than needed). */
static __always_inline int copy_sockaddr(struct sockaddr_in6 *dst, const void *src, int len, bool user)
{
	if (len >= (int)sizeof(struct sockaddr_in6))
		return user ? bpf_probe_read_user(dst, sizeof(struct sockaddr_in6), src)
			    : bpf_probe_read_kernel(dst, sizeof(struct sockaddr_in6), src);
	if (len >= SIN6_LEN_RFC2133)
		return user ? bpf_probe_read_user(dst, SIN6_LEN_RFC2133, src)
			    : bpf_probe_read_kernel(dst, SIN6_LEN_RFC2133, src);
	if (len >= (int)sizeof(struct sockaddr_in))
		return user ? bpf_probe_read_user(dst, sizeof(struct sockaddr_in), src)
			    : bpf_probe_read_kernel(dst, sizeof(struct sockaddr_in), src);
	return -1;
}

/* Check a destination address: the kernel's copy (synchronous tiers, kprobe) or the
 * caller's (tracepoint tier, which runs before the kernel copies it). */
static __always_inline bool check_sockaddr(const void *addr, int len, __u16 unspec_as, __u8 op, __u32 tier,
					   bool user)
{
	struct sockaddr_in6 sa = {};
	struct enforce_event ev = {};

	if (copy_sockaddr(&sa, addr, len, user) || !match_sockaddr(&sa, len, unspec_as, &ev))
		return false;
	ev.class = ENFORCE_CLASS_CONNECT;
	ev.op = op;
	return act(&ev, tier);
}

/* The family of the socket behind a send: sends are filtered on it first, since the
 * hook runs for every send of every socket. */
static __always_inline bool inet_family(__u16 family)
{
	return family == AF_INET || family == AF_INET6;
}

/* ---- rules follow a rename onto the incoming inode; deleted inodes leave the map ---- */

/*
 * `incoming` is about to replace `target` (rename over it): if the target is denied,
 * the incoming inode gets its rules (keeping any of its own) before the rename makes
 * it visible, so there is no window.  Done in every mode: it keeps the map true.
 */
static __noinline void follow(__u64 target_dev, __u64 target_ino, __u64 dev, __u64 ino, __u32 tier)
{
	struct enforce_inode_key target = { .dev = target_dev, .ino = target_ino };
	struct enforce_inode_key key = { .dev = dev, .ino = ino };
	struct enforce_inode_rule *rule = inode_maybe_denied(target_ino) ? bpf_map_lookup_elem(&deny_inodes, &target) : NULL;
	struct enforce_inode_rule merged, *own;
	struct enforce_settings *s;
	struct enforce_event ev = {};
	__u32 slot = inode_hash(ino) & (ENFORCE_FOLLOWED_SLOTS - 1);
	__u64 *flag;

	if (!rule)
		return;
	/* Before the entry exists: the filter must never hide a denied inode. */
	flag = bpf_map_lookup_elem(&followed_inodes, &slot);
	if (flag)
		*flag = 1;
	merged = *rule;
	own = bpf_map_lookup_elem(&deny_inodes, &key);
	if (own) {
		if (own->open_rule)
			merged.open_rule = own->open_rule;
		if (own->exec_rule)
			merged.exec_rule = own->exec_rule;
	}
	if (bpf_map_update_elem(&deny_inodes, &key, &merged, BPF_ANY)) {
		count(ENFORCE_COUNTER_FOLLOW_FAILED);
		return;
	}
	ev.rule = merged.open_rule ? merged.open_rule : merged.exec_rule;
	s = bpf_map_lookup_elem(&settings, &tier);
	if (!s || (s->mode == ENFORCE_MODE_QUIET && ev.rule != ENFORCE_RULE_CANARY))
		return;
	if (ev.rule != ENFORCE_RULE_CANARY)
		count(ENFORCE_COUNTER_FOLLOWED);
	ev.class = merged.open_rule ? ENFORCE_CLASS_OPEN : ENFORCE_CLASS_EXEC;
	ev.op = ENFORCE_OP_FOLLOW;
	ev.action = ENFORCE_ACTION_FOLLOWED;
	ev.tier = tier;
	ev.dev = dev;
	ev.ino = ino;
	ev.pid = bpf_get_current_pid_tgid() >> 32;
	ev.uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	report(&ev);
}

/* An inode is being freed: if it was deleted (no links), its entry can never match
 * again, and its number may be reused by an unrelated file. */
static __always_inline void forget(__u64 dev, __u64 ino, unsigned int nlink)
{
	struct enforce_inode_key key = { .dev = dev, .ino = ino };

	/* Runs for every inode the kernel frees: only a deleted one the filter may hold. */
	if (!nlink && inode_maybe_denied(ino))
		bpf_map_delete_elem(&deny_inodes, &key);
}

/* ================= tier 1: BPF-LSM ================= */

SEC("lsm/file_open")
int BPF_PROG(enf_lsm_open, struct file *file, int ret)
{
	if (ret)
		return ret;
	return verdict(check_file(file, ENFORCE_OP_OPEN, ENFORCE_TIER_LSM));
}

SEC("lsm/bprm_check_security")
int BPF_PROG(enf_lsm_exec, struct linux_binprm *bprm, int ret)
{
	if (ret)
		return ret;
	return verdict(check_file(bprm->file, ENFORCE_OP_EXEC, ENFORCE_TIER_LSM));
}

SEC("lsm/mmap_file")
int BPF_PROG(enf_lsm_mmap, struct file *file, unsigned long reqprot, unsigned long prot, unsigned long flags,
	     int ret)
{
	if (ret)
		return ret;
	if (!file || !(prot & PROT_EXEC))
		return 0;
	return verdict(check_file(file, ENFORCE_OP_MMAP, ENFORCE_TIER_LSM));
}

SEC("lsm/file_mprotect")
int BPF_PROG(enf_lsm_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot, int ret)
{
	struct file *file;

	if (ret)
		return ret;
	file = vma->vm_file;
	if (!file || !(prot & PROT_EXEC))
		return 0;
	return verdict(check_file(file, ENFORCE_OP_MPROTECT, ENFORCE_TIER_LSM));
}

SEC("lsm/socket_connect")
int BPF_PROG(enf_lsm_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	if (ret)
		return ret;
	return verdict(check_sockaddr(address, addrlen, AF_UNSPEC, ENFORCE_OP_CONNECT, ENFORCE_TIER_LSM, false));
}

SEC("lsm/socket_sendmsg")
int BPF_PROG(enf_lsm_send, struct socket *sock, struct msghdr *msg, int size, int ret)
{
	struct sock *sk = sock->sk;
	__u16 family;

	if (ret || !msg->msg_name || !sk) /* sk: the 6.12 verifier knows it may be NULL */
		return ret;
	family = sk->__sk_common.skc_family;
	if (!inet_family(family))
		return 0;
	return verdict(check_sockaddr(msg->msg_name, msg->msg_namelen, family == AF_INET ? AF_INET : AF_UNSPEC,
				      ENFORCE_OP_SEND, ENFORCE_TIER_LSM, false));
}

/* RENAME_EXCHANGE: security_inode_rename() calls this hook once per direction. */
SEC("lsm/inode_rename")
int BPF_PROG(enf_lsm_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
	     struct dentry *new_dentry, int ret)
{
	struct inode *target = new_dentry->d_inode, *incoming = old_dentry->d_inode;

	if (!ret && target && incoming)
		follow(target->i_sb->s_dev, target->i_ino, incoming->i_sb->s_dev, incoming->i_ino,
		       ENFORCE_TIER_LSM);
	return ret;
}

SEC("lsm/inode_free_security")
int BPF_PROG(enf_lsm_free, struct inode *inode)
{
	forget(inode->i_sb->s_dev, inode->i_ino, inode->i_nlink);
	return 0;
}

/* ================= tier 2: fmod_ret on security_*() ================= */
/* A non-zero return skips the function and becomes its return value. */

SEC("fmod_ret/security_file_open")
int BPF_PROG(enf_fmr_open, struct file *file, int ret)
{
	if (ret)
		return ret;
	return verdict(check_file(file, ENFORCE_OP_OPEN, ENFORCE_TIER_FMODRET));
}

SEC("fmod_ret/security_bprm_check")
int BPF_PROG(enf_fmr_exec, struct linux_binprm *bprm, int ret)
{
	if (ret)
		return ret;
	return verdict(check_file(bprm->file, ENFORCE_OP_EXEC, ENFORCE_TIER_FMODRET));
}

/* security_mmap_file() gets the prot the caller asked for (before READ_IMPLIES_EXEC). */
SEC("fmod_ret/security_mmap_file")
int BPF_PROG(enf_fmr_mmap, struct file *file, unsigned long prot, unsigned long flags, int ret)
{
	if (ret)
		return ret;
	if (!file || !maps_exec(prot))
		return 0;
	return verdict(check_file(file, ENFORCE_OP_MMAP, ENFORCE_TIER_FMODRET));
}

SEC("fmod_ret/security_file_mprotect")
int BPF_PROG(enf_fmr_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot, int ret)
{
	struct file *file;

	if (ret)
		return ret;
	file = vma->vm_file;
	if (!file || !(prot & PROT_EXEC))
		return 0;
	return verdict(check_file(file, ENFORCE_OP_MPROTECT, ENFORCE_TIER_FMODRET));
}

SEC("fmod_ret/security_socket_connect")
int BPF_PROG(enf_fmr_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	if (ret)
		return ret;
	return verdict(check_sockaddr(address, addrlen, AF_UNSPEC, ENFORCE_OP_CONNECT, ENFORCE_TIER_FMODRET, false));
}

SEC("fmod_ret/security_socket_sendmsg")
int BPF_PROG(enf_fmr_send, struct socket *sock, struct msghdr *msg, int size, int ret)
{
	struct sock *sk = sock->sk;
	__u16 family;

	if (ret || !msg->msg_name || !sk) /* sk: the 6.12 verifier knows it may be NULL */
		return ret;
	family = sk->__sk_common.skc_family;
	if (!inet_family(family))
		return 0;
	return verdict(check_sockaddr(msg->msg_name, msg->msg_namelen, family == AF_INET ? AF_INET : AF_UNSPEC,
				      ENFORCE_OP_SEND, ENFORCE_TIER_FMODRET, false));
}

#define RENAME_EXCHANGE (1 << 1)

/* Observes only: fentry, not fmod_ret. security_inode_rename() is called once,
 * with RENAME_EXCHANGE for a swap, so both directions are handled here. */
SEC("fentry/security_inode_rename")
int BPF_PROG(enf_fmr_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
	     struct dentry *new_dentry, unsigned int flags)
{
	struct inode *target = new_dentry->d_inode, *incoming = old_dentry->d_inode;

	if (!target || !incoming)
		return 0;
	follow(target->i_sb->s_dev, target->i_ino, incoming->i_sb->s_dev, incoming->i_ino, ENFORCE_TIER_FMODRET);
	if (flags & RENAME_EXCHANGE)
		follow(incoming->i_sb->s_dev, incoming->i_ino, target->i_sb->s_dev, target->i_ino,
		       ENFORCE_TIER_FMODRET);
	return 0;
}

SEC("fentry/security_inode_free")
int BPF_PROG(enf_fmr_free, struct inode *inode)
{
	forget(inode->i_sb->s_dev, inode->i_ino, inode->i_nlink);
	return 0;
}

/* ================= tier 3: kprobes on security_*(): signal ================= */

SEC("kprobe/security_file_open")
int BPF_KPROBE(enf_kp_open, struct file *file)
{
	check_file_core(file, ENFORCE_OP_OPEN, ENFORCE_TIER_KPROBE);
	return 0;
}

SEC("kprobe/security_bprm_check")
int BPF_KPROBE(enf_kp_exec, struct linux_binprm *bprm)
{
	check_file_core(BPF_CORE_READ(bprm, file), ENFORCE_OP_EXEC, ENFORCE_TIER_KPROBE);
	return 0;
}

SEC("kprobe/security_mmap_file")
int BPF_KPROBE(enf_kp_mmap, struct file *file, unsigned long prot)
{
	if (file && maps_exec(prot))
		check_file_core(file, ENFORCE_OP_MMAP, ENFORCE_TIER_KPROBE);
	return 0;
}

SEC("kprobe/security_file_mprotect")
int BPF_KPROBE(enf_kp_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot)
{
	struct file *file;

	if (!(prot & PROT_EXEC))
		return 0;
	file = BPF_CORE_READ(vma, vm_file);
	if (file)
		check_file_core(file, ENFORCE_OP_MPROTECT, ENFORCE_TIER_KPROBE);
	return 0;
}

SEC("kprobe/security_socket_connect")
int BPF_KPROBE(enf_kp_connect, struct socket *sock, struct sockaddr *address, int addrlen)
{
	check_sockaddr(address, addrlen, AF_UNSPEC, ENFORCE_OP_CONNECT, ENFORCE_TIER_KPROBE, false);
	return 0;
}

SEC("kprobe/security_socket_sendmsg")
int BPF_KPROBE(enf_kp_send, struct socket *sock, struct msghdr *msg)
{
	void *name = BPF_CORE_READ(msg, msg_name);
	__u16 family;

	if (!name)
		return 0;
	family = BPF_CORE_READ(sock, sk, __sk_common.skc_family);
	if (inet_family(family))
		check_sockaddr(name, BPF_CORE_READ(msg, msg_namelen), family == AF_INET ? AF_INET : AF_UNSPEC,
			       ENFORCE_OP_SEND, ENFORCE_TIER_KPROBE, false);
	return 0;
}

SEC("kprobe/security_inode_rename")
int BPF_KPROBE(enf_kp_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
	       struct dentry *new_dentry, unsigned int flags)
{
	struct inode *target = BPF_CORE_READ(new_dentry, d_inode), *incoming = BPF_CORE_READ(old_dentry, d_inode);
	__u64 tdev, tino, idev, iino;

	if (!target || !incoming)
		return 0;
	tino = BPF_CORE_READ(target, i_ino);
	iino = BPF_CORE_READ(incoming, i_ino);
	/* The devices are read only when one side may be denied (cheap first test). */
	if (!inode_maybe_denied(tino) && !((flags & RENAME_EXCHANGE) && inode_maybe_denied(iino)))
		return 0;
	tdev = BPF_CORE_READ(target, i_sb, s_dev);
	idev = BPF_CORE_READ(incoming, i_sb, s_dev);
	follow(tdev, tino, idev, iino, ENFORCE_TIER_KPROBE);
	if (flags & RENAME_EXCHANGE)
		follow(idev, iino, tdev, tino, ENFORCE_TIER_KPROBE);
	return 0;
}

SEC("kprobe/security_inode_free")
int BPF_KPROBE(enf_kp_free, struct inode *inode)
{
	/* Most freed inodes are still linked (evicted from the cache): one read says so. */
	if (BPF_CORE_READ(inode, i_nlink))
		return 0;
	forget(BPF_CORE_READ(inode, i_sb, s_dev), BPF_CORE_READ(inode, i_ino), 0);
	return 0;
}

/* ================= tier 4: syscall tracepoints: signal ================= */
/* The syscall has already run when the signal lands (on the way back to user space). */

/* The file behind a descriptor of the current task; NULL if none. */
static __always_inline struct file *current_fd_file(long fd)
{
	struct fdtable *fdt;
	struct file *file = NULL;

	/* Through an untrusted cast where there is one: a pointer loaded from a trusted one
	 * makes the verifier (6.2 on) search the kernel's whole BTF by name for a
	 * "__safe_trusted" variant, a linear search per load and path that took a quarter
	 * of --check's time on 6.18 (perf: btf_nested_type_is_trusted). */
	if (bpf_ksym_exists(bpf_rdonly_cast))
		fdt = bpf_core_cast(bpf_get_current_task_btf(), struct task_struct)->files->fdt;
	else
		fdt = bpf_get_current_task_btf()->files->fdt;

	if (fd < 0 || fd >= fdt->max_fds)
		return NULL;
	/* The descriptor's slot, a `struct file *`.  A cast needs a struct type: struct
	 * kiocb starts with one (ki_filp), which CO-RE confirms on the running kernel, so
	 * the slot is read with one plain load instead of a bpf_probe_read_kernel call. */
	if (bpf_ksym_exists(bpf_rdonly_cast) && bpf_core_field_offset(struct kiocb, ki_filp) == 0)
		return bpf_core_cast(&fdt->fd[fd], struct kiocb)->ki_filp;
	bpf_probe_read_kernel(&file, sizeof(file), &fdt->fd[fd]);
	return file;
}

/* After a successful open-family syscall: is the new descriptor a denied inode? */
static __always_inline int tp_opened(long ret)
{
	struct file *file;

	if (ret < 0)
		return 0;
	file = current_fd_file(ret);
	if (file)
		check_file_core(file, ENFORCE_OP_OPEN, ENFORCE_TIER_TRACEPOINT);
	return 0;
}

/* One program for the whole open family: the agent attaches it to sys_exit_open,
 * sys_exit_openat, sys_exit_openat2, sys_exit_creat and sys_exit_open_by_handle_at
 * (src/ladder.rs), so the kernel verifies and holds it once, not five times. */
SEC("tracepoint/syscalls/sys_exit_open")
int enf_tp_open(struct trace_event_raw_sys_exit *ctx) { return tp_opened(ctx->ret); }

/* The new image is in place and has not run an instruction yet. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(enf_tp_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	/* As in current_fd_file: the untrusted cast spares the verifier's name searches. */
	if (bpf_ksym_exists(bpf_rdonly_cast))
		check_file_core(bpf_core_cast(bprm, struct linux_binprm)->file, ENFORCE_OP_EXEC, ENFORCE_TIER_TRACEPOINT);
	else
		check_file(bprm->file, ENFORCE_OP_EXEC, ENFORCE_TIER_TRACEPOINT);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int enf_tp_mmap(struct trace_event_raw_sys_enter *ctx)
{
	struct file *file;

	if ((ctx->args[3] & MAP_ANONYMOUS) || !maps_exec(ctx->args[2]))
		return 0;
	file = current_fd_file((int)ctx->args[4]);
	if (file)
		check_file_core(file, ENFORCE_OP_MMAP, ENFORCE_TIER_TRACEPOINT);
	return 0;
}

struct vma_inode {
	__u64 dev;
	__u64 ino;
};

static long vma_inode(struct task_struct *task, struct vm_area_struct *vma, struct vma_inode *out)
{
	struct file *file = vma->vm_file;

	if (file) {
		out->dev = file->f_inode->i_sb->s_dev;
		out->ino = file->f_inode->i_ino;
	}
	return 0;
}

/* Only the mapping at the start address is checked (see the README's limits). */
SEC("tracepoint/syscalls/sys_enter_mprotect")
int enf_tp_mprotect(struct trace_event_raw_sys_enter *ctx)
{
	struct vma_inode found = {};

	if (!maps_exec(ctx->args[2]))
		return 0;
	if (bpf_find_vma(bpf_get_current_task_btf(), ctx->args[0], vma_inode, &found, 0) || !found.ino)
		return 0;
	check_inode(found.dev, found.ino, ENFORCE_OP_MPROTECT, ENFORCE_TIER_TRACEPOINT);
	return 0;
}

/*
 * connect: the address is checked at entry, from the caller's memory, which also
 * catches connects that fail; and again at exit from the socket's peer, which is what
 * the kernel really connected to (a thread may change the caller's copy in between).
 */
SEC("tracepoint/syscalls/sys_enter_connect")
int enf_tp_connect(struct trace_event_raw_sys_enter *ctx)
{
	int len = (int)ctx->args[2];
	struct sockaddr_in6 sa = {};
	struct enforce_event ev = {};
	struct connect_pending *p;

	if (copy_sockaddr(&sa, (void *)ctx->args[1], len, true))
		return 0;
	if (!match_sockaddr(&sa, len, AF_UNSPEC, &ev)) {
		/* Nothing matched here: look again at what the kernel connected to. */
		p = bpf_task_storage_get(&connect_fds, bpf_get_current_task_btf(), 0,
					 BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (p) {
			p->fd = ctx->args[0];
			p->pending = 1;
		}
		return 0;
	}
	ev.class = ENFORCE_CLASS_CONNECT;
	ev.op = ENFORCE_OP_CONNECT;
	act(&ev, ENFORCE_TIER_TRACEPOINT);
	return 0;
}

/* The connected peer of the socket behind `file`, as a sockaddr. */
static __always_inline int socket_peer(struct file *file, struct sockaddr_in6 *sa)
{
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (!file || (BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return -1;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	sa->sin6_port = BPF_CORE_READ(sk, __sk_common.skc_dport);
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)sa;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		return sizeof(struct sockaddr_in);
	}
	if (family == AF_INET6) {
		sa->sin6_family = AF_INET6;
		sa->sin6_addr = BPF_CORE_READ(sk, __sk_common.skc_v6_daddr);
		return sizeof(struct sockaddr_in6);
	}
	return -1;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int enf_tp_connected(struct trace_event_raw_sys_exit *ctx)
{
	struct connect_pending *p = bpf_task_storage_get(&connect_fds, bpf_get_current_task_btf(), 0, 0);
	struct sockaddr_in6 sa = {};
	struct enforce_event ev = {};
	__u32 fd;
	int len;

	if (!p || !p->pending)
		return 0;
	fd = p->fd;
	p->pending = 0;
	if (ctx->ret != 0 && ctx->ret != -EINPROGRESS)
		return 0;
	len = socket_peer(current_fd_file(fd), &sa);
	if (len < 0 || !match_sockaddr(&sa, len, AF_UNSPEC, &ev))
		return 0;
	ev.class = ENFORCE_CLASS_CONNECT;
	ev.op = ENFORCE_OP_CONNECT;
	act(&ev, ENFORCE_TIER_TRACEPOINT);
	return 0;
}

/* The family an AF_UNSPEC destination stands for on this descriptor (see match_sockaddr). */
static __always_inline __u16 unspec_family(int fd)
{
	struct sockaddr_in6 peer = {};

	return socket_peer(current_fd_file(fd), &peer) == sizeof(struct sockaddr_in) ? AF_INET : AF_UNSPEC;
}

/* A send with a destination, from the caller's memory; racy, like connect at entry. */
static __always_inline void tp_send(int fd, const void *addr, int len)
{
	struct sockaddr_in6 sa = {};
	struct enforce_event ev = {};
	__u16 unspec_as = AF_UNSPEC;

	if (!addr || copy_sockaddr(&sa, addr, len, true))
		return;
	if (sa.sin6_family == AF_UNSPEC)
		unspec_as = unspec_family(fd);
	if (!match_sockaddr(&sa, len, unspec_as, &ev))
		return;
	ev.class = ENFORCE_CLASS_CONNECT;
	ev.op = ENFORCE_OP_SEND;
	act(&ev, ENFORCE_TIER_TRACEPOINT);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int enf_tp_sendto(struct trace_event_raw_sys_enter *ctx)
{
	tp_send((int)ctx->args[0], (void *)ctx->args[4], (int)ctx->args[5]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enf_tp_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	struct user_msghdr msg;

	if (bpf_probe_read_user(&msg, sizeof(msg), (void *)ctx->args[1]))
		return 0;
	tp_send((int)ctx->args[0], msg.msg_name, msg.msg_namelen);
	return 0;
}

struct sendmmsg_walk {
	const struct mmsghdr *vec;
	int fd;
};

static long sendmmsg_one(__u32 i, struct sendmmsg_walk *walk)
{
	struct user_msghdr msg;

	if (bpf_probe_read_user(&msg, sizeof(msg), &walk->vec[i].msg_hdr))
		return 1;
	tp_send(walk->fd, msg.msg_name, msg.msg_namelen);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int enf_tp_sendmmsg(struct trace_event_raw_sys_enter *ctx)
{
	struct sendmmsg_walk walk = { .vec = (void *)ctx->args[1], .fd = (int)ctx->args[0] };
	__u32 vlen = ctx->args[2];

	bpf_loop(vlen < UIO_MAXIOV ? vlen : UIO_MAXIOV, sendmmsg_one, &walk, 0);
	return 0;
}

#endif /* ENFORCE_MAPS_ONLY */
