//! Bringing a tier up: open the embedded object with only that tier's programs, load
//! it, fill the deny maps, attach per class, and prove it with the canary. Every step
//! is recorded as a fact for the posture gate; whatever fails is torn down by `Drop`.

use core::ffi::CStr;

use crate::abi;
use crate::bpf::{self, Link, Object};
use crate::canary;
use crate::probe;
use crate::posture::{Step, TierFacts, TierKind, CLASSES};
use crate::rules::{InodeEntries, NetKey};

/// Programs of the LSM tier, per class (indexed like `posture::CLASSES`).
const LSM_PROGRAMS: [&[&CStr]; 3] = [&[c"enforce_file_open"], &[c"enforce_exec"], &[c"enforce_connect"]];

/// Programs of the signal tier, per class. The open family differs per architecture
/// (arm64 has no open or creat): a syscall the kernel lacks is skipped at attach.
const SIGNAL_PROGRAMS: [&[&CStr]; 3] = [
    &[c"signal_open", c"signal_openat", c"signal_openat2", c"signal_creat"],
    &[c"signal_exec"],
    &[c"signal_connect"],
];

fn programs(kind: TierKind) -> &'static [&'static [&'static CStr]; 3] {
    match kind {
        TierKind::Lsm => &LSM_PROGRAMS,
        TierKind::Signal => &SIGNAL_PROGRAMS,
    }
}

/// Every program of the other tier: those are not loaded.
fn others(kind: TierKind) -> heapless::Vec<&'static CStr, 16> {
    let other = match kind {
        TierKind::Lsm => TierKind::Signal,
        TierKind::Signal => TierKind::Lsm,
    };
    programs(other).iter().flat_map(|p| p.iter().copied()).collect()
}

/// What the maps are filled with.
pub struct Rules<'a> {
    pub inodes: &'a InodeEntries,
    pub net: &'a [NetKey],
    pub ringbuf_size: u32,
    pub signal: u8,
}

/// A loaded, attached tier. Field order matters: links detach before the object closes.
pub struct Active {
    pub kind: TierKind,
    links: Vec<Link>,
    pub obj: Object,
}

impl Active {
    /// Detaches every program. The maps stay readable (the last events, the
    /// counters) until the tier is dropped.
    pub fn detach(&mut self) {
        self.links.clear();
    }

    /// Switches the programs between reporting only and denying (or signalling).
    /// Until this is called after bring-up they only report (the canary excepted).
    pub fn set_enforcing(&self, enforcing: bool, signal: u8) -> Result<(), bpf::Error> {
        write_settings(&self.obj, enforcing, signal)
    }
}

fn write_settings(obj: &Object, enforcing: bool, signal: u8) -> Result<(), bpf::Error> {
    let settings = abi::Settings {
        mode: if enforcing { abi::MODE_ENFORCE } else { abi::MODE_AUDIT },
        agent_tgid: rustix::process::getpid().as_raw_nonzero().get() as u32,
        signal: u32::from(signal),
        _pad: 0,
    };
    obj.map(c"settings")?.update(&0u32.to_ne_bytes(), &settings.to_bytes())
}

fn errno_of(e: &bpf::Error) -> i32 {
    e.errno.raw_os_error()
}

/// Brings `kind` up as far as it goes. Returns the facts, and the tier when it loaded
/// and at least one class attached (whether the canary passed or not: the caller
/// decides from the facts, and drops it when it is not used).
pub fn bring_up(kind: TierKind, rules: &Rules<'_>, canary_signal: Option<i32>) -> (TierFacts, Option<Active>) {
    let mut facts = TierFacts::default();
    if kind == TierKind::Signal {
        probe::ensure_tracefs();
    }
    let mut obj = match open_and_load(kind, rules) {
        Ok(obj) => obj,
        Err(e) => {
            log::debug!("{} tier: {e}", kind.name());
            facts.load = Step::Failed(errno_of(&e));
            return (facts, None);
        }
    };
    facts.load = Step::Ok;
    if let Err(e) = fill_maps(&mut obj, rules) {
        // A map the program was built with refused an entry: nothing can be trusted.
        log::error!("{} tier: {e}", kind.name());
        facts.load = Step::Failed(errno_of(&e));
        return (facts, None);
    }

    let mut links = Vec::new();
    for c in CLASSES {
        facts.attach[c as usize] = attach_class(&obj, programs(kind)[c as usize], &mut links);
    }
    if links.is_empty() {
        return (facts, None);
    }
    let active = Active { kind, links, obj };
    facts.canary = match canary::run(&active, canary_signal) {
        Ok(()) => Step::Ok,
        Err(e) => {
            log::warn!("{} tier canary failed: {e}", kind.name());
            Step::Failed(e.errno())
        }
    };
    (facts, Some(active))
}

fn open_and_load(kind: TierKind, rules: &Rules<'_>) -> Result<Object, bpf::Error> {
    let mut obj = Object::open(&others(kind))?;
    obj.set_max_entries(c"events", ringbuf_bytes(rules.ringbuf_size, rustix::param::page_size()))?;
    obj.load()?;
    Ok(obj)
}

/// A ring buffer must be a power-of-two multiple of the page size: on kernels with
/// 16K or 64K pages (arm64) a smaller configured size is raised to one page.
fn ringbuf_bytes(configured: u32, page_size: usize) -> u32 {
    let page = u32::try_from(page_size).unwrap_or(u32::MAX);
    configured.max(page)
}

fn fill_maps(obj: &mut Object, rules: &Rules<'_>) -> Result<(), bpf::Error> {
    write_settings(obj, false, rules.signal)?;
    let inodes = obj.map(c"deny_inodes")?;
    for (key, rule) in rules.inodes {
        inodes.update(&key.to_bytes(), &rule.to_bytes())?;
    }
    let (net4, net6) = (obj.map(c"deny_net4")?, obj.map(c"deny_net6")?);
    for key in rules.net {
        match key {
            NetKey::V4(k, v) => net4.update(&k.to_bytes(), &v.to_bytes())?,
            NetKey::V6(k, v) => net6.update(&k.to_bytes(), &v.to_bytes())?,
        }
    }
    Ok(())
}

/// Attaches every program of one class, all or nothing. A program whose hook the
/// kernel lacks (ENOENT: a syscall this architecture does not have) is skipped; any
/// other failure fails the class (detaching what it had attached), and so does
/// attaching nothing.
fn attach_class(obj: &Object, progs: &[&'static CStr], links: &mut Vec<Link>) -> Step {
    let mut class_links = Vec::new();
    let mut missing = 0;
    for &name in progs {
        let result = obj.program(name).and_then(|p| p.attach());
        match result {
            Ok(link) => class_links.push(link),
            Err(e) if e.errno == rustix::io::Errno::NOENT => {
                log::debug!("{e}: skipped");
                missing = errno_of(&e);
            }
            Err(e) => {
                log::debug!("{e}");
                return Step::Failed(errno_of(&e));
            }
        }
    }
    match (class_links.is_empty(), progs.is_empty()) {
        (true, true) => Step::NotTried,
        (true, false) => Step::Failed(missing),
        (false, _) => {
            links.append(&mut class_links);
            Step::Ok
        }
    }
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
