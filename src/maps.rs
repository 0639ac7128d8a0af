//! The maps every tier shares: created once per policy (sized to it), filled from the
//! rules, and reused by each tier's object, so a rule, a setting or an event is one
//! thing whichever tier acts on it.

use core::ffi::CStr;
use core::ops::AddAssign;

use crate::abi;
use crate::bpf::{self, FdMap, Map, Object};
use crate::handover;
use crate::ladder::Tier;
use crate::rules::{InodeEntries, NetKey};

/// What the maps are filled with.
pub struct Rules<'a> {
    pub inodes: &'a InodeEntries,
    pub net: &'a [NetKey],
    pub ringbuf_size: u32,
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

/// The loaded maps (an object of the embedded ELF with no program loaded).
pub struct Maps {
    obj: Object,
}

impl Maps {
    /// Creates the maps, sized to `rules`, and fills them, for generation
    /// `generation`; `shared` is the agent's `handover` map (None: this one starts a
    /// new one, in which no generation acts yet). Every tier starts quiet.
    pub fn create(rules: &Rules<'_>, shared: Option<&FdMap>, generation: u32) -> Result<Maps, bpf::Error> {
        let mut obj = Object::open(|_| false)?;
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let net4 = rules.net.iter().filter(|k| matches!(k, NetKey::V4(..))).count();
        let inodes = len(rules.inodes.len()).saturating_add(len(rules.inodes.len() / 4)).saturating_add(INODE_SLACK);
        obj.set_max_entries(c"deny_inodes", inodes)?;
        // The canaries add one entry per family.
        obj.set_max_entries(c"deny_net4", len(net4).saturating_add(1))?;
        obj.set_max_entries(c"deny_net6", len(rules.net.len() - net4).saturating_add(1))?;
        obj.set_max_entries(c"events", ringbuf_bytes(rules.ringbuf_size, rustix::param::page_size()))?;
        if let Some(h) = shared {
            obj.reuse_map_fd(c"handover", h.fd())?;
        }
        obj.load()?;
        let maps = Maps { obj };
        maps.fill(rules)?;
        maps.stamp(shared.is_none(), generation)?;
        Ok(maps)
    }

    /// This generation's number; a new `handover` map's first entry.
    fn stamp(&self, new_handover: bool, generation: u32) -> Result<(), bpf::Error> {
        let zero = 0u32.to_ne_bytes();
        self.map(c"generation")?.update(&zero, &generation.to_ne_bytes())?;
        if new_handover {
            self.map(c"handover")?.update(&zero, &handover::initial(handover::identity()).to_bytes())?;
        }
        Ok(())
    }

    fn fill(&self, rules: &Rules<'_>) -> Result<(), bpf::Error> {
        let inodes = self.map(c"deny_inodes")?;
        for (key, rule) in rules.inodes {
            inodes.update(&key.to_bytes(), &rule.to_bytes())?;
        }
        let (net4, net6) = (self.map(c"deny_net4")?, self.map(c"deny_net6")?);
        for key in rules.net {
            match key {
                NetKey::V4(k, v) => net4.update(&k.to_bytes(), &v.to_bytes())?,
                NetKey::V6(k, v) => net6.update(&k.to_bytes(), &v.to_bytes())?,
            }
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
        let settings = abi::Settings {
            mode: match mode {
                Mode::Quiet => abi::MODE_QUIET,
                Mode::Audit => abi::MODE_AUDIT,
                Mode::Enforce => abi::MODE_ENFORCE,
            },
            agent_tgid: rustix::process::getpid().as_raw_nonzero().get() as u32,
            signal: u32::from(signal),
            _pad: 0,
        };
        self.map(c"settings")?.update(&u32::from(tier.abi()).to_ne_bytes(), &settings.to_bytes())
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
