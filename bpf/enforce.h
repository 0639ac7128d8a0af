/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The one ABI shared by the BPF programs (bpf/enforce.bpf.c) and the agent
 * (src/abi.rs mirrors it with #[repr(C)]; a test there pins every size and
 * offset).  Change a struct here and that test must change with it.
 *
 * Only fixed-width types, explicit padding, no bitfields: both compilers must
 * agree on the layout without being told.
 */
#ifndef ENFORCE_H
#define ENFORCE_H

#define ENFORCE_COMM_LEN 16
#define ENFORCE_FILE_LEN 64
/* Entries of `canary_tasks`: the canary children of every gate on the machine at once. */
#define ENFORCE_CANARY_TASKS 64

/*
 * Rule id of the agent's canaries: always acted on (denied or signalled) whatever
 * the mode, so the agent can prove each hook really runs.
 */
#define ENFORCE_RULE_CANARY 0xffffffffu
/*
 * exec_rule of the allow list's canary inode: not a rule of its own; the hooks judge
 * the inode by the allow list, as canary, whatever the mode.
 */
#define ENFORCE_RULE_ALLOW_CANARY 0xfffffffeu

/* What an event is about: the rule classes of the config. */
enum enforce_class {
	ENFORCE_CLASS_OPEN = 1,
	ENFORCE_CLASS_EXEC = 2,
	ENFORCE_CLASS_CONNECT = 3,
};

/* The operation a hook saw; every class has one or more. */
enum enforce_op {
	ENFORCE_OP_OPEN = 1,     /* open: a file opened */
	ENFORCE_OP_EXEC = 2,     /* exec: a program executed */
	ENFORCE_OP_MMAP = 3,     /* exec: a file mapped executable */
	ENFORCE_OP_MPROTECT = 4, /* exec: a file mapping made executable */
	ENFORCE_OP_CONNECT = 5,  /* connect: connect(2) */
	ENFORCE_OP_SEND = 6,     /* connect: a send with a destination address */
	ENFORCE_OP_FOLLOW = 7,   /* open/exec: a rule followed a rename onto a new inode */
};

/* Why an exec-class operation was denied when no rule names the file. */
enum enforce_reason {
	ENFORCE_REASON_RULE = 0,      /* a deny rule matched (or the canary's) */
	ENFORCE_REASON_UNTRUSTED = 1, /* allow_exec_from: the file is on no allowed filesystem */
	ENFORCE_REASON_ANON = 2,      /* allow_anon_exec = no: anonymous or modified memory made executable */
	ENFORCE_REASON_UNREADABLE = 3, /* signal tiers: the path or destination in the caller's memory
					* could not be read (a page not present): the caller is
					* signalled, whatever it named (no object in the event) */
	ENFORCE_REASON_SHARED = 4, /* signal tiers: a clone that would make a new process share
				    * the caller's descriptor table (class open) or memory (class
				    * exec), or the parent of a vfork child killed for a mapping in
				    * their memory: it is signalled (no object in the event) */
};

/* enforce_settings.flags: the exec policy, and which classes have rules. */
enum enforce_flags {
	ENFORCE_FLAG_ALLOW_LIST = 1, /* exec only from the filesystems in exec_allow */
	ENFORCE_FLAG_DENY_ANON = 2,  /* no executable anonymous (or written private) memory */
	/* The policy has deny rules of the class: only then is a path or destination that
	 * cannot be read acted on (ENFORCE_REASON_UNREADABLE). */
	ENFORCE_FLAG_OPEN_RULES = 4,
	ENFORCE_FLAG_EXEC_RULES = 8,
	ENFORCE_FLAG_CONNECT_RULES = 16,
};

/* What the agent did about it. */
enum enforce_action {
	ENFORCE_ACTION_DENIED = 1,   /* the operation failed with EPERM, or the offender was signalled */
	ENFORCE_ACTION_AUDITED = 2,  /* audit mode: allowed and logged */
	ENFORCE_ACTION_FOLLOWED = 3, /* a denied inode was replaced by rename: the rule moved along */
	ENFORCE_ACTION_UNLINKED = 4, /* a denied inode lost a name (unlink, rename away): the agent
				      * re-resolves the rule's path, which a new file may take */
};

/* The rungs of the ladder, strongest first; also the index of a tier's settings. */
enum enforce_tier {
	ENFORCE_TIER_LSM = 1,        /* BPF-LSM: EPERM */
	ENFORCE_TIER_FMODRET = 2,    /* fmod_ret on security_*(): EPERM */
	ENFORCE_TIER_KPROBE = 3,     /* kprobe on security_*(): signal */
	ENFORCE_TIER_TRACEPOINT = 4, /* syscall tracepoints: signal */
	ENFORCE_TIER_PATH = 5,       /* path strings at syscall tracepoints, no BTF: signal */
	ENFORCE_TIER_MAX = 6,
};

/* enforce_settings.mode */
enum enforce_mode {
	ENFORCE_MODE_QUIET = 0,   /* zero-initialised settings: only the canary acts */
	ENFORCE_MODE_AUDIT = 1,   /* report, allow */
	ENFORCE_MODE_ENFORCE = 2, /* deny (or signal) and report */
};

/* Indexes of the per-CPU counters array. */
enum enforce_counter {
	ENFORCE_COUNTER_DENIED = 0,
	ENFORCE_COUNTER_AUDITED = 1,
	ENFORCE_COUNTER_DROPPED = 2, /* events lost because the ring buffer was full */
	ENFORCE_COUNTER_FOLLOWED = 3,      /* rules copied to an inode renamed over a denied one */
	ENFORCE_COUNTER_FOLLOW_FAILED = 4, /* ...that could not be copied: the map was full */
	ENFORCE_COUNTER_UNLINKED = 5,      /* names a denied inode lost, in every mode and generation */
	ENFORCE_COUNTER_UNREADABLE = 6,    /* paths and destinations a program could not read from the
					    * caller's memory while rules of their class exist */
	ENFORCE_COUNTER_MAX = 7,
};

/* One entry of the `settings` array map per tier (index enum enforce_tier). */
struct enforce_settings {
	__u32 mode;        /* enum enforce_mode */
	__u32 signal;      /* signal tiers: the signal to send (SIGKILL by default) */
	__u32 flags;       /* enum enforce_flags */
	__u32 canary_tgid; /* the canary child of the anonymous-memory canary, 0 = none */
};

/*
 * The hand-over between generations: the single entry of the `handover` array, one
 * map shared by every generation of programs an agent loads (each reload's, and a
 * pinned set it adopts), so that exactly one generation acts on an operation.  Each
 * generation knows its own number (the `generation` array); the agent writes this
 * entry, in one update, when a generation takes over.
 */
enum enforce_handover_flags {
	/* Every act of the acting generation denies and ends the operation (an LSM or
	 * fmod_ret verdict, or SIGKILL): a generation of the same kind may act beside it,
	 * because the first of the two to deny ends the operation for the other. */
	ENFORCE_HANDOVER_EXACT = 1,
};

struct enforce_handover {
	__u32 generation; /* the generation that acts; 0 = none yet */
	__u32 flags;      /* enum enforce_handover_flags */
	__u32 agent_tgid; /* the agent, never denied or signalled: its host PID... */
	__u32 _pad;
	__u64 agent_start; /* ...and its start time, in clock ticks since boot (USER_HZ, as
			    * /proc/PID/stat says), so a PID reused after the agent died is not exempt */
};

/*
 * Key of the `deny_inodes` hash map.  `dev` is the kernel's encoding,
 * inode->i_sb->s_dev == (major << 20) | minor, not userspace's st_dev.
 */
struct enforce_inode_key {
	__u64 dev;
	__u64 ino;
};

/*
 * Key of the `deny_paths` hash map (the path tier, bpf/path.bpf.c): a path string,
 * NUL-terminated and zero-padded to the full length.  The agent stores each rule's
 * path as configured and canonical, and the last component of each (which never holds
 * a '/'), for opens by a relative or otherwise non-canonical path.  The value is a
 * struct enforce_inode_rule.
 */
#define ENFORCE_PATH_LEN 256
struct enforce_path_key {
	char path[ENFORCE_PATH_LEN];
};

/*
 * The single entry of the path tier's `path_agent` array: how its programs, which have
 * no task struct (no BTF), recognise the agent instead of by start time.  The agent
 * holds a random `cookie` at `cookie_addr` in its own memory; a process is the agent
 * when its PID is the hand-over's agent_tgid and that address of its memory holds the
 * cookie.  A process that reuses the PID after the agent died has other memory there.
 */
struct enforce_path_agent {
	__u32 tgid;
	__u32 _pad;
	__u64 cookie_addr;
	__u64 cookie;
};

/* Value of `deny_inodes`: the rule id (config line number) per class, 0 = not denied. */
struct enforce_inode_rule {
	__u32 open_rule;
	__u32 exec_rule;
};

/*
 * Keys of the `deny_net4` / `deny_net6` LPM tries.  The port comes first so a
 * rule with a port is prefix = 32 + CIDR bits; a rule for every port stores
 * port 0.  A destination is looked up with its port, then with 0, each only where
 * `net_filter` says a rule of that kind may cover it.  `port` and `addr` are in
 * network byte order, `_pad` is always zero.
 */
struct enforce_net4_key {
	__u32 prefixlen;
	__u16 port;
	__u16 _pad;
	__u8 addr[4];
};

struct enforce_net6_key {
	__u32 prefixlen;
	__u16 port;
	__u16 _pad;
	__u8 addr[16];
};

/*
 * Cheap first tests, so that what matches nothing costs almost nothing (issue 11):
 *
 * `inode_filter` (an array of u64 words, a power of two of them) has a bit set for
 * every inode number the agent put in `deny_inodes`, and `followed_inodes` (an array
 * of ENFORCE_FOLLOWED_SLOTS u64 flags) a non-zero slot for every inode number a BPF
 * program moved a rule to (a rename over a denied file): each array has one writer,
 * the agent or the programs, and a slot is set by a plain store, so no write can undo
 * another. An inode whose bit and slot are both clear is not looked up. The bit of
 * inode number `ino`: h = ino * ENFORCE_FILTER_MULT (mod 2^64), b = h >> 40; word
 * (b >> 6) mod the array's length, bit b & 63; its slot: b mod ENFORCE_FOLLOWED_SLOTS.
 * Different inodes may share a bit: a bit says "look it up", never "denied". Bits are
 * never cleared while the maps live.
 *
 * `net_filter` has a bit per /16 of each family and kind of rule, in four arrays of
 * ENFORCE_NET_FILTER_WORDS words: IPv4 rules for one port, IPv6 rules for one port,
 * IPv4 rules for every port, IPv6 rules for every port (an IPv6 address's /16 is its
 * first 16 bits). A bit is set when some rule of that kind's prefix covers part of
 * that /16. A destination whose bit of a kind is clear is not looked up in the tries
 * for that kind. Only the agent writes it.
 */
#define ENFORCE_FILTER_MULT 0x9E3779B97F4A7C15ULL
#define ENFORCE_FOLLOWED_SLOTS 1024
#define ENFORCE_NET_FILTER_WORDS 1024
/*
 * The programs built for kernels without their own BTF cannot read a map's length
 * (the verifier allows that map_ptr access only with the kernel's BTF): with them the
 * agent makes inode_filter this long, 16 bits per inode for 32,768 inodes (a larger
 * policy only lets more inodes past the filter to the hash lookup).
 */
#define ENFORCE_INODE_FILTER_WORDS_NO_BTF 8192

/* Value of both tries. */
struct enforce_net_rule {
	__u32 rule; /* config line number */
};

/*
 * One ring-buffer record.  File operations fill dev/ino; connect and send fill
 * family/port/addr (AF_INET: the first 4 bytes of addr; an IPv4-mapped IPv6
 * destination is reported as AF_INET).  port is in host byte order here.
 */
struct enforce_event {
	__u64 dev; /* kernel s_dev encoding */
	__u64 ino;
	__u32 pid; /* tgid, as userspace calls it */
	__u32 uid;
	__u32 rule; /* config line number of the matching rule */
	__u8 class;  /* enum enforce_class */
	__u8 action; /* enum enforce_action */
	__u8 tier;   /* enum enforce_tier */
	__u8 signal; /* signal sent by a signal tier, 0 for none */
	__u16 family;
	__u16 port;
	__u8 addr[16];
	char comm[ENFORCE_COMM_LEN];
	__u8 op;     /* enum enforce_op */
	__u8 reason; /* enum enforce_reason */
	__u8 _pad[2];
	/* reason UNTRUSTED: the file as the kernel names it (exec: the path given to
	 * execve; a mapping: the file's name), NUL-terminated, cut at the length */
	char file[ENFORCE_FILE_LEN];
};

#endif /* ENFORCE_H */
