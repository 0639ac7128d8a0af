/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The shared maps both BPF sources use, declared once: bpf/enforce.bpf.c (whose
 * maps-only build the agent creates them from) and bpf/path.bpf.c (whose object
 * reuses them by name) include this after enforce.h and bpf_helpers.h.  Capacities are
 * placeholders: the agent sizes every map to its policy before load.
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

#endif /* ENFORCE_SHARED_MAPS_H */
