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
 *
 * Built twice (build.rs): for kernels with their own BTF, and with
 * ENFORCE_NO_KERNEL_BTF for kernels without it, where the kprobe and tracepoint
 * programs relocate against a BTF file (`btf =`): nothing there may attach by, or
 * call a helper or kernel function typed by, the kernel's BTF.
 */
#ifdef ENFORCE_NO_KERNEL_BTF
/* The bodies only the LSM and fmod_ret entry points call are left unused there. */
#pragma clang diagnostic ignored "-Wunused-function"
#endif
#if defined(__TARGET_ARCH_arm)
/* vmlinux.h is generated on x86_64: its pt_regs is x86's. A 32-bit ARM kprobe's
 * context is the uapi `struct pt_regs` of 18 32-bit registers (bpf_tracing.h reads
 * uregs[]); it replaces the x86 one here. */
#define pt_regs pt_regs___x86
#endif
#include "vmlinux.h"
#if defined(__TARGET_ARCH_arm)
#undef pt_regs
struct pt_regs {
	__u32 uregs[18];
};
#endif
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

/*
 * One field of a kernel object, read with the target kernel's own size for it: on a
 * 32-bit kernel pointers and `unsigned long` are 4 bytes, while BPF_CORE_READ reads
 * the BPF side's 8 (the next field's bytes would land in the upper half, and an
 * array's stride would be wrong). The relocated size is read into a zeroed word,
 * so the value arrives zero-extended (little-endian targets). Integer and pointer
 * fields only. On 64-bit kernels this is BPF_CORE_READ's one step.
 */
#define KREAD(src, field)                                                                   \
	({                                                                                  \
		typeof(src) __ks = (src);                                                   \
		__u64 __kv = 0;                                                             \
		/* vmlinux.h's types carry preserve_access_index: &__ks->field relocates */ \
		bpf_probe_read_kernel(&__kv, bpf_core_field_size(__ks->field), &__ks->field); \
		(typeof(__ks->field))__kv;                                                  \
	})

#ifndef ENFORCE_MAPS_ONLY
#define BTRFS_SUPER_MAGIC 0x9123683e

/*
 * The device a rule names an inode by: the superblock's (`inode->i_sb->s_dev`), but on
 * btrfs, which numbers inodes per subvolume, the subvolume's own anonymous device,
 * which is also what `stat` reports (userspace resolves rules with it).  btrfs's types
 * come from the kernel's BTF (vmlinux's, or the btrfs module's when it was loaded
 * before the agent); without them the superblock's device is all there is (README:
 * filesystems).
 */
static __always_inline __u64 inode_dev(struct inode *inode)
{
	struct super_block *sb = KREAD(inode, i_sb);
	__u64 sub = 0;

	if (bpf_core_type_exists(struct btrfs_inode) && KREAD(sb, s_magic) == BTRFS_SUPER_MAGIC) {
		struct btrfs_inode *bi = (void *)((unsigned long)inode - bpf_core_field_offset(struct btrfs_inode, vfs_inode));

		sub = KREAD(KREAD(bi, root), anon_dev);
	}
	return sub ? sub : KREAD(sb, s_dev);
}
#endif

/* The current task, for CO-RE reads: bpf_get_current_task_btf() needs the kernel's
 * own BTF, which kernels built without CONFIG_DEBUG_INFO_BTF lack (the kprobe and
 * tracepoint tiers then relocate against a BTF file). */
#ifndef ENFORCE_MAPS_ONLY
static __always_inline struct task_struct *current_task(void)
{
	return (struct task_struct *)bpf_get_current_task();
}
#endif

#define EPERM 1
#define AF_UNSPEC 0
#define AF_INET 2
#define AF_INET6 10
#define PROT_READ 0x1
#define PROT_EXEC 0x4
#define PROT_WRITE 0x2
#define MAP_SHARED 0x01
#define MAP_ANONYMOUS 0x20
#define SHM_EXEC 0100000
#define READ_IMPLIES_EXEC 0x0400000
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFREG 0100000
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define SIGKILL 9
#define TICK_NS 10000000 /* one clock tick of /proc/PID/stat (USER_HZ = 100) */
#define SIN6_LEN_RFC2133 24 /* sockaddr_in6 without sin6_scope_id: the kernel accepts it */
#define UIO_MAXIOV 1024     /* the kernel's limit on sendmmsg's vlen */
#define SENDMMSG_ARM_MAX 32 /* 32-bit ARM: the messages of one sendmmsg checked (no bpf_loop) */
#define RENAME_EXCHANGE (1 << 1)
#define CLONE_VM 0x00000100
#define CLONE_FILES 0x00000400
#define CLONE_VFORK 0x00004000
#define CLONE_THREAD 0x00010000

char LICENSE[] SEC("license") = "GPL";

/* The layout both sides agree on; src/abi.rs pins the same numbers. */
_Static_assert(sizeof(struct enforce_settings) == 16, "settings layout");
_Static_assert(sizeof(struct enforce_handover) == 24, "handover layout");
_Static_assert(sizeof(struct enforce_inode_key) == 16, "inode key layout");
_Static_assert(sizeof(struct enforce_inode_rule) == 8, "inode rule layout");
_Static_assert(sizeof(struct enforce_net4_key) == 12, "net4 key layout");
_Static_assert(sizeof(struct enforce_net6_key) == 24, "net6 key layout");
_Static_assert(sizeof(struct enforce_event) == 136, "event layout");
_Static_assert(__builtin_offsetof(struct enforce_event, op) == 68, "event layout");
_Static_assert(__builtin_offsetof(struct enforce_event, file) == 72, "event layout");

/* Capacities below are placeholders: the agent sizes every map to its policy before load. */
#include "shared_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct enforce_inode_key);
	__type(value, struct enforce_inode_rule);
} deny_inodes SEC(".maps");

/* allow_exec_from: the filesystems (kernel s_dev) code may run from; value: config line. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, __u32);
} exec_allow SEC(".maps");

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
	__uint(max_entries, 4 * ENFORCE_NET_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} net_filter SEC(".maps");

/*
 * Built a second time with ENFORCE_MAPS_ONLY (build.rs): the maps and nothing else,
 * the object the agent creates the shared maps from.  Without programs it has no CO-RE
 * relocation or kernel function to resolve, so libbpf does not parse the kernel's BTF
 * (5 MB, tens of milliseconds) just to create maps.
 */
#ifndef ENFORCE_MAPS_ONLY

#ifndef ENFORCE_NO_KERNEL_BTF
/* tracepoint tier: the descriptor of a connect in flight, for the exit check (each
 * tracepoint object has its own: it is not among the shared maps).  Task
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

/* Task storage came in 5.11: before it, the hash below (the agent creates only the
 * map this kernel can have: src/tiers.rs). */
#define HAVE_TASK_STORAGE bpf_core_enum_value_exists(enum bpf_map_type, BPF_MAP_TYPE_TASK_STORAGE)
/* Whether the running kernel has a helper: CO-RE resolves it at load time to a
 * constant, so the verifier never walks the branch that calls a missing one. */
#define HAVE_HELPER(name) bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_##name)
#else
/* Without the kernel's BTF there is no task storage (bpf_task_storage_get takes a
 * BTF-typed task). */
#define HAVE_TASK_STORAGE 0
#endif
/* A hash by thread, one entry for the length of one connect; with more connects in
 * flight at once than it holds, the rest are checked at entry only.  Preallocated
 * (about 64 kB): before 6.1 a tracing program's run-time allocation from a hash is
 * unsafe, and the verifier says so with a kernel warning. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} connect_fds_hash SEC(".maps");

/* tracepoint tier: the memory of vfork children killed for a mapping (their waiting
 * parents'), until the parent returns from its clone or vfork (vfork_returned). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u32);
} vfork_poisoned SEC(".maps");

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
	return KREAD(current_task(), pending.signal.sig[0]) & (1UL << (9 - 1));
}

/* The agent: its host PID, started when it says (a PID reused after it died is not).
 * Its start time in ticks is compared by multiplying rather than by dividing the
 * nanoseconds: no 64-bit division, which not every JIT compiles (32-bit ARM's). */
static __always_inline bool is_agent(const struct enforce_handover *h, __u32 pid)
{
	__u64 started;

	if (pid != h->agent_tgid)
		return false;
	started = KREAD(KREAD(current_task(), group_leader), start_boottime);
	return started >= h->agent_start * TICK_NS && started < (h->agent_start + 1) * TICK_NS;
}

/*
 * The hand-over: while a reload (or an agent adopting a pinned set) has two
 * generations attached, exactly one acts on an operation.  That is the generation
 * the hand-over entry names.  Beside it, a generation may act only when both deny in
 * a way that ends the operation (a synchronous tier in enforce mode, or a signal
 * tier sending SIGKILL): the first of the two to deny ends it for the other (a
 * non-zero LSM or fmod_ret verdict skips the programs after it and our bodies pass
 * an earlier verdict on; a pending SIGKILL makes dying() true), so each denial is
 * made and counted once and there is no instant at which neither denies.
 */
static __always_inline bool acting(const struct enforce_settings *s, __u32 tier, const struct enforce_handover *h)
{
	__u32 zero = 0;
	__u32 *gen = bpf_map_lookup_elem(&generation, &zero);

	if (gen && *gen == h->generation)
		return true;
	return (h->flags & ENFORCE_HANDOVER_EXACT) && s->mode == ENFORCE_MODE_ENFORCE &&
	       (tier < ENFORCE_TIER_KPROBE || s->signal == SIGKILL);
}

/*
 * A rule matched: fill in who did it, report, count, and say whether to deny; a
 * signal tier sends its signal here.  The canary rule is acted on in every mode (it
 * proves the hook runs); in quiet mode nothing else is, nor by a generation that does
 * not act (the hand-over, above), nor on a gate's canary child (canary_tasks: another
 * gate's proof is not a policy matter).  The agent itself is never denied, and a signal
 * tier never signals PID 1 (killing init panics the machine): that is reported as
 * audited.  An operation whose task already has SIGKILL pending (an earlier hook, or
 * the other generation, killed it) is denied without a second report.  A full ring
 * buffer never changes the verdict.
 * Out of line (a BPF-to-BPF call), like follow() and match_sockaddr(): it runs only
 * on a match, and inlined into every program it made the object twice as large.
 */
static __noinline bool act(struct enforce_event *ev, __u32 tier)
{
	struct enforce_settings *s = bpf_map_lookup_elem(&settings, &tier);
	__u32 zero = 0;
	struct enforce_handover *h = bpf_map_lookup_elem(&handover, &zero);
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	bool canary = ev->rule == ENFORCE_RULE_CANARY;
	bool deny;

	if (!s || !h || is_agent(h, pid))
		return false;
	if (!canary && (s->mode == ENFORCE_MODE_QUIET || canary_task(pid) || !acting(s, tier, h)))
		return false;
	deny = canary || s->mode == ENFORCE_MODE_ENFORCE;
	if (dying())
		return deny;
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

/*
 * A destination the program could not read from the caller's memory: a page not
 * present, which a tracepoint may not fault in (the kernel's own copy, made after it,
 * faults it in and reads it).  Not reading it must never mean "allowed".  Counted, and
 * true, while the policy has connect rules (a device without them is never acted on
 * for it) and the tier is not quiet.
 */
static __always_inline bool unreadable_counted(__u32 tier)
{
	struct enforce_settings *s = bpf_map_lookup_elem(&settings, &tier);

	if (!s || !(s->flags & ENFORCE_FLAG_CONNECT_RULES) || s->mode == ENFORCE_MODE_QUIET)
		return false;
	count(ENFORCE_COUNTER_UNREADABLE);
	return true;
}

/* ...and where no state of the kernel's tells the destination afterwards (a send):
 * the caller is signalled, whatever it named. */
static __noinline bool unreadable_dest(__u8 op, __u32 tier)
{
	struct enforce_event ev = {};

	if (!unreadable_counted(tier))
		return false;
	ev.class = ENFORCE_CLASS_CONNECT;
	ev.op = op;
	ev.reason = ENFORCE_REASON_UNREADABLE;
	return act(&ev, tier);
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
#ifndef ENFORCE_NO_KERNEL_BTF
	__u32 words = ((struct bpf_map___len *)&inode_filter)->max_entries;
#else
	__u32 words = ENFORCE_INODE_FILTER_WORDS_NO_BTF; /* enforce.h */
#endif
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

#ifndef ENFORCE_MAPS_ONLY
extern int LINUX_KERNEL_VERSION __kconfig;

/*
 * The file an overlayfs file stands for: the real (upper or lower) file the overlay
 * opened, whose inode is what the rules name and what the hooks see when the overlay
 * opens it (the overlay's own inode is another, made per mount, by anyone who can
 * mount one: an unprivileged user in a user namespace).  Its private_data is the
 * real file, or from 6.13 a struct whose first member is it; NULL until the overlay's
 * open has run (the file_open hooks, which see the real file's own open next).
 * Overlays stack: two levels here.  Any other file is itself.
 */
static __always_inline struct file *real_file(struct file *file)
{
	for (int i = 0; i < 2; i++) {
		struct inode *inode = KREAD(file, f_inode);
		void *priv;

		if (!inode || KREAD(KREAD(inode, i_sb), s_magic) != OVERLAYFS_SUPER_MAGIC ||
		    (KREAD(inode, i_mode) & S_IFMT) != S_IFREG)
			break;
		priv = KREAD(file, private_data);
		if (!priv)
			break;
		if (LINUX_KERNEL_VERSION >= KERNEL_VERSION(6, 13, 0) && bpf_probe_read_kernel(&priv, sizeof(priv), priv))
			break;
		if (!priv)
			break;
		file = priv;
	}
	return file;
}
#endif

static __noinline bool check_file_core(struct file *file, __u8 op, __u32 tier);

/* Typed arguments (LSM, fmod_ret, tp_btf): plain loads; a file on overlayfs through
 * check_file_core, which finds the real file. */
static __always_inline bool check_file(struct file *file, __u8 op, __u32 tier)
{
	struct inode *inode = file->f_inode;

	if (inode->i_sb->s_magic == OVERLAYFS_SUPER_MAGIC)
		return check_file_core(file, op, tier);
	return inode_maybe_denied(inode->i_ino) && match_inode(inode_dev(inode), inode->i_ino, op, tier);
}

#define O_PATH 010000000

/*
 * Untyped pointers (kprobe arguments, what a tracepoint digs out).  Where the kernel
 * has bpf_rdonly_cast (6.2 on), the pointer is cast to its BTF type and read with
 * plain (fault-safe) loads; elsewhere each step is a bpf_probe_read_kernel call.
 * Either way the flags and the device are read only for inodes the filter lets
 * through.  An O_PATH descriptor is not an open (nothing can be read through it; the
 * kernel calls no file_open hook for it, so only the tracepoint tier, which sees every
 * new descriptor, meets one): `enforce --check-config` resolving a rule's path that
 * way must not be killed.  Out of line: one copy serves every kprobe and tracepoint
 * program.
 */
static __noinline bool check_file_core(struct file *file, __u8 op, __u32 tier)
{
	struct inode *inode;
	__u64 ino;

#ifndef ENFORCE_NO_KERNEL_BTF
	if (bpf_ksym_exists(bpf_rdonly_cast)) {
		struct file *f = bpf_core_cast(file, struct file);

		inode = f->f_inode;
		if (inode->i_sb->s_magic == OVERLAYFS_SUPER_MAGIC) {
			f = bpf_core_cast(real_file(file), struct file);
			inode = f->f_inode;
		}
		ino = inode->i_ino;
		if (!inode_maybe_denied(ino) || (op == ENFORCE_OP_OPEN && (f->f_flags & O_PATH)))
			return false;
		return match_inode(inode_dev(inode), ino, op, tier);
	}
#endif
	inode = KREAD(file, f_inode);
	if (KREAD(KREAD(inode, i_sb), s_magic) == OVERLAYFS_SUPER_MAGIC) {
		file = real_file(file);
		inode = KREAD(file, f_inode);
	}
	ino = KREAD(inode, i_ino);
	if (!inode_maybe_denied(ino) || (op == ENFORCE_OP_OPEN && (KREAD(file, f_flags) & O_PATH)))
		return false;
	return match_inode(inode_dev(inode), ino, op, tier);
}

/* Whether a mapping with `prot` (as the caller asked) is executable: READ_IMPLIES_EXEC
 * makes a readable mapping executable.  The LSM hooks get the effective prot. */
static __always_inline bool maps_exec(unsigned long prot)
{
	if (prot & PROT_EXEC)
		return true;
	if (!(prot & PROT_READ))
		return false;
	return KREAD(current_task(), personality) & READ_IMPLIES_EXEC;
}

/*
 * Exec of a file, or a mapping of it made executable: a deny_exec rule, then the
 * allow list (allow_exec_from: the file's filesystem must be one the config names).
 * `name` is the file as the kernel names it (a kernel string), for the event.
 */
/* BPF functions take at most five arguments: op, tier and canary travel as one word. */
#define HOW(op, tier, canary) ((__u32)(op) << 16 | (__u32)(canary) << 8 | (tier))

static __noinline bool untrusted(__u64 fsdev, __u64 ino, const char *name, __u32 how)
{
	__u32 tier = how & 0xff;
	__u8 op = how >> 16;
	bool canary = (how >> 8) & 1;
	struct enforce_settings *s = bpf_map_lookup_elem(&settings, &tier);
	struct enforce_event ev = {};

	if (!s || !(canary || (s->flags & ENFORCE_FLAG_ALLOW_LIST)) || bpf_map_lookup_elem(&exec_allow, &fsdev))
		return false;
	ev.class = ENFORCE_CLASS_EXEC;
	ev.op = op;
	ev.reason = ENFORCE_REASON_UNTRUSTED;
	ev.rule = canary ? ENFORCE_RULE_CANARY : 0;
	ev.dev = fsdev;
	ev.ino = ino;
	bpf_probe_read_kernel_str(ev.file, sizeof(ev.file), name);
	return act(&ev, tier);
}

/* `dev` names the inode (inode_dev), `fsdev` its filesystem (the superblock's). */
static __always_inline bool check_exec(__u64 dev, __u64 fsdev, __u64 ino, const char *name, __u8 op, __u32 tier)
{
	struct enforce_inode_key key = { .dev = dev, .ino = ino };
	struct enforce_inode_rule *rule = NULL;
	bool canary = false;

	if (inode_maybe_denied(ino))
		rule = bpf_map_lookup_elem(&deny_inodes, &key);
	if (rule && rule->exec_rule) {
		if (rule->exec_rule != ENFORCE_RULE_ALLOW_CANARY)
			return match_inode(dev, ino, op, tier);
		canary = true;
	}
	return untrusted(fsdev, ino, name, HOW(op, tier, canary));
}

static __always_inline bool check_exec_file_core(struct file *file, const char *name, __u8 op, __u32 tier);

static __always_inline bool check_exec_file(struct file *file, const char *name, __u8 op, __u32 tier)
{
	struct inode *inode = file->f_inode;

	if (inode->i_sb->s_magic == OVERLAYFS_SUPER_MAGIC)
		return check_exec_file_core(file, name, op, tier);
	return check_exec(inode_dev(inode), inode->i_sb->s_dev, inode->i_ino, name, op, tier);
}

static __always_inline bool check_exec_file_core(struct file *file, const char *name, __u8 op, __u32 tier)
{
	struct inode *inode = KREAD(real_file(file), f_inode);

	return check_exec(inode_dev(inode), KREAD(KREAD(inode, i_sb), s_dev), KREAD(inode, i_ino), name, op, tier);
}

/* A file's own name (its dentry's): what a mapping's event can name. */
static __always_inline const char *file_name(struct file *file)
{
	return (const char *)KREAD(KREAD(file, f_path.dentry), d_name.name);
}

/*
 * allow_anon_exec = no: memory no file vouches for made executable — an anonymous
 * mapping, a private file mapping that is also writable, a mapping whose pages were
 * written (copy-on-write) made executable.  The anonymous-memory canary's child is
 * named in settings.canary_tgid: it has no inode to carry a canary rule.
 */
static __noinline bool anon_exec(__u8 op, __u32 tier)
{
	struct enforce_settings *s = bpf_map_lookup_elem(&settings, &tier);
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct enforce_event ev = {};
	bool canary;

	if (!s)
		return false;
	canary = s->canary_tgid && pid == s->canary_tgid;
	if (!canary && !(s->flags & ENFORCE_FLAG_DENY_ANON))
		return false;
	ev.class = ENFORCE_CLASS_EXEC;
	ev.op = op;
	ev.reason = ENFORCE_REASON_ANON;
	ev.rule = canary ? ENFORCE_RULE_CANARY : 0;
	return act(&ev, tier);
}

/* mmap: what a mapping with these (requested or effective) prot and flags needs. */
static __always_inline bool writable_exec(unsigned long prot, unsigned long flags)
{
	return (prot & PROT_WRITE) && !(flags & MAP_SHARED);
}

/* ---- connect and send ---- */

/* Whether some rule of the family (0: IPv4, 1: IPv6) and kind (0: for one port, 1:
 * for every port) covers part of the /16 that `addr` starts with (net_filter,
 * enforce.h): otherwise that kind's trie lookup is not made. */
static __always_inline bool net_maybe_denied(const __u8 *addr, __u32 family6, __u32 every_port)
{
	__u32 slash16 = ((__u32)addr[0] << 8) | addr[1];
	__u32 word = (every_port * 2 + family6) * ENFORCE_NET_FILTER_WORDS + (slash16 >> 6);
	__u64 *w = bpf_map_lookup_elem(&net_filter, &word);

	return w && (*w & (1ULL << (slash16 & 63)));
}

/* Rule id of the longest match for this port, else for every port; 0 = none.  Each
 * lookup is made only when the filter says a rule of its kind may cover the address:
 * a blocklist of networks (every port) does not walk its trie for a destination
 * whose /16 holds only rules for single ports, nor the other way round. */
static __always_inline __u32 net4_rule(const __u8 *addr, __u16 port_be)
{
	__u32 rule = net_maybe_denied(addr, 0, 0) ? net4_trie_lookup(addr, port_be) : 0;

	return rule || !net_maybe_denied(addr, 0, 1) ? rule : net4_trie_lookup(addr, 0);
}

static __always_inline __u32 net6_rule(const __u8 *addr, __u16 port_be)
{
	__u32 rule = net_maybe_denied(addr, 1, 0) ? net6_trie_lookup(addr, port_be) : 0;

	return rule || !net_maybe_denied(addr, 1, 1) ? rule : net6_trie_lookup(addr, 0);
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

/* Copy a sockaddr of `len` bytes (never more than given, never more than needed): 0,
 * or < 0 when it could not be read, or 1 when it is too short to be an inet address. */
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
	return 1;
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

/* ---- rules follow a rename onto the incoming inode; lost names are reported; deleted
 * inodes leave the map ---- */

/*
 * Reports a rule that follows its file (`ev` has the rule, the op and the action):
 * the canary's always, others only in the acting generation and outside quiet mode
 * (every generation keeps its own maps true; one reports).  Returns whether it did.
 */
static __always_inline bool report_follow(struct enforce_event *ev, __u32 class_of_open, __u64 dev, __u64 ino,
					  __u32 tier)
{
	struct enforce_settings *s = bpf_map_lookup_elem(&settings, &tier);
	__u32 zero = 0, *gen = bpf_map_lookup_elem(&generation, &zero);
	struct enforce_handover *h = bpf_map_lookup_elem(&handover, &zero);

	if (!s || !h || !gen ||
	    (ev->rule != ENFORCE_RULE_CANARY && (s->mode == ENFORCE_MODE_QUIET || *gen != h->generation)))
		return false;
	ev->class = class_of_open ? ENFORCE_CLASS_OPEN : ENFORCE_CLASS_EXEC;
	ev->op = ENFORCE_OP_FOLLOW;
	ev->tier = tier;
	ev->dev = dev;
	ev->ino = ino;
	ev->pid = bpf_get_current_pid_tgid() >> 32;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	/* A lost name is counted apart (ENFORCE_COUNTER_UNLINKED): its record is not an
	 * event of the totals, so losing it is not counted as a dropped one. */
	if (ev->action == ENFORCE_ACTION_UNLINKED)
		bpf_ringbuf_output(&events, ev, sizeof(*ev), 0);
	else
		report(ev);
	return true;
}

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
	ev.action = ENFORCE_ACTION_FOLLOWED;
	if (report_follow(&ev, merged.open_rule, dev, ino, tier) && ev.rule != ENFORCE_RULE_CANARY)
		count(ENFORCE_COUNTER_FOLLOWED);
}

/*
 * A denied inode loses a name (unlink, or a rename that moves it away): the rule's
 * path may next name a new file, which only the agent can find, by re-resolving the
 * path and watching its directory until then (src/follow.rs).  The hooks run before
 * the name goes, so the agent watches until the path names another inode.  Counted in
 * every mode and generation, so that a report lost to a full ring buffer is noticed.
 */
static __noinline void unlinked(__u64 dev, __u64 ino, __u32 tier)
{
	struct enforce_inode_key key = { .dev = dev, .ino = ino };
	struct enforce_inode_rule *rule = bpf_map_lookup_elem(&deny_inodes, &key);
	struct enforce_event ev = {};

	if (!rule)
		return;
	ev.rule = rule->open_rule ? rule->open_rule : rule->exec_rule;
	if ((rule->open_rule && rule->open_rule != ENFORCE_RULE_CANARY) ||
	    (rule->exec_rule && rule->exec_rule < ENFORCE_RULE_ALLOW_CANARY))
		count(ENFORCE_COUNTER_UNLINKED);
	ev.action = ENFORCE_ACTION_UNLINKED;
	report_follow(&ev, rule->open_rule, dev, ino, tier);
}

/* An inode is being freed: if it was deleted (no links), its entry can never match
 * again, and its number may be reused by an unrelated file. */
static __always_inline void forget(struct inode *inode, __u64 ino, unsigned int nlink)
{
	/* Runs for every inode the kernel frees: only a deleted one the filter may hold. */
	if (!nlink && inode_maybe_denied(ino)) {
		struct enforce_inode_key key = { .dev = inode_dev(inode), .ino = ino };

		bpf_map_delete_elem(&deny_inodes, &key);
	}
}

/*
 * The bodies of the hooks whose arguments are typed (LSM and fmod_ret programs): the
 * tiers' entry points below only add their tier and their return convention.
 */
static __always_inline bool on_exec(struct linux_binprm *bprm, __u32 tier)
{
	return check_exec_file(bprm->file, bprm->filename, ENFORCE_OP_EXEC, tier);
}

/*
 * An argument that may be NULL: the 6.12 verifier takes LSM hook arguments for
 * non-NULL and drops a program's own NULL check, so a NULL one (mmap_file's file for
 * anonymous memory, a rename's missing target) oopsed the kernel.  Read as a plain
 * number it is checked for real, and read through with CO-RE reads.
 */
static __always_inline void *nullable_arg(unsigned long long *ctx, int i)
{
	void *p = NULL;

	bpf_probe_read_kernel(&p, sizeof(p), &ctx[i]);
	return p;
}

/* mmap, for the LSM, fmod_ret and kprobe tiers. `file` may be NULL (anonymous
 * memory); `prot` as the caller asked (fmod_ret, kprobe) or effective (LSM):
 * maps_exec() takes both. */
static __always_inline bool on_mmap(struct file *file, unsigned long prot, unsigned long flags, __u32 tier)
{
	if (!maps_exec(prot))
		return false;
	if ((!file || writable_exec(prot, flags)) && anon_exec(ENFORCE_OP_MMAP, tier))
		return true;
	return file && check_exec_file_core(file, file_name(file), ENFORCE_OP_MMAP, tier);
}

/* A rename, for the LSM, fmod_ret and kprobe tiers: the rule of a replaced denied file
 * moves to the incoming inode; with RENAME_EXCHANGE (never in LSM, which is called
 * once per direction) both ways. */
static __always_inline void on_rename(struct dentry *old_dentry, struct dentry *new_dentry, unsigned int flags,
				      __u32 tier)
{
	struct inode *target = KREAD(new_dentry, d_inode), *incoming = KREAD(old_dentry, d_inode);
	__u64 tdev, tino, idev, iino;

	if (!incoming) /* a negative dentry */
		return;
	iino = KREAD(incoming, i_ino);
	/* A denied inode moved away from its name (an exchange leaves a denied one there). */
	if (!(flags & RENAME_EXCHANGE) && inode_maybe_denied(iino))
		unlinked(inode_dev(incoming), iino, tier);
	if (!target) /* a new name */
		return;
	tino = KREAD(target, i_ino);
	/* The devices are read only when one side may be denied (cheap first test). */
	if (!inode_maybe_denied(tino) && !((flags & RENAME_EXCHANGE) && inode_maybe_denied(iino)))
		return;
	tdev = inode_dev(target);
	idev = inode_dev(incoming);
	follow(tdev, tino, idev, iino, tier);
	if (flags & RENAME_EXCHANGE)
		follow(idev, iino, tdev, tino, tier);
}

/* An unlink, for the LSM, fmod_ret and kprobe tiers. */
static __always_inline void on_unlink(struct dentry *dentry, __u32 tier)
{
	struct inode *inode = KREAD(dentry, d_inode);
	__u64 ino;

	if (!inode)
		return;
	ino = KREAD(inode, i_ino);
	if (inode_maybe_denied(ino))
		unlinked(inode_dev(inode), ino, tier);
}

static __always_inline bool on_mprotect(struct vm_area_struct *vma, unsigned long prot, __u32 tier)
{
	struct file *file = vma->vm_file;

	if (!(prot & PROT_EXEC))
		return false;
	if ((!file || vma->anon_vma) && anon_exec(ENFORCE_OP_MPROTECT, tier))
		return true;
	return file && check_exec_file(file, file_name(file), ENFORCE_OP_MPROTECT, tier);
}

static __always_inline bool on_send(struct socket *sock, struct msghdr *msg, __u32 tier)
{
	struct sock *sk = sock->sk;
	__u16 family;

	if (!msg->msg_name || !sk) /* sk: the 6.12 verifier knows it may be NULL */
		return false;
	family = sk->__sk_common.skc_family;
	if (!inet_family(family))
		return false;
	return check_sockaddr(msg->msg_name, msg->msg_namelen, family == AF_INET ? AF_INET : AF_UNSPEC, ENFORCE_OP_SEND,
			      tier, false);
}

#ifndef ENFORCE_NO_KERNEL_BTF
/* (LSM and fmod_ret programs attach by the kernel's own BTF: not in the object for
 * kernels without it.) */
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
	return verdict(on_exec(bprm, ENFORCE_TIER_LSM));
}

SEC("lsm/mmap_file")
int BPF_PROG(enf_lsm_mmap, struct file *file, unsigned long reqprot, unsigned long prot, unsigned long flags,
	     int ret)
{
	if (ret)
		return ret;
	return verdict(on_mmap(nullable_arg(ctx, 0), prot, flags, ENFORCE_TIER_LSM));
}

SEC("lsm/file_mprotect")
int BPF_PROG(enf_lsm_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot, int ret)
{
	if (ret)
		return ret;
	return verdict(on_mprotect(vma, prot, ENFORCE_TIER_LSM));
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
	if (ret)
		return ret;
	return verdict(on_send(sock, msg, ENFORCE_TIER_LSM));
}

/* RENAME_EXCHANGE: security_inode_rename() calls this hook once per direction. */
SEC("lsm/inode_rename")
int BPF_PROG(enf_lsm_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
	     struct dentry *new_dentry, int ret)
{
	if (!ret)
		on_rename(old_dentry, new_dentry, 0, ENFORCE_TIER_LSM);
	return ret;
}

SEC("lsm/inode_unlink")
int BPF_PROG(enf_lsm_unlink, struct inode *dir, struct dentry *dentry, int ret)
{
	if (!ret)
		on_unlink(dentry, ENFORCE_TIER_LSM);
	return ret;
}

SEC("lsm/inode_free_security")
int BPF_PROG(enf_lsm_free, struct inode *inode)
{
	forget(inode, inode->i_ino, inode->i_nlink);
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
	return verdict(on_exec(bprm, ENFORCE_TIER_FMODRET));
}

/* security_mmap_file() gets the prot the caller asked for (before READ_IMPLIES_EXEC). */
SEC("fmod_ret/security_mmap_file")
int BPF_PROG(enf_fmr_mmap, struct file *file, unsigned long prot, unsigned long flags, int ret)
{
	if (ret)
		return ret;
	return verdict(on_mmap(nullable_arg(ctx, 0), prot, flags, ENFORCE_TIER_FMODRET));
}

SEC("fmod_ret/security_file_mprotect")
int BPF_PROG(enf_fmr_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot, int ret)
{
	if (ret)
		return ret;
	return verdict(on_mprotect(vma, prot, ENFORCE_TIER_FMODRET));
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
	if (ret)
		return ret;
	return verdict(on_send(sock, msg, ENFORCE_TIER_FMODRET));
}

/* Observes only: fentry, not fmod_ret. security_inode_rename() is called once,
 * with RENAME_EXCHANGE for a swap, so both directions are handled here. */
SEC("fentry/security_inode_rename")
int BPF_PROG(enf_fmr_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
	     struct dentry *new_dentry, unsigned int flags)
{
	on_rename(old_dentry, new_dentry, flags, ENFORCE_TIER_FMODRET);
	return 0;
}

SEC("fentry/security_inode_unlink")
int BPF_PROG(enf_fmr_unlink, struct inode *dir, struct dentry *dentry)
{
	on_unlink(dentry, ENFORCE_TIER_FMODRET);
	return 0;
}

SEC("fentry/security_inode_free")
int BPF_PROG(enf_fmr_free, struct inode *inode)
{
	forget(inode, inode->i_ino, inode->i_nlink);
	return 0;
}

#endif /* ENFORCE_NO_KERNEL_BTF */

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
	check_exec_file_core(KREAD(bprm, file), KREAD(bprm, filename), ENFORCE_OP_EXEC,
			     ENFORCE_TIER_KPROBE);
	return 0;
}

SEC("kprobe/security_mmap_file")
int BPF_KPROBE(enf_kp_mmap, struct file *file, unsigned long prot, unsigned long flags)
{
	on_mmap(file, prot, flags, ENFORCE_TIER_KPROBE);
	return 0;
}

SEC("kprobe/security_file_mprotect")
int BPF_KPROBE(enf_kp_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot)
{
	struct file *file;

	if (!(prot & PROT_EXEC))
		return 0;
	file = KREAD(vma, vm_file);
	if ((!file || KREAD(vma, anon_vma)) && anon_exec(ENFORCE_OP_MPROTECT, ENFORCE_TIER_KPROBE))
		return 0;
	if (file)
		check_exec_file_core(file, file_name(file), ENFORCE_OP_MPROTECT, ENFORCE_TIER_KPROBE);
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
	void *name = KREAD(msg, msg_name);
	__u16 family;

	if (!name)
		return 0;
	family = KREAD(KREAD(sock, sk), __sk_common.skc_family);
	if (inet_family(family))
		check_sockaddr(name, KREAD(msg, msg_namelen), family == AF_INET ? AF_INET : AF_UNSPEC,
			       ENFORCE_OP_SEND, ENFORCE_TIER_KPROBE, false);
	return 0;
}

#if defined(__TARGET_ARCH_arm)
/* 32-bit ARM passes four arguments in registers: the fifth (flags) is on the stack. */
SEC("kprobe/security_inode_rename")
int BPF_KPROBE(enf_kp_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
	       struct dentry *new_dentry)
{
	unsigned int flags = 0;

	bpf_probe_read_kernel(&flags, sizeof(flags), (const void *)(unsigned long)PT_REGS_SP(ctx));
	on_rename(old_dentry, new_dentry, flags, ENFORCE_TIER_KPROBE);
	return 0;
}
#else
SEC("kprobe/security_inode_rename")
int BPF_KPROBE(enf_kp_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
	       struct dentry *new_dentry, unsigned int flags)
{
	on_rename(old_dentry, new_dentry, flags, ENFORCE_TIER_KPROBE);
	return 0;
}
#endif

SEC("kprobe/security_inode_unlink")
int BPF_KPROBE(enf_kp_unlink, struct inode *dir, struct dentry *dentry)
{
	on_unlink(dentry, ENFORCE_TIER_KPROBE);
	return 0;
}

SEC("kprobe/security_inode_free")
int BPF_KPROBE(enf_kp_free, struct inode *inode)
{
	/* Most freed inodes are still linked (evicted from the cache): one read says so. */
	if (KREAD(inode, i_nlink))
		return 0;
	forget(inode, KREAD(inode, i_ino), 0);
	return 0;
}

/* ================= tier 4: syscall tracepoints: signal ================= */
/* The syscall has already run when the signal lands (on the way back to user space). */

/* The file behind a descriptor of the current task; NULL if none. The array's
 * stride is the kernel's pointer size. */
static __always_inline struct file *current_fd_file(long fd)
{
	struct fdtable *fdt;
	__u32 ptr_size = bpf_core_field_size(struct fdtable, fd);
	unsigned long slot;
	__u64 file = 0;

#ifndef ENFORCE_NO_KERNEL_BTF
	/* bpf_get_current_task_btf came in 5.11: before it, the reads below the #endif. */
	if (HAVE_HELPER(get_current_task_btf)) {
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
		 * the slot is read with one plain load instead of a bpf_probe_read_kernel call
		 * (64-bit kernels: the cast's array stride is the BPF side's pointer size). */
		if (bpf_ksym_exists(bpf_rdonly_cast) && bpf_core_field_offset(struct kiocb, ki_filp) == 0 && ptr_size == 8)
			return bpf_core_cast(&fdt->fd[fd], struct kiocb)->ki_filp;
		slot = (unsigned long)fdt->fd;
	} else
#endif
	{
		fdt = KREAD(KREAD(current_task(), files), fdt);
		if (!fdt || fd < 0 || fd >= KREAD(fdt, max_fds))
			return NULL;
		slot = (unsigned long)KREAD(fdt, fd);
	}
	/* The array's stride is the kernel's pointer size (4 bytes on 32-bit ARM). */
	bpf_probe_read_kernel(&file, ptr_size, (const void *)(slot + fd * ptr_size));
	return (struct file *)file;
}

/* A syscall's return value. */
static __always_inline long sys_ret(struct trace_event_raw_sys_exit *ctx)
{
#if defined(__TARGET_ARCH_arm)
	/* `long` is 4 bytes on a 32-bit kernel and CO-RE cannot resize a load of a signed
	 * field: read at its size, sign-extended here. */
	return (long)(int)KREAD(ctx, ret);
#else
	return ctx->ret;
#endif
}

/* After a successful open-family syscall: is the new descriptor a denied inode?  (Not
 * an O_PATH one: check_file_core.) */
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
int enf_tp_open(struct trace_event_raw_sys_exit *ctx) { return tp_opened(sys_ret(ctx)); }

#ifndef ENFORCE_NO_KERNEL_BTF
/* The new image is in place and has not run an instruction yet. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(enf_tp_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	/* As in current_fd_file: the untrusted cast spares the verifier's name searches. */
	if (bpf_ksym_exists(bpf_rdonly_cast)) {
		struct linux_binprm *b = bpf_core_cast(bprm, struct linux_binprm);

		check_exec_file_core(b->file, b->filename, ENFORCE_OP_EXEC, ENFORCE_TIER_TRACEPOINT);
	} else {
		on_exec(bprm, ENFORCE_TIER_TRACEPOINT);
	}
	return 0;
}
#else
/*
 * The same moment through the classic tracepoint (tp_btf attaches by the kernel's own
 * BTF): the executed file is the new mm's exe_file, and the record carries the name
 * given to execve.
 */
SEC("tracepoint/sched/sched_process_exec")
int enf_tp_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct mm_struct *mm = KREAD(current_task(), mm);
	struct file *exe = mm ? KREAD(mm, exe_file) : NULL;
	const char *name = (const char *)ctx + (ctx->__data_loc_filename & 0xffff);

	if (exe)
		check_exec_file_core(exe, name, ENFORCE_OP_EXEC, ENFORCE_TIER_TRACEPOINT);
	return 0;
}
#endif

/*
 * A mapping was denied: the task is being killed, but the mapping is made (the syscall
 * runs).  In a vfork child the memory is its waiting parent's, which would resume with
 * the mapping when the child dies: the memory is noted, and the parent is killed as it
 * returns from its clone or vfork, before it runs again (vfork_returned).
 */
static __always_inline void mapped_in_vfork_child(void)
{
	struct task_struct *t = current_task();
	__u64 mm;
	__u32 one = 1;

	if (!KREAD(t, vfork_done))
		return;
	mm = (__u64)KREAD(t, mm);
	bpf_map_update_elem(&vfork_poisoned, &mm, &one, BPF_ANY);
}

/* A clone or vfork returns: to a parent whose vfork child was killed for a mapping in
 * their memory, that parent is killed.  One program on sys_exit_vfork, sys_exit_clone
 * and sys_exit_clone3 (src/ladder.rs). */
SEC("tracepoint/syscalls/sys_exit_vfork")
int enf_tp_vforked(struct trace_event_raw_sys_exit *ctx)
{
	__u64 mm = (__u64)KREAD(current_task(), mm);
	struct enforce_event ev = {};

	if (!bpf_map_lookup_elem(&vfork_poisoned, &mm))
		return 0;
	bpf_map_delete_elem(&vfork_poisoned, &mm);
	ev.class = ENFORCE_CLASS_EXEC;
	ev.op = ENFORCE_OP_MMAP;
	ev.reason = ENFORCE_REASON_SHARED;
	act(&ev, ENFORCE_TIER_TRACEPOINT);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int enf_tp_mmap(struct trace_event_raw_sys_enter *ctx)
{
	unsigned long prot = ctx->args[2], flags = ctx->args[3];
	struct file *file;

	if (!maps_exec(prot))
		return 0;
	if (((flags & MAP_ANONYMOUS) || writable_exec(prot, flags)) && anon_exec(ENFORCE_OP_MMAP, ENFORCE_TIER_TRACEPOINT)) {
		mapped_in_vfork_child();
		return 0;
	}
	if (flags & MAP_ANONYMOUS)
		return 0;
	file = current_fd_file((int)ctx->args[4]);
	if (file && check_exec_file_core(file, file_name(file), ENFORCE_OP_MMAP, ENFORCE_TIER_TRACEPOINT))
		mapped_in_vfork_child();
	return 0;
}

/*
 * shmat(SHM_EXEC): a SysV segment mapped executable (the LSM hooks see it as
 * mmap_file of the segment's file).  That file lives on the kernel's internal shm
 * mount, which no allow_exec_from can name: with an allow list it is untrusted (the
 * event names the segment by its id: ino=SHMID).  A guard of the mmap hook
 * (src/ladder.rs).
 */
SEC("tracepoint/syscalls/sys_enter_shmat")
int enf_tp_shmat(struct trace_event_raw_sys_enter *ctx)
{
	static const char name[] = "SYSV"; /* the kernel's name for a segment's file */

	if (!(ctx->args[2] & SHM_EXEC))
		return 0;
	if (untrusted(0, ctx->args[0], name, HOW(ENFORCE_OP_MMAP, ENFORCE_TIER_TRACEPOINT, false)))
		mapped_in_vfork_child();
	return 0;
}

#ifndef ENFORCE_NO_KERNEL_BTF
/* bpf_find_vma takes a BTF-typed task: the kernel's own BTF only (src/ladder.rs). */
struct vma_inode {
	__u64 dev;   /* inode_dev */
	__u64 fsdev; /* the superblock's */
	__u64 ino;
	const char *name;
	bool anon; /* no file, or pages written since it was mapped */
};

static long vma_inode(struct task_struct *task, struct vm_area_struct *vma, struct vma_inode *out)
{
	struct file *file = vma->vm_file;

	out->anon = !file || vma->anon_vma;
	if (file) {
		out->dev = inode_dev(file->f_inode);
		out->fsdev = file->f_inode->i_sb->s_dev;
		out->ino = file->f_inode->i_ino;
		out->name = (const char *)file->f_path.dentry->d_name.name;
	}
	return 0;
}

/*
 * A program's ELF interpreter (PT_INTERP) is mapped by the kernel, not exec'd, and no
 * syscall names it: at sched_process_exec the new program starts at the interpreter's
 * entry, so the file mapped there is checked as a mapping.  A guard of the exec hook:
 * 5.17 on (bpf_find_vma), with the kernel's own BTF.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(enf_tp_exec_interp, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(p);
	struct vma_inode found = {};
	struct inode *exe;

	if (!regs || bpf_find_vma(p, PT_REGS_IP(regs), vma_inode, &found, 0) || !found.ino)
		return 0;
	exe = bprm->file->f_inode;
	if (found.ino == exe->i_ino && found.dev == inode_dev(exe))
		return 0;
	check_exec(found.dev, found.fsdev, found.ino, found.name, ENFORCE_OP_MMAP, ENFORCE_TIER_TRACEPOINT);
	return 0;
}

/* Only the mapping at the start address is checked (see the README's limits). */
SEC("tracepoint/syscalls/sys_enter_mprotect")
int enf_tp_mprotect(struct trace_event_raw_sys_enter *ctx)
{
	struct vma_inode found = {};

	if (!maps_exec(ctx->args[2]))
		return 0;
	if (bpf_find_vma(bpf_get_current_task_btf(), ctx->args[0], vma_inode, &found, 0))
		return 0;
	if (found.anon && anon_exec(ENFORCE_OP_MPROTECT, ENFORCE_TIER_TRACEPOINT)) {
		mapped_in_vfork_child();
		return 0;
	}
	if (found.ino && check_exec(found.dev, found.fsdev, found.ino, found.name, ENFORCE_OP_MPROTECT, ENFORCE_TIER_TRACEPOINT))
		mapped_in_vfork_child();
	return 0;
}
#endif

/*
 * A clone that makes a new process (not a thread) share the caller's descriptor table
 * (CLONE_FILES) or memory (CLONE_VM): this tier kills only the process that opens or
 * maps a denied file, and what it opened or mapped would stay in the table or memory
 * the other one goes on using.  So the caller is killed here, while the policy has
 * rules that could put such a thing there (open rules: the table; exec rules, the
 * allow list or allow_anon_exec = no: the memory); with the signal pending, fork makes
 * no child (copy_process gives up on a pending signal).  A vfork child (CLONE_VM with
 * CLONE_VFORK) is left alone: its parent waits for it (README: limits).  `files`: the program for the
 * descriptor table (open hook), else the one for memory (mmap hook).
 */
static __noinline bool shared_clone(__u64 flags, bool files)
{
	__u32 tier = ENFORCE_TIER_TRACEPOINT;
	struct enforce_settings *s = bpf_map_lookup_elem(&settings, &tier);
	struct enforce_event ev = {};

	if (!s || (flags & CLONE_THREAD))
		return false;
	if (files) {
		if (!(flags & CLONE_FILES) || !(s->flags & ENFORCE_FLAG_OPEN_RULES))
			return false;
		ev.class = ENFORCE_CLASS_OPEN;
		ev.op = ENFORCE_OP_OPEN;
	} else {
		if (!(flags & CLONE_VM) || (flags & CLONE_VFORK) ||
		    !(s->flags & (ENFORCE_FLAG_EXEC_RULES | ENFORCE_FLAG_ALLOW_LIST | ENFORCE_FLAG_DENY_ANON)))
			return false;
		ev.class = ENFORCE_CLASS_EXEC;
		ev.op = ENFORCE_OP_MMAP;
	}
	ev.reason = ENFORCE_REASON_SHARED;
	return act(&ev, tier);
}

/* clone3's flags are the first field of its arguments, in the caller's memory; ones
 * that cannot be read are taken for sharing ones. */
static __always_inline __u64 clone3_flags(const void *uargs)
{
	__u64 flags;

	return bpf_probe_read_user(&flags, sizeof(flags), uargs) ? CLONE_FILES | CLONE_VM : flags;
}

/* clone's flags are its first argument on every architecture. */
SEC("tracepoint/syscalls/sys_enter_clone")
int enf_tp_clone_files(struct trace_event_raw_sys_enter *ctx)
{
	shared_clone(ctx->args[0], true);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_clone3")
int enf_tp_clone3_files(struct trace_event_raw_sys_enter *ctx)
{
	shared_clone(clone3_flags((const void *)ctx->args[0]), true);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_clone")
int enf_tp_clone_vm(struct trace_event_raw_sys_enter *ctx)
{
	shared_clone(ctx->args[0], false);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_clone3")
int enf_tp_clone3_vm(struct trace_event_raw_sys_enter *ctx)
{
	shared_clone(clone3_flags((const void *)ctx->args[0]), false);
	return 0;
}

/* The descriptor of this thread's connect, kept from entry to exit. */
static __always_inline void stash_connect_fd(__u32 fd)
{
	__u64 id = bpf_get_current_pid_tgid();

#ifndef ENFORCE_NO_KERNEL_BTF
	if (HAVE_TASK_STORAGE) {
		struct connect_pending *p = bpf_task_storage_get(&connect_fds, bpf_get_current_task_btf(), 0,
								 BPF_LOCAL_STORAGE_GET_F_CREATE);

		if (p) {
			p->fd = fd;
			p->pending = 1;
		}
		return;
	}
#endif
	bpf_map_update_elem(&connect_fds_hash, &id, &fd, BPF_ANY);
}

/* Takes the descriptor stash_connect_fd() kept, if any. */
static __always_inline bool take_connect_fd(__u32 *fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 *stashed;

#ifndef ENFORCE_NO_KERNEL_BTF
	if (HAVE_TASK_STORAGE) {
		struct connect_pending *p = bpf_task_storage_get(&connect_fds, bpf_get_current_task_btf(), 0, 0);

		if (!p || !p->pending)
			return false;
		*fd = p->fd;
		p->pending = 0;
		return true;
	}
#endif
	stashed = bpf_map_lookup_elem(&connect_fds_hash, &id);
	if (!stashed)
		return false;
	*fd = *stashed;
	bpf_map_delete_elem(&connect_fds_hash, &id);
	return true;
}

/*
 * connect: the address is checked at entry, from the caller's memory, which also
 * catches connects that fail; and again at exit from the socket's peer, which is what
 * the kernel really connected to (a thread may change the caller's copy in between,
 * or the copy may be in a page the program cannot read).
 */
SEC("tracepoint/syscalls/sys_enter_connect")
int enf_tp_connect(struct trace_event_raw_sys_enter *ctx)
{
	int len = (int)ctx->args[2];
	struct sockaddr_in6 sa = {};
	struct enforce_event ev = {};
	int err = copy_sockaddr(&sa, (void *)ctx->args[1], len, true);

	if (err || !match_sockaddr(&sa, len, AF_UNSPEC, &ev)) {
		/* Nothing matched here, or nothing could be read: look at what the kernel
		 * connected to. */
		if (err < 0)
			unreadable_counted(ENFORCE_TIER_TRACEPOINT);
		stash_connect_fd(ctx->args[0]);
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

	if (!file || (KREAD(KREAD(file, f_inode), i_mode) & S_IFMT) != S_IFSOCK)
		return -1;
	sock = KREAD(file, private_data);
	sk = KREAD(sock, sk);
	family = KREAD(sk, __sk_common.skc_family);
	sa->sin6_port = KREAD(sk, __sk_common.skc_dport);
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)sa;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = KREAD(sk, __sk_common.skc_daddr);
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
	struct sockaddr_in6 sa = {};
	struct enforce_event ev = {};
	__u32 fd;
	int len;

	/* Whatever connect(2) returned: an interrupted one (EINTR) goes on connecting, and
	 * a socket has a denied peer only when something tried to reach it. */
	if (!take_connect_fd(&fd))
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
	int err;

	if (!addr)
		return;
	err = copy_sockaddr(&sa, addr, len, true);
	if (err < 0)
		unreadable_dest(ENFORCE_OP_SEND, ENFORCE_TIER_TRACEPOINT);
	if (err)
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

	/* The caller's layout is the kernel's (4-byte pointers on 32-bit ARM): its size is
	 * read, and the fields are loaded at their relocated offsets and sizes. */
	if (bpf_probe_read_user(&msg, bpf_core_type_size(struct user_msghdr), (void *)ctx->args[1])) {
		/* The header, and so the destination, could not be read. */
		unreadable_dest(ENFORCE_OP_SEND, ENFORCE_TIER_TRACEPOINT);
		return 0;
	}
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
	/* msg_hdr is the first member of mmsghdr; the stride is the kernel's size. */
	const void *hdr = (const void *)walk->vec + i * bpf_core_type_size(struct mmsghdr);

	if (bpf_probe_read_user(&msg, bpf_core_type_size(struct user_msghdr), hdr)) {
		unreadable_dest(ENFORCE_OP_SEND, ENFORCE_TIER_TRACEPOINT);
		return 1;
	}
	tp_send(walk->fd, msg.msg_name, msg.msg_namelen);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int enf_tp_sendmmsg(struct trace_event_raw_sys_enter *ctx)
{
	struct sendmmsg_walk walk = { .vec = (void *)ctx->args[1], .fd = (int)ctx->args[0] };
	__u32 vlen = ctx->args[2];

#if defined(__TARGET_ARCH_arm)
	/*
	 * 32-bit ARM: the kernel's JIT does not compile programs with BPF-to-BPF calls,
	 * and the interpreter refuses callbacks ("callbacks are not allowed in non-JITed
	 * programs"), so no bpf_loop: a bounded loop over the first messages only.
	 */
	for (__u32 i = 0; i < SENDMMSG_ARM_MAX && i < vlen; i++)
		if (sendmmsg_one(i, &walk))
			break;
#else
	bpf_loop(vlen < UIO_MAXIOV ? vlen : UIO_MAXIOV, sendmmsg_one, &walk, 0);
#endif
	return 0;
}

/* One message of a sendmmsg at `hdr`: a global function, which the verifier checks
 * once, not once per message of the loop below (as bpf/path.bpf.c does). */
__noinline int enf_tp_sendmmsg_msg(unsigned long hdr, int fd)
{
	struct user_msghdr msg;

	if (bpf_probe_read_user(&msg, bpf_core_type_size(struct user_msghdr), (const void *)hdr))
		return 1;
	tp_send(fd, msg.msg_name, msg.msg_namelen);
	return 0;
}

/* The same walk for kernels without bpf_loop (before 5.17), which refuse a program
 * that names a callback even where it never runs: the agent loads this one instead
 * there (src/tiers.rs). A bounded loop over every message the kernel takes. */
SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int enf_tp_sendmmsg_bounded(struct trace_event_raw_sys_enter *ctx)
{
	unsigned long vec = ctx->args[1];
	__u32 vlen = ctx->args[2];

	for (__u32 i = 0; i < UIO_MAXIOV && i < vlen; i++)
		if (enf_tp_sendmmsg_msg(vec + i * bpf_core_type_size(struct mmsghdr), (int)ctx->args[0]))
			break;
	return 0;
}

#endif /* ENFORCE_MAPS_ONLY */
