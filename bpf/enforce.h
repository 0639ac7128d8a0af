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

/* Capacities of the kernel maps; the config parser enforces the same limits. */
#define ENFORCE_MAX_INODE_RULES 256 /* deny_open + deny_exec, one entry per inode */
#define ENFORCE_MAX_NET4_RULES 256
#define ENFORCE_MAX_NET6_RULES 256

/*
 * Rule id of the agent's canary file: always denied (LSM) or signalled (signal
 * tier) whatever the mode, so the agent can prove the hook really runs.
 */
#define ENFORCE_RULE_CANARY 0xffffffffu

/* What an event is about. */
enum enforce_class {
	ENFORCE_CLASS_OPEN = 1,
	ENFORCE_CLASS_EXEC = 2,
	ENFORCE_CLASS_CONNECT = 3,
};

/* What the agent did about it. */
enum enforce_action {
	ENFORCE_ACTION_DENIED = 1,  /* the operation failed with EPERM, or the offender was signalled */
	ENFORCE_ACTION_AUDITED = 2, /* audit mode: allowed and logged */
};

/* Which kind of program acted. */
enum enforce_tier {
	ENFORCE_TIER_LSM = 1,
	ENFORCE_TIER_SIGNAL = 2,
};

/* enforce_settings.mode */
enum enforce_mode {
	ENFORCE_MODE_AUDIT = 0, /* zero-initialised settings never deny */
	ENFORCE_MODE_ENFORCE = 1,
};

/* Indexes of the per-CPU counters array. */
enum enforce_counter {
	ENFORCE_COUNTER_DENIED = 0,
	ENFORCE_COUNTER_AUDITED = 1,
	ENFORCE_COUNTER_DROPPED = 2, /* events lost because the ring buffer was full */
	ENFORCE_COUNTER_MAX = 3,
};

/* Single entry of the `settings` array map, written by the agent before attach. */
struct enforce_settings {
	__u32 mode;       /* enum enforce_mode */
	__u32 agent_tgid; /* never deny or signal this process */
	__u32 signal;     /* signal tier: the signal to send (SIGKILL by default) */
	__u32 _pad;
};

/*
 * Key of the `deny_inodes` hash map.  `dev` is the kernel's encoding,
 * inode->i_sb->s_dev == (major << 20) | minor, not userspace's st_dev.
 */
struct enforce_inode_key {
	__u64 dev;
	__u64 ino;
};

/* Value of `deny_inodes`: the rule id (config line number) per class, 0 = not denied. */
struct enforce_inode_rule {
	__u32 open_rule;
	__u32 exec_rule;
};

/*
 * Keys of the `deny_net4` / `deny_net6` LPM tries.  The port comes first so a
 * rule with a port is prefix = 32 + CIDR bits; a rule for every port stores
 * port 0.  A lookup is made twice: with the destination port, then with 0.
 * `port` and `addr` are in network byte order, `_pad` is always zero.
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

/* Value of both tries. */
struct enforce_net_rule {
	__u32 rule; /* config line number */
};

/*
 * One ring-buffer record.  Files and exec fill dev/ino; connect fills
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
	__u8 signal; /* signal sent by the signal tier, 0 for LSM */
	__u16 family;
	__u16 port;
	__u8 addr[16];
	char comm[ENFORCE_COMM_LEN];
	__u32 _pad;
};

#endif /* ENFORCE_H */
