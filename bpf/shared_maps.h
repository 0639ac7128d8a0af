/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The shared maps both BPF sources use, and their lookups, declared once:
 * bpf/enforce.bpf.c (whose maps-only build the agent creates them from) and
 * bpf/path.bpf.c (whose object reuses them by name) include this after enforce.h and
 * bpf_helpers.h.  Capacities are placeholders: the agent sizes every map to its
 * policy before load.
 */
#ifndef ENFORCE_SHARED_MAPS_H
#define ENFORCE_SHARED_MAPS_H

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ENFORCE_TIER_MAX);
	__type(key, __u32);
	__type(value, struct enforce_settings);
} settings SEC(".maps");

/* Shared by every generation of programs the agent loads and adopts (enforce.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct enforce_handover);
} handover SEC(".maps");

/* This generation's number, the same for every tier the gate loads in one run. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} generation SEC(".maps");

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

/*
 * The canary children of every gate on the machine (this agent's, a reload's, an
 * `enforce --check` beside it), by host tgid: their operations are some gate's proof,
 * acted on only by that gate's canary rules.  A gate names its child here (in every
 * such map it finds) after the fork and before the child acts, and removes it before
 * reaping the child, so an entry never names another process.  Only root can write
 * it: nothing a process can do to itself or its parent makes it a canary.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENFORCE_CANARY_TASKS);
	__type(key, __u32);
	__type(value, __u32);
} canary_tasks SEC(".maps");

/* ---- lookups in the shared maps ---- */

/* Whether process `tgid` is a gate's canary child (canary_tasks). */
static __always_inline bool canary_task(__u32 tgid)
{
	return bpf_map_lookup_elem(&canary_tasks, &tgid) != NULL;
}

/* Rule id of the longest IPv4 match in deny_net4 for exactly this port (0: the rules
 * for every port); 0 = none. */
static __always_inline __u32 net4_trie_lookup(const __u8 *addr, __u16 port_be)
{
	struct enforce_net4_key key = { .prefixlen = 64, .port = port_be };
	struct enforce_net_rule *rule;

	__builtin_memcpy(key.addr, addr, 4);
	rule = bpf_map_lookup_elem(&deny_net4, &key);
	return rule ? rule->rule : 0;
}

/* The same in deny_net6. */
static __always_inline __u32 net6_trie_lookup(const __u8 *addr, __u16 port_be)
{
	struct enforce_net6_key key = { .prefixlen = 160, .port = port_be };
	struct enforce_net_rule *rule;

	__builtin_memcpy(key.addr, addr, 16);
	rule = bpf_map_lookup_elem(&deny_net6, &key);
	return rule ? rule->rule : 0;
}

/* Rule id of the longest IPv4 match for this port, else for every port; 0 = none. */
static __always_inline __u32 net4_trie_rule(const __u8 *addr, __u16 port_be)
{
	__u32 rule = net4_trie_lookup(addr, port_be);

	return rule ? rule : net4_trie_lookup(addr, 0);
}

/* The same for IPv6. */
static __always_inline __u32 net6_trie_rule(const __u8 *addr, __u16 port_be)
{
	__u32 rule = net6_trie_lookup(addr, port_be);

	return rule ? rule : net6_trie_lookup(addr, 0);
}

/* An IPv4 address in IPv6 form (::ffff:a.b.c.d): judged by the IPv4 rules. */
static __always_inline bool is_v4_mapped(const __u8 *a)
{
	return !(a[0] | a[1] | a[2] | a[3] | a[4] | a[5] | a[6] | a[7] | a[8] | a[9]) &&
	       a[10] == 0xff && a[11] == 0xff;
}

#endif /* ENFORCE_SHARED_MAPS_H */
