//! The posture gate: facts about the kernel + the config → what is really enforced.
//!
//! Pure and total, so a test can walk its truth table. The invariant that matters
//! most: **nothing is claimed that a canary did not prove** — a loaded and attached
//! program proves nothing until the operation it guards has really been denied (or
//! its process killed) in front of the agent. ENFORCE additionally needs every hook
//! of every judged class served by a synchronous tier (lsm, fmodret).
//!
//! The gate walks the ladder per hook: a hook is served by the strongest tier whose
//! programs for it loaded, attached and passed the hook's canary. A class is served
//! when all its hooks are, by the weakest of their tiers. The classes judged are
//! those the config has rules for (all three when it has none). The overall posture
//! is that of the weakest judged class:
//! - ENFORCE: every judged class is served by synchronous tiers;
//! - ENFORCE_SIGNAL: `fallback = signal`, `signal = KILL`, and every judged class is
//!   served, some by a signal tier (kprobe, tracepoint, path; path adds the
//!   blocker path-matching, and serves a class without the hooks it cannot see);
//! - AUDIT_ONLY: `mode = audit`, `fallback = audit`, a catchable signal, or some judged
//!   class is not served (the served ones keep working; the blockers name the rest);
//! - REFUSED: `fallback = refuse` and some judged class is not synchronous, or
//!   nothing is served at all. The agent then keeps nothing attached.

use core::fmt;

use crate::config::{self, Fallback, Mode};
use crate::ladder::{Class, Hook, Tier, CLASSES, HOOKS, HOOK_COUNT, LADDER, TIER_COUNT};

/// One step of bringing something up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Step {
    /// Not attempted (an earlier step failed, or it was not needed).
    #[default]
    NotTried,
    Ok,
    /// Failed with this errno (0 when there is none, e.g. a canary that was not denied).
    Failed(i32),
}

/// What happened to one hook in one tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HookFacts {
    pub attach: Step,
    /// The hook's live test: its operation, done by a child process on a canary
    /// object, was denied with EPERM (synchronous tiers) or the child was killed by
    /// the configured signal (signal tiers), and the tier reported it.
    pub canary: Step,
}

/// What happened when one tier was brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TierFacts {
    pub load: Step,
    pub hooks: [HookFacts; HOOK_COUNT],
    /// Whether the kernel's JIT compiled its programs (None: not loaded or not known).
    /// Not a verdict: interpreted programs enforce the same, more slowly.
    pub jited: Option<bool>,
}

/// The BTF that describes the running kernel to libbpf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Btf {
    /// The kernel's own (/sys/kernel/btf/vmlinux): every tier can be tried.
    #[default]
    Kernel,
    /// The kernel has none; the config's `btf =` file serves CO-RE relocation. What
    /// attaches by the kernel's BTF (LSM, fmod_ret, fentry, tp_btf) or calls a helper
    /// typed by it still cannot load.
    File,
    /// Neither: programs with CO-RE relocations cannot load at all.
    None,
}

/// Everything the gate decides from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// The agent lacks CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN): nothing was tried.
    pub unprivileged: bool,
    /// `bpf` is in the active LSM list (without it LSM programs load, attach and never run).
    pub lsm_listed: bool,
    /// Creating and filling the shared maps; nothing else is tried when this fails.
    pub maps: Step,
    /// Which BTF there is; the gate does not try what it cannot serve.
    pub btf: Btf,
    /// The kernel has no `bpf_find_vma` (before 5.17): what calls it is not tried.
    pub no_find_vma: bool,
    pub tiers: [TierFacts; TIER_COUNT],
}

impl Facts {
    fn tier(&self, t: Tier) -> &TierFacts {
        &self.tiers[t as usize]
    }

    /// Whether `tier`'s programs for `hook` can load with the BTF there is.
    pub fn available(&self, tier: Tier, hook: Hook) -> bool {
        if self.no_find_vma && tier.needs_find_vma(hook) {
            return false;
        }
        match self.btf {
            Btf::Kernel => true,
            Btf::File => tier.works_without_kernel_btf(hook),
            Btf::None => !tier.needs_btf(),
        }
    }

    /// Whether `tier` serves `hook`: it has programs for it, they can load with the BTF
    /// there is, and they loaded, attached and passed the hook's canary.
    pub fn proven(&self, tier: Tier, hook: Hook) -> bool {
        let t = self.tier(tier);
        let h = t.hooks[hook as usize];
        !tier.spec().programs[hook as usize].is_empty()
            && self.available(tier, hook)
            && t.load == Step::Ok
            && h.attach == Step::Ok
            && h.canary == Step::Ok
            && (tier != Tier::Lsm || self.lsm_listed)
    }
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

/// What failed in a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierStep {
    Load,
    Attach(Hook),
    Canary(Hook),
}

/// Why something is weaker than ENFORCE. Codes are stable: scripts match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocker {
    /// `bpf` is not in the active LSM list: the LSM tier was not tried.
    LsmNotListed,
    /// The config's `tiers =` leaves this tier out.
    Excluded(Tier),
    /// A tier stronger than one in use was not tried, and nothing else says why.
    NotTried(Tier),
    /// A step of a tier failed: `TIER-load-failed:ERRNO`, `TIER-attach-failed:HOOK:ERRNO`,
    /// `TIER-canary-failed:HOOK:ERRNO`.
    Failed(Tier, TierStep, i32),
    /// The maps could not be created or filled (nothing was tried).
    MapsFailed(i32),
    /// Not root, or without CAP_BPF and CAP_PERFMON: nothing was tried.
    NotPrivileged,
    /// A class served by a signal tier whose signal can be caught or ignored.
    SignalCatchable(u8),
    /// This class has rules but no tier enforces it.
    ClassUnenforced(Class),
    /// The kernel has no BTF of its own (built without CONFIG_DEBUG_INFO_BTF).
    KernelBtfMissing,
    /// Without kernel BTF this tier (None) or this hook of it cannot load: it attaches
    /// by the kernel's BTF or calls a helper typed by it; a BTF file does not help.
    NeedsKernelBtf(Tier, Option<Hook>),
    /// No BTF at all (no kernel BTF, no `btf =` file): this tier's CO-RE relocations
    /// have nothing to relocate against.
    NeedsBtf(Tier),
    /// This hook of this tier calls `bpf_find_vma`, which the kernel lacks (before 5.17).
    NeedsFindVma(Tier, Hook),
    /// Some class is served by the path tier: it matches the names the rules give,
    /// not the files (another hardlink, a symlink, a bind mount, /proc/PID/fd/N, a
    /// directory descriptor reach them), and it cannot see executable mappings.
    PathMatching,
}

impl fmt::Display for Blocker {
    /// `code[:class|hook][:errno]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Blocker::LsmNotListed => f.write_str("lsm-not-listed"),
            Blocker::Excluded(t) => write!(f, "{}-excluded", t.name()),
            Blocker::NotTried(t) => write!(f, "{}-not-tried", t.name()),
            Blocker::Failed(t, TierStep::Load, e) => write!(f, "{}-load-failed:{e}", t.name()),
            Blocker::Failed(t, TierStep::Attach(h), e) => write!(f, "{}-attach-failed:{}:{e}", t.name(), h.name()),
            Blocker::Failed(t, TierStep::Canary(h), e) => write!(f, "{}-canary-failed:{}:{e}", t.name(), h.name()),
            Blocker::MapsFailed(e) => write!(f, "maps-failed:{e}"),
            Blocker::NotPrivileged => f.write_str("not-privileged"),
            Blocker::SignalCatchable(s) => match config::signal_name(s) {
                Some(name) => write!(f, "signal-catchable:{name}"),
                None => write!(f, "signal-catchable:{s}"),
            },
            Blocker::ClassUnenforced(c) => write!(f, "class-unenforced:{}", c.name()),
            Blocker::KernelBtfMissing => f.write_str("kernel-btf-missing"),
            Blocker::NeedsKernelBtf(t, None) => write!(f, "{}-needs-kernel-btf", t.name()),
            Blocker::NeedsKernelBtf(t, Some(h)) => write!(f, "{}-needs-kernel-btf:{}", t.name(), h.name()),
            Blocker::NeedsBtf(t) => write!(f, "{}-needs-btf", t.name()),
            Blocker::NeedsFindVma(t, h) => write!(f, "{}-needs-find-vma:{}", t.name(), h.name()),
            Blocker::PathMatching => f.write_str("path-matching"),
        }
    }
}

/// Room for every blocker one decision can produce.
pub const MAX_BLOCKERS: usize = 3 + TIER_COUNT * (2 + 2 * HOOK_COUNT) + 1 + 3 + 1 + TIER_COUNT * HOOK_COUNT + 1;

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posture {
    pub state: State,
    /// Per class: the (weakest) tier that serves it, None when nothing does.
    pub tiers: [Option<Tier>; 3],
    /// Per hook: the tier that serves it.
    pub hooks: [Option<Tier>; HOOK_COUNT],
    pub blockers: heapless::Vec<Blocker, MAX_BLOCKERS>,
}

/// What the config asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub mode: Mode,
    pub fallback: Fallback,
    /// The signal the signal tiers send.
    pub signal: u8,
    /// The tiers the config allows (`tiers =`), indexed by `Tier as usize`.
    pub allowed: [bool; TIER_COUNT],
    /// Per class: the config has rules for it.
    pub in_use: [bool; 3],
}

const SIGKILL: u8 = 9;

impl Wanted {
    /// The classes the posture is judged on: those the config has rules for, or all
    /// three when it has none (then `--check` still tells what the kernel can do).
    pub fn judged(&self) -> heapless::Vec<Class, 3> {
        let any = self.in_use.iter().any(|&u| u);
        CLASSES.iter().copied().filter(|&c| !any || self.in_use[c as usize]).collect()
    }

    /// The hooks the judged classes need, Follow included for the file classes.
    pub fn hooks(&self) -> heapless::Vec<Hook, HOOK_COUNT> {
        let judged = self.judged();
        HOOKS.iter().copied().filter(|h| judged.iter().any(|&c| h.serves(c))).collect()
    }

    /// Whether the gate may try `tier` at all. The signal tiers are not tried when
    /// only synchronous enforcement is acceptable.
    pub fn may_try(&self, tier: Tier) -> bool {
        self.allowed[tier as usize]
            && (tier.synchronous() || self.mode == Mode::Audit || self.fallback != Fallback::Refuse)
    }

    /// What a tier's programs do once the gate has decided: deny (or signal), or only
    /// report. Synchronous tiers enforce in enforce mode; signal tiers only with
    /// `fallback = signal`.
    pub fn enforces(&self, tier: Tier) -> bool {
        self.mode == Mode::Enforce && (tier.synchronous() || self.fallback == Fallback::Signal)
    }
}

/// The decision. Pure: same facts and wishes, same posture.
pub fn decide(f: &Facts, w: &Wanted) -> Posture {
    let mut blockers = heapless::Vec::new();
    let mut block = |b| {
        let _ = blockers.push(b); // MAX_BLOCKERS covers every push below
    };
    if f.unprivileged {
        block(Blocker::NotPrivileged);
    }
    if let Step::Failed(e) = f.maps {
        block(Blocker::MapsFailed(e));
    }
    if !f.lsm_listed && w.allowed[Tier::Lsm as usize] {
        block(Blocker::LsmNotListed);
    }
    if f.btf != Btf::Kernel {
        block(Blocker::KernelBtfMissing);
    }
    let wanted_hooks = w.hooks();
    for t in LADDER {
        let tf = f.tier(t);
        if !w.allowed[t as usize] {
            block(Blocker::Excluded(t));
            continue;
        }
        if f.btf != Btf::Kernel {
            // The hooks this tier has programs for that the BTF there is cannot serve.
            let has = |h: &&Hook| !t.spec().programs[**h as usize].is_empty();
            let kernel_only = |h: &&Hook| !t.works_without_kernel_btf(**h);
            let mut with_programs = wanted_hooks.iter().filter(has).peekable();
            if with_programs.peek().is_some() && with_programs.all(|h| kernel_only(&h)) {
                block(Blocker::NeedsKernelBtf(t, None));
            } else if f.btf == Btf::None && t.needs_btf() {
                block(Blocker::NeedsBtf(t));
            } else {
                for &h in wanted_hooks.iter().filter(has).filter(kernel_only) {
                    block(Blocker::NeedsKernelBtf(t, Some(h)));
                }
            }
        } else if f.no_find_vma {
            for &h in wanted_hooks.iter().filter(|&&h| t.needs_find_vma(h)) {
                block(Blocker::NeedsFindVma(t, h));
            }
        }
        if let Step::Failed(e) = tf.load {
            block(Blocker::Failed(t, TierStep::Load, e));
        }
        for h in HOOKS {
            if let Step::Failed(e) = tf.hooks[h as usize].attach {
                block(Blocker::Failed(t, TierStep::Attach(h), e));
            }
        }
        for h in HOOKS {
            if let Step::Failed(e) = tf.hooks[h as usize].canary {
                block(Blocker::Failed(t, TierStep::Canary(h), e));
            }
        }
    }

    let mut hooks = [None; HOOK_COUNT];
    for h in HOOKS {
        hooks[h as usize] = LADDER.into_iter().find(|&t| w.may_try(t) && f.proven(t, h));
    }
    let mut tiers = [None; 3];
    for c in CLASSES {
        // The weakest tier among the class's hooks; None if one is not served. Hooks a
        // tier cannot see at all (the path tier: executable mappings) are its limits,
        // named by its blocker: the class is served at that tier without them.
        tiers[c as usize] = LADDER.into_iter().find(|&t| {
            (w.may_try(t) || c.hooks().iter().all(|&h| t.sees(h)))
                && c.hooks().iter().all(|&h| !t.sees(h) || hooks[h as usize].is_some_and(|by| by <= t))
        });
    }

    let judged = w.judged();
    // Every tier stronger than one in use that was allowed and not tried.
    let weakest = judged.iter().filter_map(|&c| tiers[c as usize]).max();
    for t in LADDER.into_iter().filter(|&t| weakest.is_some_and(|weakest| t < weakest)) {
        let explained = !w.allowed[t as usize]
            || (t == Tier::Lsm && !f.lsm_listed)
            || f.tier(t).load != Step::NotTried
            || wanted_hooks.iter().any(|&h| !f.available(t, h));
        if !explained {
            block(Blocker::NotTried(t));
        }
    }
    for &c in &judged {
        if tiers[c as usize].is_none() {
            block(Blocker::ClassUnenforced(c));
        }
    }
    if judged.iter().any(|&c| tiers[c as usize] == Some(Tier::Path)) {
        block(Blocker::PathMatching);
    }
    let served = |c: Class| tiers[c as usize];
    let any = judged.iter().any(|&c| served(c).is_some());
    let all_sync = judged.iter().all(|&c| served(c).is_some_and(Tier::synchronous));
    let all = judged.iter().all(|&c| served(c).is_some());
    let signalled = judged.iter().any(|&c| served(c).is_some_and(|t| !t.synchronous()));
    if signalled && w.signal != SIGKILL && w.mode == Mode::Enforce && w.fallback == Fallback::Signal {
        block(Blocker::SignalCatchable(w.signal));
    }

    let state = match (w.mode, w.fallback) {
        (Mode::Audit, _) if any => State::AuditOnly,
        (Mode::Audit, _) => State::Refused,
        (Mode::Enforce, _) if all_sync => State::Enforce,
        (Mode::Enforce, Fallback::Refuse) => State::Refused,
        (Mode::Enforce, Fallback::Signal) if all && w.signal == SIGKILL => State::EnforceSignal,
        (Mode::Enforce, _) if any => State::AuditOnly,
        (Mode::Enforce, _) => State::Refused,
    };
    Posture { state, tiers, hooks, blockers }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [bool; TIER_COUNT] = [true; TIER_COUNT];

    /// A tier's facts, the same for every hook.
    #[derive(Clone, Copy, Debug)]
    enum Outcome {
        NotTried,
        Proven,
        LoadFailed,
        AttachFailed,
        CanaryFailed,
    }

    const OUTCOMES: [Outcome; 5] =
        [Outcome::NotTried, Outcome::Proven, Outcome::LoadFailed, Outcome::AttachFailed, Outcome::CanaryFailed];

    fn tier_facts(o: Outcome) -> TierFacts {
        let hook = |attach, canary| [HookFacts { attach, canary }; HOOK_COUNT];
        let (load, hooks) = match o {
            Outcome::NotTried => (Step::NotTried, hook(Step::NotTried, Step::NotTried)),
            Outcome::Proven => (Step::Ok, hook(Step::Ok, Step::Ok)),
            Outcome::LoadFailed => (Step::Failed(1), hook(Step::NotTried, Step::NotTried)),
            Outcome::AttachFailed => (Step::Ok, hook(Step::Failed(524), Step::NotTried)),
            Outcome::CanaryFailed => (Step::Ok, hook(Step::Ok, Step::Failed(0))),
        };
        TierFacts { load, hooks, jited: None }
    }

    fn wanted(mode: Mode, fallback: Fallback, signal: u8, in_use: [bool; 3]) -> Wanted {
        Wanted { mode, fallback, signal, allowed: ALL, in_use }
    }

    /// Every combination of uniform tier outcomes and wishes.
    fn truth_table() -> Vec<(Facts, Wanted)> {
        let mut out = Vec::new();
        for (btf, no_find_vma) in [(Btf::Kernel, false), (Btf::Kernel, true), (Btf::File, false), (Btf::None, false)] {
        for listed in [false, true] {
            for a in OUTCOMES {
                for b in OUTCOMES {
                    for c in OUTCOMES {
                        for d in OUTCOMES {
                          for e in OUTCOMES {
                            let f = Facts {
                                unprivileged: false,
                                lsm_listed: listed,
                                maps: Step::Ok,
                                btf,
                                no_find_vma,
                                tiers: [tier_facts(a), tier_facts(b), tier_facts(c), tier_facts(d), tier_facts(e)],
                            };
                            for mode in [Mode::Enforce, Mode::Audit] {
                                for fallback in [Fallback::Signal, Fallback::Audit, Fallback::Refuse] {
                                    for signal in [9, 15] {
                                        for in_use in [[false; 3], [true; 3], [false, true, false]] {
                                            out.push((f, wanted(mode, fallback, signal, in_use)));
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
        }
        out
    }

    /// Random per-hook facts, to reach mixes the uniform table cannot.
    fn random_facts(seed: u64, n: usize) -> Vec<(Facts, Wanted)> {
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let steps = [Step::NotTried, Step::Ok, Step::Ok, Step::Failed(1)];
        (0..n)
            .map(|_| {
                let btf = [Btf::Kernel, Btf::File, Btf::None][(next() % 3) as usize];
                let no_find_vma = btf == Btf::Kernel && next() % 4 == 0;
                let mut f = Facts { lsm_listed: next() % 2 == 0, maps: Step::Ok, btf, no_find_vma, ..Facts::default() };
                let mut allowed = ALL;
                for (i, t) in f.tiers.iter_mut().enumerate() {
                    t.load = steps[(next() % 4) as usize];
                    allowed[i] = next() % 8 != 0;
                    for h in &mut t.hooks {
                        *h = HookFacts { attach: steps[(next() % 4) as usize], canary: steps[(next() % 4) as usize] };
                    }
                }
                let mode = if next() % 4 == 0 { Mode::Audit } else { Mode::Enforce };
                let fallback = [Fallback::Signal, Fallback::Audit, Fallback::Refuse][(next() % 3) as usize];
                let in_use = [next() % 2 == 0, next() % 2 == 0, next() % 2 == 0];
                let signal = if next() % 3 == 0 { 15 } else { 9 };
                (f, Wanted { mode, fallback, signal, allowed, in_use })
            })
            .collect()
    }

    /// The claims a posture makes, checked against the facts.
    fn assert_truthful(f: &Facts, w: &Wanted, p: &Posture) {
        for h in HOOKS {
            if let Some(t) = p.hooks[h as usize] {
                assert!(f.proven(t, h), "{} claimed for {} without its canary: {f:?}", t.name(), h.name());
                assert!(w.allowed[t as usize], "{} is excluded: {f:?}", t.name());
                assert!(t != Tier::Lsm || f.lsm_listed, "LSM without bpf listed: {f:?}");
                // No claim from what cannot load with the BTF there is.
                match f.btf {
                    Btf::Kernel => {}
                    Btf::File => assert!(!t.synchronous() && t.works_without_kernel_btf(h), "{f:?}"),
                    Btf::None => assert!(!t.needs_btf(), "{f:?}"),
                }
                // Nor from a program that calls a helper the kernel lacks.
                assert!(!(f.no_find_vma && t.needs_find_vma(h)), "{f:?}");
            }
        }
        if f.btf != Btf::Kernel {
            assert!(p.blockers.contains(&Blocker::KernelBtfMissing), "{p:?}");
            assert_ne!(p.state, State::Enforce, "ENFORCE without kernel BTF: {f:?}");
        }
        for c in CLASSES {
            if let Some(t) = p.tiers[c as usize] {
                for &h in c.hooks().iter().filter(|&&h| t.sees(h)) {
                    let by = p.hooks[h as usize].expect("a served class has every hook its tier sees served");
                    assert!(by <= t, "class {} claims {} but {} is served by {}", c.name(), t.name(), h.name(), by.name());
                }
                if c.hooks().iter().any(|&h| !t.sees(h)) {
                    assert!(w.may_try(t), "{} claimed with hooks it cannot see, but it is not allowed", t.name());
                    assert!(p.blockers.contains(&Blocker::PathMatching) || !w.judged().contains(&c), "{p:?}");
                }
            }
        }
        match p.state {
            State::Enforce => {
                assert_eq!(w.mode, Mode::Enforce);
                for c in w.judged() {
                    let t = p.tiers[c as usize].expect("ENFORCE serves every judged class");
                    assert!(t.synchronous(), "ENFORCE with {} served by {}: {f:?}", c.name(), t.name());
                }
            }
            State::EnforceSignal => {
                assert_eq!((w.mode, w.fallback, w.signal), (Mode::Enforce, Fallback::Signal, 9));
                assert!(w.judged().iter().all(|&c| p.tiers[c as usize].is_some()));
                assert!(w.judged().iter().any(|&c| !p.tiers[c as usize].unwrap().synchronous()));
            }
            State::AuditOnly => assert!(w.mode == Mode::Audit || w.fallback != Fallback::Refuse),
            State::Refused => {}
        }
        if w.mode == Mode::Enforce && p.state != State::Enforce {
            assert!(!p.blockers.is_empty(), "no blocker for {:?}: {f:?} {w:?}", p.state);
        }
    }

    #[test]
    fn nothing_is_claimed_without_a_canary() {
        let mut seen = [0usize; 4];
        for (f, w) in truth_table().into_iter().chain(random_facts(0x9e37_79b9_7f4a_7c15, 200_000)) {
            let p = decide(&f, &w);
            seen[p.state as usize] += 1;
            assert_truthful(&f, &w, &p);
        }
        assert!(seen.iter().all(|&n| n > 0), "every state is reachable: {seen:?}");
    }

    #[test]
    fn catchable_signal_is_never_enforcement() {
        for (f, w) in truth_table() {
            if w.signal != 9 {
                let p = decide(&f, &w);
                assert_ne!(p.state, State::EnforceSignal);
                let signalled = w.judged().iter().any(|&c| p.tiers[c as usize].is_some_and(|t| !t.synchronous()));
                if w.mode == Mode::Enforce && w.fallback == Fallback::Signal && signalled {
                    assert!(p.blockers.contains(&Blocker::SignalCatchable(15)), "{p:?}");
                }
            }
        }
    }

    fn facts(tiers: [Outcome; 5], listed: bool) -> Facts {
        Facts {
            unprivileged: false,
            lsm_listed: listed,
            maps: Step::Ok,
            btf: Btf::Kernel,
            no_find_vma: false,
            tiers: tiers.map(tier_facts),
        }
    }

    fn blocker_text(p: &Posture) -> Vec<String> {
        p.blockers.iter().map(|b| b.to_string()).collect()
    }

    #[test]
    fn no_btf_at_all_names_it_and_never_enforces() {
        use Outcome::*;
        // Debian's armmp 6.1 without a btf file: the gate tries nothing.
        let f = Facts { btf: Btf::None, ..facts([NotTried; 5], true) };
        let p = decide(&f, &wanted(Mode::Enforce, Fallback::Signal, 9, [true; 3]));
        assert_eq!(p.state, State::Refused);
        assert_eq!(
            blocker_text(&p),
            [
                "kernel-btf-missing",
                "lsm-needs-kernel-btf",
                "fmodret-needs-kernel-btf",
                "kprobe-needs-btf",
                "tracepoint-needs-btf",
                "class-unenforced:open",
                "class-unenforced:exec",
                "class-unenforced:connect",
            ]
        );
        // Facts that say "proven" are not believed either (but the path tier's, which
        // needs no BTF: a_kernel_without_btf_is_served_by_path_matching).
        let f = Facts { btf: Btf::None, ..facts([Proven, Proven, Proven, Proven, NotTried], true) };
        assert_eq!(decide(&f, &wanted(Mode::Enforce, Fallback::Signal, 9, [true; 3])).state, State::Refused);
    }

    #[test]
    fn a_btf_file_serves_the_signal_tiers_only() {
        use Outcome::*;
        // armmp 6.1 with `btf = FILE`: LSM and fmod_ret are not tried; kprobe serves.
        let f = Facts { btf: Btf::File, ..facts([NotTried, NotTried, Proven, NotTried, NotTried], true) };
        let p = decide(&f, &wanted(Mode::Enforce, Fallback::Signal, 9, [true; 3]));
        assert_eq!(p.state, State::EnforceSignal);
        assert_eq!(p.tiers, [Some(Tier::Kprobe); 3]);
        // What the tracepoint tier could not do there is named too, though it is not needed.
        assert_eq!(
            blocker_text(&p),
            ["kernel-btf-missing", "lsm-needs-kernel-btf", "fmodret-needs-kernel-btf", "tracepoint-needs-kernel-btf:mprotect"]
        );
        // Even LSM facts that look proven are not believed without kernel BTF.
        let f = Facts { btf: Btf::File, ..facts([Proven, Proven, Proven, NotTried, NotTried], true) };
        assert_eq!(decide(&f, &wanted(Mode::Enforce, Fallback::Signal, 9, [true; 3])).tiers, [Some(Tier::Kprobe); 3]);
    }

    #[test]
    fn without_find_vma_the_tracepoint_tier_has_no_mprotect() {
        use Outcome::*;
        // Debian's 5.10: kernel BTF, no bpf_find_vma (5.17).
        let f = Facts { no_find_vma: true, ..facts([NotTried, NotTried, NotTried, Proven, NotTried], true) };
        let w = Wanted { allowed: [false, false, false, true, false], ..wanted(Mode::Enforce, Fallback::Signal, 9, [true; 3]) };
        let p = decide(&f, &w);
        assert_eq!(p.tiers, [Some(Tier::Tracepoint), None, Some(Tier::Tracepoint)]);
        assert_eq!(p.hooks[Hook::Mprotect as usize], None);
        assert_eq!(p.state, State::AuditOnly);
        assert!(blocker_text(&p).contains(&"tracepoint-needs-find-vma:mprotect".into()), "{p:?}");
        // The stronger tiers have no such need: the whole ladder enforces.
        let f = Facts { no_find_vma: true, ..facts([Proven, Proven, Proven, Proven, NotTried], true) };
        let p = decide(&f, &wanted(Mode::Enforce, Fallback::Signal, 9, [true; 3]));
        assert_eq!((p.state, p.tiers), (State::Enforce, [Some(Tier::Lsm); 3]));
        assert!(!Tier::Kprobe.needs_find_vma(Hook::Mprotect) && Tier::Tracepoint.needs_find_vma(Hook::Mprotect));
    }

    #[test]
    fn the_tracepoint_tier_without_kernel_btf_has_no_mprotect() {
        use Outcome::*;
        let f = Facts { btf: Btf::File, ..facts([NotTried, NotTried, NotTried, Proven, NotTried], true) };
        let w = Wanted { allowed: [false, false, false, true, false], ..wanted(Mode::Enforce, Fallback::Signal, 9, [true; 3]) };
        let p = decide(&f, &w);
        assert_eq!(p.tiers, [Some(Tier::Tracepoint), None, Some(Tier::Tracepoint)]);
        assert_eq!(p.hooks[Hook::Exec as usize], Some(Tier::Tracepoint));
        assert_eq!(p.hooks[Hook::Mprotect as usize], None);
        assert_eq!(p.state, State::AuditOnly);
        assert_eq!(
            blocker_text(&p),
            [
                "kernel-btf-missing",
                "lsm-excluded",
                "fmodret-excluded",
                "kprobe-excluded",
                "tracepoint-needs-kernel-btf:mprotect",
                "path-excluded",
                "class-unenforced:exec",
            ]
        );
        // Open and connect rules alone are fully served there.
        let w = Wanted { in_use: [true, false, true], ..w };
        assert_eq!(decide(&f, &w).state, State::EnforceSignal);
    }

    #[test]
    fn this_dev_host_tracepoint_with_three_blockers_above() {
        use Outcome::*;
        let f = facts([LoadFailed, LoadFailed, AttachFailed, Proven, NotTried], true);
        let w = wanted(Mode::Enforce, Fallback::Signal, 9, [true; 3]);
        let p = decide(&f, &w);
        assert_eq!(p.state, State::EnforceSignal);
        assert_eq!(p.tiers, [Some(Tier::Tracepoint); 3]);
        assert_eq!(p.hooks[Hook::Follow as usize], None, "the tracepoint tier has no follow program");
        let text: Vec<String> = p.blockers.iter().map(|b| b.to_string()).collect();
        assert!(text.starts_with(&["lsm-load-failed:1".into(), "fmodret-load-failed:1".into()]), "{text:?}");
        assert!(text.contains(&"kprobe-attach-failed:open:524".into()), "{text:?}");
        assert_eq!(decide(&f, &wanted(Mode::Enforce, Fallback::Refuse, 9, [true; 3])).state, State::Refused);
        let p = decide(&f, &wanted(Mode::Enforce, Fallback::Audit, 9, [true; 3]));
        assert_eq!(p.state, State::AuditOnly);
        assert!(!w.enforces(Tier::Tracepoint) || w.fallback == Fallback::Signal);
    }

    #[test]
    fn fmodret_enforces_without_bpf_listed() {
        use Outcome::*;
        // Debian's x86_64 6.1 booted without bpf in lsm=: the LSM tier is not tried.
        let f = facts([NotTried, Proven, NotTried, NotTried, NotTried], false);
        let p = decide(&f, &wanted(Mode::Enforce, Fallback::Refuse, 9, [true; 3]));
        assert_eq!(p.state, State::Enforce);
        assert_eq!(p.tiers, [Some(Tier::Fmodret); 3]);
        assert_eq!(p.blockers.as_slice(), &[Blocker::LsmNotListed]);
        // LSM programs that "work" without bpf listed are never believed.
        let f = facts([Proven, NotTried, NotTried, NotTried, NotTried], false);
        assert_eq!(decide(&f, &wanted(Mode::Enforce, Fallback::Signal, 9, [true; 3])).state, State::Refused);
    }

    #[test]
    fn a_class_takes_its_weakest_hook() {
        use Outcome::*;
        let mut f = facts([Proven, NotTried, Proven, NotTried, NotTried], true);
        // mmap's LSM program did not attach (e.g. an old kernel): kprobe serves it.
        f.tiers[0].hooks[Hook::Mmap as usize] = HookFacts { attach: Step::Failed(22), canary: Step::NotTried };
        let w = wanted(Mode::Enforce, Fallback::Signal, 9, [true; 3]);
        let p = decide(&f, &w);
        assert_eq!(p.tiers, [Some(Tier::Lsm), Some(Tier::Kprobe), Some(Tier::Lsm)]);
        assert_eq!(p.state, State::EnforceSignal);
        assert!(p.blockers.contains(&Blocker::Failed(Tier::Lsm, TierStep::Attach(Hook::Mmap), 22)));
        let only_open = Wanted { in_use: [true, false, false], ..w };
        assert_eq!(decide(&f, &only_open).state, State::Enforce);
        assert_eq!(only_open.hooks().as_slice(), &[Hook::Open, Hook::Follow]);
    }

    #[test]
    fn excluded_tiers_are_named_and_never_serve() {
        use Outcome::*;
        let f = facts([Proven, Proven, Proven, Proven, Proven], true);
        let w = Wanted { allowed: [false, false, false, true, true], ..wanted(Mode::Enforce, Fallback::Signal, 9, [true; 3]) };
        let p = decide(&f, &w);
        assert_eq!(p.tiers, [Some(Tier::Tracepoint); 3]);
        assert_eq!(p.state, State::EnforceSignal);
        let text: Vec<String> = p.blockers.iter().map(|b| b.to_string()).collect();
        assert_eq!(text, ["lsm-excluded", "fmodret-excluded", "kprobe-excluded"]);
    }

    /// Path facts: the tier proves the main hook of every class and has no programs
    /// for executable mappings.
    fn path_proven() -> TierFacts {
        let mut t = tier_facts(Outcome::Proven);
        for h in [Hook::Mmap, Hook::Mprotect, Hook::Follow] {
            t.hooks[h as usize] = HookFacts::default();
        }
        t
    }

    #[test]
    fn a_kernel_without_btf_is_served_by_path_matching() {
        use Outcome::*;
        // No BTF (Debian's armmp 6.1): no other tier is tried; each is named.
        let mut f = Facts { btf: Btf::None, ..facts([NotTried; 5], true) };
        f.tiers[Tier::Path as usize] = path_proven();
        let w = wanted(Mode::Enforce, Fallback::Signal, 9, [true; 3]);
        let p = decide(&f, &w);
        assert_eq!(p.state, State::EnforceSignal);
        assert_eq!(
            blocker_text(&p),
            ["kernel-btf-missing", "lsm-needs-kernel-btf", "fmodret-needs-kernel-btf", "kprobe-needs-btf", "tracepoint-needs-btf", "path-matching"]
        );
        assert_eq!(p.tiers, [Some(Tier::Path); 3]);
        assert_eq!(p.hooks[Hook::Mmap as usize], None, "mmap is not claimed");
        assert_eq!(p.hooks[Hook::Follow as usize], None);
        assert!(p.blockers.contains(&Blocker::PathMatching), "{:?}", p.blockers);
        assert_eq!(decide(&f, &wanted(Mode::Enforce, Fallback::Refuse, 9, [true; 3])).state, State::Refused);
        assert_eq!(decide(&f, &wanted(Mode::Enforce, Fallback::Audit, 9, [true; 3])).state, State::AuditOnly);
        // The path tier excluded: the same facts serve nothing.
        let mut excluded = w;
        excluded.allowed[Tier::Path as usize] = false;
        let p = decide(&f, &excluded);
        assert_eq!(p.tiers, [None; 3]);
        assert!(!p.blockers.contains(&Blocker::PathMatching));
        // An exec hook the path tier failed: the class is not served.
        f.tiers[Tier::Path as usize].hooks[Hook::Exec as usize].canary = Step::Failed(0);
        let p = decide(&f, &w);
        assert_eq!(p.tiers, [Some(Tier::Path), None, Some(Tier::Path)]);
        assert_eq!(p.state, State::AuditOnly);
        assert!(p.blockers.contains(&Blocker::ClassUnenforced(Class::Exec)));
    }

    #[test]
    fn path_matching_is_named_only_when_it_serves() {
        use Outcome::*;
        let mut f = facts([LoadFailed, LoadFailed, AttachFailed, Proven, NotTried], true);
        f.tiers[Tier::Path as usize] = path_proven();
        let p = decide(&f, &wanted(Mode::Enforce, Fallback::Signal, 9, [true; 3]));
        assert_eq!(p.tiers, [Some(Tier::Tracepoint); 3]);
        assert!(!p.blockers.contains(&Blocker::PathMatching));
        // Forced (tiers = path): the mmap and mprotect hooks are the tier's limits.
        let forced = Wanted { allowed: [false, false, false, false, true], ..wanted(Mode::Enforce, Fallback::Signal, 9, [false, true, false]) };
        let p = decide(&f, &forced);
        assert_eq!(p.state, State::EnforceSignal);
        assert_eq!(p.tiers[Class::Exec as usize], Some(Tier::Path));
        let text: Vec<String> = p.blockers.iter().map(|b| b.to_string()).collect();
        assert_eq!(text, ["lsm-excluded", "fmodret-excluded", "kprobe-excluded", "tracepoint-excluded", "path-matching"]);
    }

    #[test]
    fn blocker_text_is_stable() {
        let b = [
            Blocker::LsmNotListed,
            Blocker::Failed(Tier::Fmodret, TierStep::Attach(Hook::Exec), 524),
            Blocker::Failed(Tier::Lsm, TierStep::Load, 1),
            Blocker::Failed(Tier::Kprobe, TierStep::Canary(Hook::Send), 0),
            Blocker::SignalCatchable(15),
            Blocker::ClassUnenforced(Class::Connect),
            Blocker::MapsFailed(1),
            Blocker::Excluded(Tier::Kprobe),
            Blocker::NotTried(Tier::Lsm),
            Blocker::NotPrivileged,
            Blocker::KernelBtfMissing,
            Blocker::NeedsKernelBtf(Tier::Lsm, None),
            Blocker::NeedsKernelBtf(Tier::Tracepoint, Some(Hook::Mprotect)),
            Blocker::NeedsBtf(Tier::Kprobe),
            Blocker::PathMatching,
        ];
        let text: Vec<String> = b.iter().map(|b| b.to_string()).collect();
        assert_eq!(
            text,
            [
                "lsm-not-listed",
                "fmodret-attach-failed:exec:524",
                "lsm-load-failed:1",
                "kprobe-canary-failed:send:0",
                "signal-catchable:TERM",
                "class-unenforced:connect",
                "maps-failed:1",
                "kprobe-excluded",
                "lsm-not-tried",
                "not-privileged",
                "kernel-btf-missing",
                "lsm-needs-kernel-btf",
                "tracepoint-needs-kernel-btf:mprotect",
                "kprobe-needs-btf",
                "path-matching",
            ]
        );
    }
}
