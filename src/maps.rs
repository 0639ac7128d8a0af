//! The maps every tier shares: created once per policy (sized to it), filled from the
//! rules, and reused by each tier's object, so a rule, a setting or an event is one
//! thing whichever tier acts on it.

use core::cell::Cell;
use core::ffi::CStr;
use core::ops::AddAssign;

use crate::abi;
use crate::bpf::{self, Map, Object};
use crate::ladder::Tier;
use crate::ladder::TIER_COUNT;
use crate::rules::{InodeEntries, NetKey, PathEntries};
use crate::trust::AllowList;

/// What the maps are filled with.
pub struct Rules<'a> {
    pub inodes: &'a InodeEntries,
    /// The path tier's names of the same rules.
    pub paths: &'a PathEntries,
    pub net: &'a [NetKey],
    pub ringbuf_size: u32,
    /// allow_exec_from (an allow list when not empty).
    pub exec_allow: &'a AllowList,
    /// allow_anon_exec = no.
    pub deny_anon_exec: bool,
}

/// Room in `deny_inodes` beyond the configured entries: the canaries, and inodes that
/// a rule followed onto by rename while the replaced one is still open somewhere.
const INODE_SLACK: u32 = 64;

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
}

impl AddAssign for Counters {
    fn add_assign(&mut self, o: Counters) {
        self.denied += o.denied;
        self.audited += o.audited;
        self.dropped += o.dropped;
        self.followed += o.followed;
        self.follow_failed += o.follow_failed;
    }
}

/// A tier's settings as last written.
#[derive(Clone, Copy)]
struct TierSettings {
    mode: Mode,
    signal: u8,
    canary_tgid: u32,
}

/// The loaded maps (an object of the embedded ELF with no program loaded).
pub struct Maps {
    obj: Object,
    /// `FLAG_*`: the exec policy, the same for every tier.
    flags: u32,
    /// The agent's own binary (see `enforce_settings.agent_dev`).
    agent: abi::InodeKey,
    tiers: [Cell<TierSettings>; TIER_COUNT],
}

impl Maps {
    /// Creates the maps, sized to `rules`, and fills them. Every tier starts quiet. They
    /// come from the path tier's object, which declares them all and, having no CO-RE
    /// relocation, loads on kernels without BTF too.
    pub fn create(rules: &Rules<'_>) -> Result<Maps, bpf::Error> {
        let mut obj = Object::open_image(bpf::PATH_OBJECT_BYTES, |_| false)?;
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let net4 = rules.net.iter().filter(|k| matches!(k, NetKey::V4(..))).count();
        let inodes = len(rules.inodes.len()).saturating_add(len(rules.inodes.len() / 4)).saturating_add(INODE_SLACK);
        obj.set_max_entries(c"deny_inodes", inodes)?;
        // The canaries add one name at a time.
        obj.set_max_entries(c"deny_paths", len(rules.paths.len()).saturating_add(INODE_SLACK))?;
        // The canaries add one entry per family.
        obj.set_max_entries(c"deny_net4", len(net4).saturating_add(1))?;
        obj.set_max_entries(c"deny_net6", len(rules.net.len() - net4).saturating_add(1))?;
        obj.set_max_entries(c"events", ringbuf_bytes(rules.ringbuf_size, rustix::param::page_size()))?;
        obj.set_max_entries(c"exec_allow", len(rules.exec_allow.len()).max(1))?;
        obj.load()?;
        let mut flags = 0;
        if !rules.exec_allow.is_empty() {
            flags |= abi::FLAG_ALLOW_LIST;
        }
        if rules.deny_anon_exec {
            flags |= abi::FLAG_DENY_ANON;
        }
        // The binary this process runs: /proc/self/exe names it even once replaced.
        let agent = crate::rules::inode_key("/proc/self/exe").unwrap_or_default();
        let quiet = TierSettings { mode: Mode::Quiet, signal: 0, canary_tgid: 0 };
        let maps = Maps { obj, flags, agent, tiers: core::array::from_fn(|_| Cell::new(quiet)) };
        maps.fill(rules)?;
        Ok(maps)
    }

    fn fill(&self, rules: &Rules<'_>) -> Result<(), bpf::Error> {
        let inodes = self.map(c"deny_inodes")?;
        for (key, rule) in rules.inodes {
            inodes.update(&key.to_bytes(), &rule.to_bytes())?;
        }
        let paths = self.map(c"deny_paths")?;
        for (key, rule) in rules.paths {
            paths.update(&key.to_bytes(), &rule.to_bytes())?;
        }
        let (net4, net6) = (self.map(c"deny_net4")?, self.map(c"deny_net6")?);
        for key in rules.net {
            match key {
                NetKey::V4(k, v) => net4.update(&k.to_bytes(), &v.to_bytes())?,
                NetKey::V6(k, v) => net6.update(&k.to_bytes(), &v.to_bytes())?,
            }
        }
        let allow = self.map(c"exec_allow")?;
        for a in rules.exec_allow {
            allow.update(&a.dev.to_ne_bytes(), &a.line.to_ne_bytes())?;
        }
        Ok(())
    }

    /// The object whose maps tier objects reuse.
    pub fn owner(&self) -> &Object {
        &self.obj
    }

    /// A map by name.
    pub fn map(&self, name: &'static CStr) -> Result<Map<'_>, bpf::Error> {
        self.obj.map(name)
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
            agent_tgid: rustix::process::getpid().as_raw_nonzero().get() as u32,
            signal: u32::from(t.signal),
            flags: self.flags,
            canary_tgid: t.canary_tgid,
            _pad: 0,
            agent_dev: self.agent.dev,
            agent_ino: self.agent.ino,
        };
        self.map(c"settings")?.update(&u32::from(tier.abi()).to_ne_bytes(), &settings.to_bytes())?;
        self.tiers[tier as usize].set(t);
        Ok(())
    }

    /// Reads the kernel-side counters.
    pub fn counters(&self) -> Result<Counters, bpf::Error> {
        let map = self.map(c"counters")?;
        Ok(Counters {
            denied: map.sum_percpu_u64(abi::COUNTER_DENIED)?,
            audited: map.sum_percpu_u64(abi::COUNTER_AUDITED)?,
            dropped: map.sum_percpu_u64(abi::COUNTER_DROPPED)?,
            followed: map.sum_percpu_u64(abi::COUNTER_FOLLOWED)?,
            follow_failed: map.sum_percpu_u64(abi::COUNTER_FOLLOW_FAILED)?,
        })
    }
}

/// A ring buffer must be a power-of-two multiple of the page size: on kernels with
/// 16K or 64K pages (arm64) a smaller configured size is raised to one page.
fn ringbuf_bytes(configured: u32, page_size: usize) -> u32 {
    let page = u32::try_from(page_size).unwrap_or(u32::MAX);
    configured.max(page)
}

#[cfg(test)]
mod tests {
    use super::ringbuf_bytes;

    #[test]
    fn ringbuf_is_at_least_one_page() {
        assert_eq!(ringbuf_bytes(4096, 4096), 4096);
        assert_eq!(ringbuf_bytes(256 << 10, 4096), 256 << 10);
        assert_eq!(ringbuf_bytes(4096, 16384), 16384);
        assert_eq!(ringbuf_bytes(8192, 65536), 65536);
        assert_eq!(ringbuf_bytes(1 << 20, 65536), 1 << 20);
    }
}
