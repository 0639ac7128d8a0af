//! The maps every tier shares: created once per policy (sized to it), filled from the
//! rules, and reused by each tier's object, so a rule, a setting or an event is one
//! thing whichever tier acts on it.

use core::cell::Cell;
use core::ops::AddAssign;

use crate::abi;
use crate::bpf::{self, BtfChoice, FdMap, Image, Map, Object};
use crate::handover::{self, Handover};
use crate::ladder::Tier;
use crate::ladder::TIER_COUNT;
use crate::map_names::MapName;
use crate::rules::{InodeEntries, NetKey, PathNames};
use crate::trust::AllowList;

/// What the maps are filled with.
pub struct Rules<'a> {
    pub inodes: &'a InodeEntries,
    pub net: &'a [NetKey],
    pub ringbuf_size: u32,
    /// allow_exec_from (an allow list when not empty).
    pub exec_allow: &'a AllowList,
    /// allow_anon_exec = no.
    pub deny_anon_exec: bool,
}

/// Room in `deny_inodes` beyond the configured entries: the canaries, and inodes that
/// a rule followed onto by rename while the replaced one is still open somewhere (an
/// eighth more, and 64). The map is preallocated: every entry costs kernel memory
/// (about 80 bytes) whether used or not, so the room is modest; a follow that finds
/// the map full is counted (`follow_failed`) and the agent's own follower retries.
const INODE_SLACK: u32 = 64;

/// Words of `inode_filter` for `entries` inodes: 16 bits per inode (a rejected
/// lookup then errs about one time in 16 at most), a power of two, at least 64 words
/// (512 bytes) and at most 2^18 (the hash has 24 bits).
pub fn inode_filter_words(entries: usize) -> u32 {
    let bits = (entries as u64).saturating_mul(16).max(64 * 64);
    bits.div_ceil(64).next_power_of_two().min(1 << 18) as u32
}

/// The word and bit of inode number `ino` in an inode filter of `words` words.
pub fn inode_filter_bit(ino: u64, words: u32) -> (u32, u64) {
    let b = abi::inode_hash(ino);
    ((b >> 6) as u32 & (words - 1), 1 << (b & 63))
}

/// The bits of `net_filter` a rule covers: the first /16 of its prefix in the array of
/// its family and kind (for one port, or `every_port`), and how many /16s follow from
/// there (a prefix shorter than /16 covers many). The arrays' order is enforce.h's.
pub fn net_filter_bits(v6: bool, every_port: bool, addr: &[u8], cidr: u32) -> (u32, u32) {
    let first = u32::from(addr[0]) << 8 | u32::from(addr[1]);
    let count = if cidr >= 16 { 1 } else { 1 << (16 - cidr) };
    let base = (u32::from(every_port) * 2 + u32::from(v6)) * abi::NET_FILTER_WORDS * 64;
    (base + (first & !(count - 1)), count)
}

/// Sets bits `first..first + count` of a bit array of u64 words.
fn set_bits(words: &mut [u64], first: u32, count: u32) {
    for bit in first..first + count {
        words[(bit / 64) as usize] |= 1 << (bit % 64);
    }
}

/// A tier's programs: only the canary acts, everything is reported, or rules are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Quiet,
    Audit,
    Enforce,
}

/// Totals of the per-CPU counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub denied: u64,
    pub audited: u64,
    pub dropped: u64,
    pub followed: u64,
    pub follow_failed: u64,
    /// Paths and destinations a program could not read from the caller's memory.
    pub unreadable: u64,
}

impl AddAssign for Counters {
    fn add_assign(&mut self, o: Counters) {
        self.denied += o.denied;
        self.audited += o.audited;
        self.dropped += o.dropped;
        self.followed += o.followed;
        self.follow_failed += o.follow_failed;
        self.unreadable += o.unreadable;
    }
}

/// A tier's settings as last written.
#[derive(Clone, Copy)]
struct TierSettings {
    mode: Mode,
    signal: u8,
    canary_tgid: u32,
}

/// Room in `deny_paths` beyond the policy's names: the path tier's canaries add one
/// name at a time.
const NAME_SLACK: u32 = 8;

/// Names written to `deny_paths` per system call: the keys are 256 bytes, and 40,000
/// of them laid out at once would be 10 MB of the agent's memory.
const NAMES_PER_BATCH: usize = 256;

/// The loaded maps (an object of the embedded ELF with no program loaded).
pub struct Maps {
    obj: Object,
    /// The maps only the path tier uses (`deny_paths`, its scratch, `path_agent`), in an
    /// object of its image with no program loaded and the shared maps reused: made
    /// when the ladder brings that tier up, and not otherwise (`deny_paths` costs
    /// about 0.5 kB of kernel memory per name).
    names: Option<Object>,
    /// `FLAG_*`: the exec policy, the same for every tier.
    flags: u32,
    tiers: [Cell<TierSettings>; TIER_COUNT],
    /// Length of `inode_filter`.
    filter_words: u32,
}

impl Maps {
    /// Creates the maps, sized to `rules` and to the programs `btf` opens, and fills
    /// them, for generation `generation`; `shared` is the agent's `handover` map (None:
    /// this one starts a new one, in which no generation acts yet). Every tier starts
    /// quiet.
    pub fn create(rules: &Rules<'_>, btf: &BtfChoice, shared: Option<&FdMap>, generation: u32) -> Result<Maps, bpf::Error> {
        let started = std::time::Instant::now();
        let mut obj = Object::open_maps(btf)?;
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let net4 = rules.net.iter().filter(|k| matches!(k, NetKey::V4(..))).count();
        let inodes = len(rules.inodes.len()).saturating_add(len(rules.inodes.len() / 8)).saturating_add(INODE_SLACK);
        obj.set_max_entries(MapName::DenyInodes.name(), inodes)?;
        // The programs for kernels without BTF cannot read the filter's length (enforce.h).
        let filter_words =
            if btf.is_file() { abi::INODE_FILTER_WORDS_NO_BTF } else { inode_filter_words(rules.inodes.len()) };
        obj.set_max_entries(MapName::InodeFilter.name(), filter_words)?;
        // The canaries add one entry per family.
        obj.set_max_entries(MapName::DenyNet4.name(), len(net4).saturating_add(1))?;
        obj.set_max_entries(MapName::DenyNet6.name(), len(rules.net.len() - net4).saturating_add(1))?;
        obj.set_max_entries(MapName::Events.name(), ringbuf_bytes(rules.ringbuf_size, rustix::param::page_size()))?;
        obj.set_max_entries(MapName::ExecAllow.name(), len(rules.exec_allow.len()).max(1))?;
        if let Some(h) = shared {
            obj.reuse_map_fd(MapName::Handover.name(), h.fd())?;
        }
        obj.load()?;
        let mut flags = 0;
        if !rules.exec_allow.is_empty() {
            flags |= abi::FLAG_ALLOW_LIST;
        }
        if rules.deny_anon_exec {
            flags |= abi::FLAG_DENY_ANON;
        }
        flags |= class_flags(rules);
        let quiet = TierSettings { mode: Mode::Quiet, signal: 0, canary_tgid: 0 };
        let maps = Maps { obj, names: None, flags, tiers: core::array::from_fn(|_| Cell::new(quiet)), filter_words };
        let created = started.elapsed();
        maps.fill(rules)?;
        maps.stamp(shared.is_none(), generation)?;
        log::debug!(
            "maps: created in {created:?}, filled with {} inodes and {} networks in {:?}",
            rules.inodes.len(),
            rules.net.len(),
            started.elapsed() - created
        );
        Ok(maps)
    }

    /// This generation's number; a new `handover` map's first entry.
    fn stamp(&self, new_handover: bool, generation: u32) -> Result<(), bpf::Error> {
        let zero = 0u32.to_ne_bytes();
        self.map(MapName::Generation)?.update(&zero, &generation.to_ne_bytes())?;
        if new_handover {
            self.map(MapName::Handover)?.update(&zero, &handover::initial(handover::identity()).to_bytes())?;
        }
        Ok(())
    }

    /// Fills the maps in batches (a system call per map where the kernel can, not one
    /// per rule: 30,000 rules would take tens of milliseconds one by one).
    fn fill(&self, rules: &Rules<'_>) -> Result<(), bpf::Error> {
        let mut filter = vec![0u64; self.filter_words as usize];
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        for (key, rule) in rules.inodes {
            let (word, bit) = inode_filter_bit(key.ino, self.filter_words);
            filter[word as usize] |= bit;
            keys.extend_from_slice(&key.to_bytes());
            values.extend_from_slice(&rule.to_bytes());
        }
        // The filter first: an entry it hid would not be enforced.
        self.update_words(MapName::InodeFilter, &filter)?;
        self.map(MapName::DenyInodes)?.update_many(&keys, &values, rules.inodes.len())?;

        let mut net_filter = vec![0u64; 4 * abi::NET_FILTER_WORDS as usize];
        let (mut k4, mut v4, mut k6, mut v6) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for key in rules.net {
            let (first, count) = match key {
                NetKey::V4(k, v) => {
                    k4.extend_from_slice(&k.to_bytes());
                    v4.extend_from_slice(&v.to_bytes());
                    net_filter_bits(false, k.port == 0, &k.addr, k.prefixlen - 32)
                }
                NetKey::V6(k, v) => {
                    k6.extend_from_slice(&k.to_bytes());
                    v6.extend_from_slice(&v.to_bytes());
                    net_filter_bits(true, k.port == 0, &k.addr, k.prefixlen - 32)
                }
            };
            set_bits(&mut net_filter, first, count);
        }
        self.update_words(MapName::NetFilter, &net_filter)?;
        self.map(MapName::DenyNet4)?.update_many(&k4, &v4, k4.len() / abi::Net4Key::SIZE)?;
        self.map(MapName::DenyNet6)?.update_many(&k6, &v6, k6.len() / abi::Net6Key::SIZE)?;
        let allow = self.map(MapName::ExecAllow)?;
        for a in rules.exec_allow {
            allow.update(&a.dev.to_ne_bytes(), &a.line.to_ne_bytes())?;
        }
        Ok(())
    }

    /// Writes a whole array of u64 words.
    fn update_words(&self, name: MapName, words: &[u64]) -> Result<(), bpf::Error> {
        let keys: Vec<u8> = (0..words.len() as u32).flat_map(u32::to_ne_bytes).collect();
        let values: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        self.map(name)?.update_many(&keys, &values, words.len())
    }

    /// Ors `bit` into word `word` of an array the BPF programs only read.
    fn set_word_bit(&self, name: MapName, word: u32, bit: u64) -> Result<(), bpf::Error> {
        let map = self.map(name)?;
        let mut value = [0u8; 8];
        map.lookup(&word.to_ne_bytes(), &mut value)?;
        let new = u64::from_ne_bytes(value) | bit;
        if new != u64::from_ne_bytes(value) {
            map.update(&word.to_ne_bytes(), &new.to_ne_bytes())?;
        }
        Ok(())
    }

    /// Lets inode number `ino` through the inode filter: call before giving it an
    /// entry of `deny_inodes` (the canaries, the agent's own follower).
    pub fn mark_inode(&self, ino: u64) -> Result<(), bpf::Error> {
        let (word, bit) = inode_filter_bit(ino, self.filter_words);
        self.set_word_bit(MapName::InodeFilter, word, bit)
    }

    /// Lets the /16 of an IPv4 address through the net filter for rules of one port
    /// (the connect canaries).
    pub fn mark_net4_port(&self, addr: [u8; 4]) -> Result<(), bpf::Error> {
        let (first, _) = net_filter_bits(false, false, &addr, 32);
        self.set_word_bit(MapName::NetFilter, first / 64, 1 << (first % 64))
    }

    /// Makes the path tier's own maps, `deny_paths` sized to `names` and filled with
    /// them, and names the agent to its programs (`path_agent`); once per generation.
    /// `btf` is what the generation's objects relocate against.
    pub fn add_names(&mut self, names: &PathNames, btf: &BtfChoice) -> Result<(), bpf::Error> {
        if self.names.is_some() {
            return Ok(());
        }
        let mut obj = Object::open_image(Image::Path, btf, |_| false)?;
        obj.reuse_maps(&self.obj)?;
        let entries = u32::try_from(names.len()).unwrap_or(u32::MAX).saturating_add(NAME_SLACK);
        obj.set_max_entries(MapName::DenyPaths.name(), entries)?;
        obj.load()?;
        let deny_paths = obj.map(MapName::DenyPaths.name())?;
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        let mut all = names.iter().peekable();
        while all.peek().is_some() {
            keys.clear();
            values.clear();
            for (key, rule) in all.by_ref().take(NAMES_PER_BATCH) {
                keys.extend_from_slice(&key.to_bytes());
                values.extend_from_slice(&rule.to_bytes());
            }
            deny_paths.update_many(&keys, &values, keys.len() / abi::PATH_LEN)?;
        }
        let me = handover::path_agent();
        obj.map(MapName::PathAgent.name())?.update(&0u32.to_ne_bytes(), &me.to_bytes())?;
        self.names = Some(obj);
        Ok(())
    }

    /// The object holding the shared maps (what pinning pins).
    pub fn owner(&self) -> &Object {
        &self.obj
    }

    /// The object whose maps the objects of `image` reuse.
    pub fn owner_for(&self, image: Image) -> &Object {
        match (image, &self.names) {
            (Image::Path, Some(names)) => names,
            _ => &self.obj,
        }
    }

    /// A map by name (the path tier's own once made).
    pub fn map(&self, name: MapName) -> Result<Map<'_>, bpf::Error> {
        match (self.obj.map(name.name()), &self.names) {
            (Err(_), Some(names)) => names.map(name.name()),
            (found, _) => found,
        }
    }

    /// Sets what `tier`'s programs do, and the signal a signal tier sends.
    pub fn set_mode(&self, tier: Tier, mode: Mode, signal: u8) -> Result<(), bpf::Error> {
        let t = &self.tiers[tier as usize];
        self.write_settings(tier, TierSettings { mode, signal, ..t.get() })
    }

    /// Names the child of the anonymous-memory canary for `tier` (0: none).
    pub fn set_canary_child(&self, tier: Tier, tgid: u32) -> Result<(), bpf::Error> {
        let t = &self.tiers[tier as usize];
        self.write_settings(tier, TierSettings { canary_tgid: tgid, ..t.get() })
    }

    /// Whether the exec policy has an allow list, and whether it denies anonymous
    /// executable memory: what the canaries must also prove.
    pub fn exec_policy(&self) -> (bool, bool) {
        (self.flags & abi::FLAG_ALLOW_LIST != 0, self.flags & abi::FLAG_DENY_ANON != 0)
    }

    fn write_settings(&self, tier: Tier, t: TierSettings) -> Result<(), bpf::Error> {
        let settings = abi::Settings {
            mode: match t.mode {
                Mode::Quiet => abi::MODE_QUIET,
                Mode::Audit => abi::MODE_AUDIT,
                Mode::Enforce => abi::MODE_ENFORCE,
            },
            signal: u32::from(t.signal),
            flags: self.flags,
            canary_tgid: t.canary_tgid,
        };
        self.map(MapName::Settings)?.update(&u32::from(tier.abi()).to_ne_bytes(), &settings.to_bytes())?;
        self.tiers[tier as usize].set(t);
        Ok(())
    }

    /// The agent's handle on the `handover` map these maps created.
    pub fn handover(&self) -> Result<Handover, bpf::Error> {
        Handover::of(&self.map(MapName::Handover)?)
    }

    /// The ring buffer the programs report to.
    pub fn events(&self) -> Result<Map<'_>, bpf::Error> {
        self.map(MapName::Events)
    }

    /// One kernel-side counter (`abi::COUNTER_*`), summed over the CPUs.
    pub fn counter(&self, key: u32) -> Result<u64, bpf::Error> {
        self.map(MapName::Counters)?.sum_percpu_u64(key)
    }

    /// Reads the kernel-side counters.
    pub fn counters(&self) -> Result<Counters, bpf::Error> {
        let map = self.map(MapName::Counters)?;
        Ok(Counters {
            denied: map.sum_percpu_u64(abi::COUNTER_DENIED)?,
            audited: map.sum_percpu_u64(abi::COUNTER_AUDITED)?,
            dropped: map.sum_percpu_u64(abi::COUNTER_DROPPED)?,
            followed: map.sum_percpu_u64(abi::COUNTER_FOLLOWED)?,
            follow_failed: map.sum_percpu_u64(abi::COUNTER_FOLLOW_FAILED)?,
            unreadable: map.sum_percpu_u64(abi::COUNTER_UNREADABLE)?,
        })
    }
}

/// `FLAG_*_RULES`: the classes the policy has deny rules for, the only ones whose
/// unreadable paths and destinations the programs act on.
fn class_flags(rules: &Rules<'_>) -> u32 {
    let mut flags = 0;
    if rules.inodes.iter().any(|(_, r)| r.open_rule != 0) {
        flags |= abi::FLAG_OPEN_RULES;
    }
    if rules.inodes.iter().any(|(_, r)| r.exec_rule != 0) {
        flags |= abi::FLAG_EXEC_RULES;
    }
    if !rules.net.is_empty() {
        flags |= abi::FLAG_CONNECT_RULES;
    }
    flags
}

/// A ring buffer must be a power-of-two multiple of the page size: on kernels with
/// 16K or 64K pages (arm64) a smaller configured size is raised to one page.
fn ringbuf_bytes(configured: u32, page_size: usize) -> u32 {
    let page = u32::try_from(page_size).unwrap_or(u32::MAX);
    configured.max(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_flags_name_the_classes_with_rules() {
        let allow = Default::default();
        let rules = |inodes, net| Rules { inodes, net, ringbuf_size: 4096, exec_allow: &allow, deny_anon_exec: false };
        let key = abi::InodeKey { dev: 1, ino: 2 };
        let open = vec![(key, abi::InodeRule { open_rule: 3, exec_rule: 0 })];
        let exec = vec![(key, abi::InodeRule { open_rule: 0, exec_rule: 4 })];
        let net = [crate::rules::NetKey::V4(abi::Net4Key { prefixlen: 64, port: 0, _pad: 0, addr: [10, 0, 0, 1] }, abi::NetRule { rule: 5 })];
        let none = Vec::new();
        assert_eq!(class_flags(&rules(&none, &[])), 0, "no rules: nothing unreadable is acted on");
        assert_eq!(class_flags(&rules(&open, &[])), abi::FLAG_OPEN_RULES);
        assert_eq!(class_flags(&rules(&exec, &net)), abi::FLAG_EXEC_RULES | abi::FLAG_CONNECT_RULES);
    }

    #[test]
    fn inode_filters_grow_with_the_policy() {
        assert_eq!(inode_filter_words(0), 64);
        assert_eq!(inode_filter_words(1), 64);
        assert_eq!(inode_filter_words(256), 64);
        assert_eq!(inode_filter_words(257), 128);
        assert_eq!(inode_filter_words(20_000), 8192, "16 bits per inode, a power of two: 64 KiB");
        assert_eq!(inode_filter_words(usize::MAX), 1 << 18);
        for words in [64, 8192, 1 << 18] {
            for ino in [0, 1, 2, 12345, u64::MAX] {
                let (w, bit) = inode_filter_bit(ino, words);
                assert!(w < words && bit.count_ones() == 1);
                let b = abi::inode_hash(ino);
                assert_eq!((w, bit), (((b >> 6) % u64::from(words)) as u32, 1 << (b % 64)), "as enforce.h says");
            }
        }
        // 20,000 consecutive inode numbers (files made in a row) spread over the filter.
        let words = inode_filter_words(20_000);
        let mut filter = vec![0u64; words as usize];
        for ino in 1_000_000..1_020_000 {
            let (w, bit) = inode_filter_bit(ino, words);
            filter[w as usize] |= bit;
        }
        let set: u32 = filter.iter().map(|w| w.count_ones()).sum();
        assert!(set > 18_000, "{set} bits for 20,000 inodes");
    }

    #[test]
    fn net_filters_cover_each_rules_slash16s() {
        assert_eq!(net_filter_bits(false, false, &[10, 1, 2, 0], 24), (10 << 8 | 1, 1));
        assert_eq!(net_filter_bits(false, false, &[10, 1, 0, 0], 16), (10 << 8 | 1, 1));
        assert_eq!(net_filter_bits(false, false, &[10, 0, 0, 0], 8), (10 << 8, 256));
        assert_eq!(net_filter_bits(false, false, &[0, 0, 0, 0], 0), (0, 65536));
        assert_eq!(net_filter_bits(false, false, &[192, 168, 0, 0], 13), (192 << 8 | 168, 8));
        let array = abi::NET_FILTER_WORDS * 64; // bits per family and kind
        assert_eq!(net_filter_bits(true, false, &[0x20, 0x01, 0x0d, 0xb8], 32), (array + 0x2001, 1));
        assert_eq!(net_filter_bits(true, false, &[0xfc, 0, 0, 0], 7), (array + 0xfc00, 512));
        // Rules for every port: the third (IPv4) and fourth (IPv6) arrays.
        assert_eq!(net_filter_bits(false, true, &[10, 1, 2, 0], 24), (2 * array + (10 << 8 | 1), 1));
        assert_eq!(net_filter_bits(true, true, &[0xfc, 0, 0, 0], 7), (3 * array + 0xfc00, 512));
        let words_of = |n: usize| n * abi::NET_FILTER_WORDS as usize;
        let mut words = vec![0u64; words_of(4)];
        let (first, count) = net_filter_bits(false, true, &[0, 0, 0, 0], 0);
        set_bits(&mut words, first, count);
        assert!(words[words_of(2)..words_of(3)].iter().all(|&w| w == u64::MAX), "/0 covers all of IPv4 for every port");
        assert!(words[..words_of(2)].iter().chain(&words[words_of(3)..]).all(|&w| w == 0), "and nothing else");
    }

    #[test]
    fn ringbuf_is_at_least_one_page() {
        assert_eq!(ringbuf_bytes(4096, 4096), 4096);
        assert_eq!(ringbuf_bytes(256 << 10, 4096), 256 << 10);
        assert_eq!(ringbuf_bytes(4096, 16384), 16384);
        assert_eq!(ringbuf_bytes(8192, 65536), 65536);
        assert_eq!(ringbuf_bytes(1 << 20, 65536), 1 << 20);
    }
}
