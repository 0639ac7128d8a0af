//! The posture gate: facts about the kernel + the config → what is really enforced.
//!
//! Pure and total, so a test can walk its whole truth table. The one invariant that
//! matters most: **ENFORCE needs a passed LSM canary** — a listed, loaded and attached
//! BPF-LSM program proves nothing until a denied open has actually failed with EPERM.
//!
//! The classes judged are those the config has rules for (all three when it has none).
//! The LSM tier is used when it is listed, loaded, its canary passed and every judged
//! class attached; otherwise it is dropped whole and the signal tier serves each class
//! whose programs attached, provided its canary passed and the config allows it
//! (`fallback = signal | audit`, or `mode = audit`). The overall posture is the weakest
//! judged class:
//! - ENFORCE: the LSM tier serves every judged class;
//! - ENFORCE_SIGNAL: `fallback = signal` and the signal tier serves every judged class;
//! - AUDIT_ONLY: `mode = audit`, `fallback = audit`, or some judged class has no tier
//!   (then the classes that do have one keep working, and the blockers name the rest);
//! - REFUSED: `fallback = refuse` and the LSM tier is not complete, or no tier serves
//!   any judged class. The agent then attaches nothing.

use core::fmt;

use crate::config::{Fallback, Mode};

/// The classes of operation, in the order of every per-class array here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Open = 0,
    Exec = 1,
    Connect = 2,
}

/// Every class, in array order.
pub const CLASSES: [Class; 3] = [Class::Open, Class::Exec, Class::Connect];

impl Class {
    /// Stable name used in reports and blockers.
    pub fn name(self) -> &'static str {
        match self {
            Class::Open => "open",
            Class::Exec => "exec",
            Class::Connect => "connect",
        }
    }
}

/// One step of bringing a tier up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Step {
    /// Not attempted (an earlier step failed, or the tier was not needed).
    #[default]
    NotTried,
    Ok,
    /// Failed with this errno (0 when there is none, e.g. a canary that opened).
    Failed(i32),
}

/// What happened when one tier was brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TierFacts {
    pub load: Step,
    /// Per class, indexed by `Class as usize`.
    pub attach: [Step; 3],
    /// The live test: a child opening a denied canary file was denied (LSM) or
    /// killed by the configured signal (signal tier).
    pub canary: Step,
}

/// Everything the gate decides from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// `bpf` is in the active LSM list.
    pub lsm_listed: bool,
    pub lsm: TierFacts,
    pub signal: TierFacts,
}

/// The overall posture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Enforce,
    EnforceSignal,
    AuditOnly,
    Refused,
}

impl State {
    /// Stable name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            State::Enforce => "ENFORCE",
            State::EnforceSignal => "ENFORCE_SIGNAL",
            State::AuditOnly => "AUDIT_ONLY",
            State::Refused => "REFUSED",
        }
    }
}

/// Which tier serves a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierKind {
    Lsm,
    Signal,
}

impl TierKind {
    /// Stable name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            TierKind::Lsm => "lsm",
            TierKind::Signal => "signal",
        }
    }
}

/// Why something is weaker than ENFORCE. Codes are stable: scripts match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocker {
    /// `bpf` is not in the active LSM list: LSM programs would load and never run.
    LsmNotListed,
    LsmLoadFailed(i32),
    LsmAttachFailed(Class, i32),
    /// Everything attached, yet the canary open was not denied.
    LsmCanaryFailed(i32),
    SignalLoadFailed(i32),
    SignalAttachFailed(Class, i32),
    SignalCanaryFailed(i32),
    /// This class has rules but no tier can enforce it.
    ClassUnenforced(Class),
    /// The LSM tier was listed but not (fully) tried.
    LsmNotTried,
}

impl Blocker {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Blocker::LsmNotListed => "lsm-not-listed",
            Blocker::LsmLoadFailed(_) => "lsm-load-failed",
            Blocker::LsmAttachFailed(..) => "lsm-attach-failed",
            Blocker::LsmCanaryFailed(_) => "lsm-canary-failed",
            Blocker::SignalLoadFailed(_) => "signal-load-failed",
            Blocker::SignalAttachFailed(..) => "signal-attach-failed",
            Blocker::SignalCanaryFailed(_) => "signal-canary-failed",
            Blocker::ClassUnenforced(_) => "class-unenforced",
            Blocker::LsmNotTried => "lsm-not-tried",
        }
    }
}

impl fmt::Display for Blocker {
    /// `code` or `code:class`, then `:errno` where there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())?;
        match *self {
            Blocker::LsmAttachFailed(c, e) | Blocker::SignalAttachFailed(c, e) => write!(f, ":{}:{}", c.name(), e),
            Blocker::ClassUnenforced(c) => write!(f, ":{}", c.name()),
            Blocker::LsmLoadFailed(e) | Blocker::LsmCanaryFailed(e) | Blocker::SignalLoadFailed(e) | Blocker::SignalCanaryFailed(e) => {
                write!(f, ":{e}")
            }
            Blocker::LsmNotListed | Blocker::LsmNotTried => Ok(()),
        }
    }
}

/// Room for every blocker one decision can produce.
pub const MAX_BLOCKERS: usize = 16;

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posture {
    pub state: State,
    /// Per class: the tier that serves it, None when nothing does.
    pub tiers: [Option<TierKind>; 3],
    pub blockers: heapless::Vec<Blocker, MAX_BLOCKERS>,
}

/// What the config asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub mode: Mode,
    pub fallback: Fallback,
    /// Per class: the config has rules for it.
    pub in_use: [bool; 3],
}

/// The classes the posture is judged on: those the config has rules for, or all
/// three when it has none (then `--check` still tells what the kernel can do).
fn counted(w: &Wanted) -> heapless::Vec<Class, 3> {
    let any = w.in_use.iter().any(|&u| u);
    CLASSES.iter().copied().filter(|&c| !any || w.in_use[c as usize]).collect()
}

/// The LSM tier is listed, loaded, its canary passed, and every counted class attached.
/// Only then is it used; otherwise the signal tier takes over every class.
pub fn lsm_complete(f: &Facts, w: &Wanted) -> bool {
    f.lsm_listed
        && f.lsm.load == Step::Ok
        && f.lsm.canary == Step::Ok
        && counted(w).iter().all(|&c| f.lsm.attach[c as usize] == Step::Ok)
}

/// Whether to bring up the signal tier once the LSM tier's facts are known.
pub fn wants_signal_tier(f: &Facts, w: &Wanted) -> bool {
    !lsm_complete(f, w) && (w.mode == Mode::Audit || w.fallback != Fallback::Refuse)
}

/// Whether the programs deny (LSM) or signal (signal tier), as opposed to only
/// reporting. With `fallback = signal` a partial signal tier still enforces the
/// classes it covers, though the overall posture is then AUDIT_ONLY.
pub fn programs_enforce(f: &Facts, w: &Wanted) -> bool {
    w.mode == Mode::Enforce && (lsm_complete(f, w) || w.fallback == Fallback::Signal)
}

fn tier_blockers(t: &TierFacts, load: fn(i32) -> Blocker, attach: fn(Class, i32) -> Blocker, canary: fn(i32) -> Blocker, out: &mut heapless::Vec<Blocker, MAX_BLOCKERS>) {
    if let Step::Failed(e) = t.load {
        let _ = out.push(load(e));
    }
    for c in CLASSES {
        if let Step::Failed(e) = t.attach[c as usize] {
            let _ = out.push(attach(c, e));
        }
    }
    if let Step::Failed(e) = t.canary {
        let _ = out.push(canary(e));
    }
}

/// The decision. Pure: same facts and wishes, same posture.
pub fn decide(f: &Facts, w: &Wanted) -> Posture {
    // At most 1 + 5 + 5 + 3 pushes: MAX_BLOCKERS covers them.
    let mut blockers = heapless::Vec::new();
    if !f.lsm_listed {
        let _ = blockers.push(Blocker::LsmNotListed);
    }
    tier_blockers(&f.lsm, Blocker::LsmLoadFailed, Blocker::LsmAttachFailed, Blocker::LsmCanaryFailed, &mut blockers);
    let lsm = lsm_complete(f, w);
    if !lsm && blockers.is_empty() {
        let _ = blockers.push(Blocker::LsmNotTried);
    }
    tier_blockers(&f.signal, Blocker::SignalLoadFailed, Blocker::SignalAttachFailed, Blocker::SignalCanaryFailed, &mut blockers);

    let signal = (w.mode == Mode::Audit || w.fallback != Fallback::Refuse)
        && f.signal.load == Step::Ok
        && f.signal.canary == Step::Ok;
    let mut tiers = [None; 3];
    for c in CLASSES {
        let i = c as usize;
        tiers[i] = if lsm {
            (f.lsm.attach[i] == Step::Ok).then_some(TierKind::Lsm)
        } else {
            (signal && f.signal.attach[i] == Step::Ok).then_some(TierKind::Signal)
        };
    }

    let counted = counted(w);
    for &c in &counted {
        if tiers[c as usize].is_none() {
            let _ = blockers.push(Blocker::ClassUnenforced(c));
        }
    }
    let any = counted.iter().any(|&c| tiers[c as usize].is_some());
    let all = counted.iter().all(|&c| tiers[c as usize].is_some());

    let state = match (w.mode, w.fallback) {
        (Mode::Audit, _) if any => State::AuditOnly,
        (Mode::Audit, _) => State::Refused,
        (Mode::Enforce, _) if lsm => State::Enforce,
        (Mode::Enforce, Fallback::Refuse) => State::Refused,
        (Mode::Enforce, Fallback::Signal) if all => State::EnforceSignal,
        (Mode::Enforce, _) if any => State::AuditOnly,
        (Mode::Enforce, _) => State::Refused,
    };
    Posture { state, tiers, blockers }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: [Step; 3] = [Step::NotTried, Step::Ok, Step::Failed(1)];

    fn tier_facts(load: Step, attach: Step, canary: Step) -> TierFacts {
        TierFacts { load, attach: [attach; 3], canary }
    }

    /// Every combination of facts (uniform attach results per tier) and wishes.
    fn truth_table() -> impl Iterator<Item = (Facts, Wanted)> {
        let mut out = Vec::new();
        for listed in [false, true] {
            for &ll in &STEPS {
                for &la in &STEPS {
                    for &lc in &STEPS {
                        for &sl in &STEPS {
                            for &sa in &STEPS {
                                for &sc in &STEPS {
                                    for mode in [Mode::Enforce, Mode::Audit] {
                                        for fallback in [Fallback::Signal, Fallback::Audit, Fallback::Refuse] {
                                            for in_use in [[false; 3], [true; 3], [true, false, false]] {
                                                let f = Facts {
                                                    lsm_listed: listed,
                                                    lsm: tier_facts(ll, la, lc),
                                                    signal: tier_facts(sl, sa, sc),
                                                };
                                                out.push((f, Wanted { mode, fallback, in_use }));
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        out.into_iter()
    }

    #[test]
    fn enforce_is_impossible_without_the_lsm_canary() {
        let mut enforce_seen = 0;
        for (f, w) in truth_table() {
            let p = decide(&f, &w);
            if p.state == State::Enforce {
                enforce_seen += 1;
                assert!(f.lsm_listed, "ENFORCE with bpf not listed: {f:?} {w:?}");
                assert_eq!(f.lsm.load, Step::Ok, "{f:?}");
                assert_eq!(f.lsm.canary, Step::Ok, "ENFORCE without the LSM canary: {f:?} {w:?}");
                assert_eq!(w.mode, Mode::Enforce);
                assert!(p.blockers.is_empty() || p.blockers.iter().all(|b| b.code().starts_with("signal")), "{p:?}");
            }
        }
        assert!(enforce_seen > 0, "the table must reach ENFORCE somewhere");
    }

    #[test]
    fn every_state_is_reachable_and_consistent() {
        let mut seen = [0usize; 4];
        for (f, w) in truth_table() {
            let p = decide(&f, &w);
            seen[p.state as usize] += 1;
            match p.state {
                State::Enforce => assert!(p.tiers.iter().all(|t| *t == Some(TierKind::Lsm)) || w.in_use != [true; 3]),
                State::EnforceSignal => {
                    assert_eq!(w.mode, Mode::Enforce);
                    assert_eq!(w.fallback, Fallback::Signal, "signal tier only with fallback=signal: {f:?}");
                    assert_eq!(f.signal.canary, Step::Ok, "signal enforcement needs its canary: {f:?}");
                    assert!(p.tiers.contains(&Some(TierKind::Signal)));
                }
                State::AuditOnly => assert!(w.mode == Mode::Audit || w.fallback != Fallback::Refuse),
                State::Refused => {}
            }
            // Anything short of ENFORCE in enforce mode says why.
            if w.mode == Mode::Enforce && p.state != State::Enforce {
                assert!(!p.blockers.is_empty(), "no blocker for {:?}: {f:?} {w:?}", p.state);
            }
        }
        assert!(seen.iter().all(|&n| n > 0), "states seen: {seen:?}");
    }

    #[test]
    fn this_dev_host_lsm_listed_but_load_refused() {
        let f = Facts {
            lsm_listed: true,
            lsm: TierFacts { load: Step::Failed(1), ..Default::default() },
            signal: tier_facts(Step::Ok, Step::Ok, Step::Ok),
        };
        let enforce = |fallback| Wanted { mode: Mode::Enforce, fallback, in_use: [true; 3] };
        let p = decide(&f, &enforce(Fallback::Signal));
        assert_eq!(p.state, State::EnforceSignal);
        assert_eq!(p.blockers.as_slice(), &[Blocker::LsmLoadFailed(1)]);
        assert_eq!(p.tiers, [Some(TierKind::Signal); 3]);
        assert_eq!(decide(&f, &enforce(Fallback::Refuse)).state, State::Refused);
        let p = decide(&f, &enforce(Fallback::Audit));
        assert_eq!(p.state, State::AuditOnly);
        assert_eq!(p.tiers, [Some(TierKind::Signal); 3]);
        assert!(!programs_enforce(&f, &enforce(Fallback::Audit)));
        assert!(programs_enforce(&f, &enforce(Fallback::Signal)));
    }

    #[test]
    fn loaded_and_attached_but_not_listed_is_not_enforce() {
        // The x86 6.1 kernel booted without bpf in lsm=: everything "succeeds".
        let f = Facts {
            lsm_listed: false,
            lsm: tier_facts(Step::Ok, Step::Ok, Step::Failed(0)),
            signal: TierFacts::default(),
        };
        let p = decide(&f, &Wanted { mode: Mode::Enforce, fallback: Fallback::Refuse, in_use: [true; 3] });
        assert_eq!(p.state, State::Refused);
        assert!(p.blockers.contains(&Blocker::LsmNotListed));
        assert!(p.blockers.contains(&Blocker::LsmCanaryFailed(0)));
    }

    #[test]
    fn weakest_class_decides_and_unused_classes_do_not_count() {
        let mut f = Facts {
            lsm_listed: true,
            lsm: tier_facts(Step::Ok, Step::Ok, Step::Ok),
            signal: tier_facts(Step::Ok, Step::Ok, Step::Ok),
        };
        f.lsm.attach[Class::Exec as usize] = Step::Failed(524);
        f.signal.attach[Class::Exec as usize] = Step::Failed(2);
        let w = Wanted { mode: Mode::Enforce, fallback: Fallback::Signal, in_use: [true, true, false] };
        let p = decide(&f, &w);
        // The LSM tier is incomplete, so the signal tier serves what it can.
        assert_eq!(p.state, State::AuditOnly);
        assert_eq!(p.tiers, [Some(TierKind::Signal), None, Some(TierKind::Signal)]);
        assert!(p.blockers.contains(&Blocker::ClassUnenforced(Class::Exec)));
        assert!(p.blockers.contains(&Blocker::LsmAttachFailed(Class::Exec, 524)));
        assert!(programs_enforce(&f, &w), "the covered classes are still enforced");
        let only_open = Wanted { in_use: [true, false, false], ..w };
        assert!(lsm_complete(&f, &only_open));
        assert_eq!(decide(&f, &only_open).state, State::Enforce);
    }

    #[test]
    fn blocker_text_is_stable() {
        let mut s = String::new();
        use core::fmt::Write;
        write!(s, "{} {} {}", Blocker::LsmNotListed, Blocker::LsmAttachFailed(Class::Exec, 524), Blocker::LsmLoadFailed(1)).unwrap();
        assert_eq!(s, "lsm-not-listed lsm-attach-failed:exec:524 lsm-load-failed:1");
    }
}
