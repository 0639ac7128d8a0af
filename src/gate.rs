//! The whole posture gate, as `enforce` and `enforce --check` both run it: read the LSM
//! list, create the shared maps, walk the ladder — for each tier the config allows,
//! strongest first, bring it up for the hooks no stronger tier serves yet and prove
//! each with its canary — decide, and keep only what the decision uses. The kept
//! tiers are switched on but do not act until the caller hands over to them
//! ([`Enforcement::take_over`]): the hand-over is the caller's, because it first pins
//! them (when pinning) and then retires the generation they replace.

use crate::canary;
use crate::bpf::{self, BtfChoice};
use crate::config::Policy;
use crate::handover::Handover;
use crate::ladder::{Hook, Tier, HOOK_COUNT, LADDER, TIER_COUNT};
use crate::maps::{self, Maps, Mode};
use crate::posture::{self, Btf, Facts, Posture, State, Step, Wanted};
use crate::probe::{self, LsmList};
use crate::rules;
use crate::tiers::{self, Active};

/// What stays attached: the tiers in use and the maps they share. Field order
/// matters: the tiers detach before the maps close.
pub struct Enforcement {
    pub tiers: heapless::Vec<Active, TIER_COUNT>,
    pub maps: Maps,
    /// A kernel program moves rules at renames and forgets deleted inodes.
    pub follow_in_kernel: bool,
    /// This generation's number (the `generation` map).
    pub generation: u32,
    /// Every act of it denies and ends the operation (synchronous tiers in enforce
    /// mode, signal tiers sending SIGKILL): it may act beside another such generation.
    pub exact: bool,
}

impl Enforcement {
    /// This generation acts from now on; the one it replaces stops at the same instant.
    pub fn take_over(&self, handover: &Handover) -> Result<(), bpf::Error> {
        handover.take_over(self.generation, self.exact)
    }
}

/// What the gate found and what it kept attached.
pub struct Outcome {
    pub lsm_list: LsmList,
    pub kernel: heapless::String<64>,
    pub wanted: Wanted,
    pub facts: Facts,
    pub posture: Posture,
    /// None when the posture is REFUSED: nothing stays attached.
    pub enforcement: Option<Enforcement>,
}

/// What the config asks of the gate.
pub fn wanted(policy: &Policy) -> Wanted {
    Wanted {
        mode: policy.mode,
        fallback: policy.fallback,
        signal: policy.signal,
        allowed: policy.tiers,
        in_use: [
            !policy.open.is_empty(),
            // The exec policy is about exec too: allow_exec_from, allow_anon_exec = no.
            !policy.exec.is_empty() || !policy.allow_exec_from.is_empty() || policy.allow_anon_exec.is_some(),
            !policy.connect.is_empty(),
        ],
    }
}

/// Runs the gate for generation `generation`, sharing the agent's `handover` map (None:
/// the maps start a new one). On return the kept tiers have their programs attached in
/// the mode the posture allows, waiting for the hand-over.
pub fn run(policy: &Policy, rules: &maps::Rules<'_>, handover: Option<&Handover>, generation: u32) -> Outcome {
    let lsm_list = probe::lsm_list();
    let wanted = wanted(policy);
    // What the posture decides from, and what the objects relocate against.
    let (btf, choice) = if probe::kernel_btf() {
        if let Some(file) = &policy.btf {
            log::info!("the kernel has its own BTF: the btf file {} is not used", file.path);
        }
        (Btf::Kernel, BtfChoice::Kernel)
    } else if let Some(file) = &policy.btf {
        (Btf::File, BtfChoice::file(&file.path))
    } else {
        (Btf::None, BtfChoice::Kernel)
    };
    let mut facts = Facts { lsm_listed: lsm_list.has_bpf(), btf, ..Facts::default() };
    let outcome = |facts: Facts, enforcement| Outcome {
        lsm_list: lsm_list.clone(),
        kernel: probe::kernel_release(),
        wanted,
        posture: posture::decide(&facts, &wanted),
        facts,
        enforcement,
    };

    if !probe::privileged() {
        facts.unprivileged = true;
        return outcome(facts, None);
    }
    // Asked only with the privilege a probe needs, and only where it decides something
    // (without kernel BTF nothing that calls it is tried).
    facts.no_find_vma = btf == Btf::Kernel && !crate::bpf::kernel_has_find_vma();
    let needed = wanted.hooks();
    if !LADDER.iter().any(|&t| wanted.may_try(t) && needed.iter().any(|&h| facts.available(t, h))) {
        // Nothing could load with the BTF there is: the blockers say why, and nothing
        // is created or tried.
        return outcome(facts, None);
    }
    let mut maps = match Maps::create(rules, &choice, handover.map(Handover::map), generation) {
        Ok(maps) => maps,
        Err(e) => {
            log::error!("creating the maps: {e}");
            facts.maps = Step::Failed(e.errno.raw_os_error());
            return outcome(facts, None);
        }
    };
    facts.maps = Step::Ok;

    let mut served = [false; HOOK_COUNT];
    let mut kept = heapless::Vec::<Active, TIER_COUNT>::new();
    for tier in LADDER {
        let todo: heapless::Vec<Hook, HOOK_COUNT> = needed.iter().copied().filter(|&h| !served[h as usize]).collect();
        if todo.is_empty() {
            break;
        }
        // What cannot load with the BTF there is is not tried; the posture names it.
        let todo: heapless::Vec<Hook, HOOK_COUNT> = todo.into_iter().filter(|&h| facts.available(tier, h)).collect();
        if todo.is_empty() {
            continue;
        }
        // bpf not listed: LSM programs would load and attach and never run.
        if !wanted.may_try(tier) || (tier == Tier::Lsm && !facts.lsm_listed) {
            continue;
        }
        // A tier matching names needs its own maps, made only now that it is tried.
        if tier.matches_names() && todo.iter().any(|&h| tier.sees(h)) {
            if let Err(errno) = add_names(policy, &choice, &mut maps) {
                facts.tiers[tier as usize].load = Step::Failed(errno);
                continue;
            }
        }
        if let Some(active) = try_tier(tier, &todo, &maps, &choice, &wanted, &mut facts, &mut served) {
            let _ = kept.push(active); // one per tier: fits
        }
    }

    let mut decided = outcome(facts, None);
    if decided.posture.state == State::Refused {
        return decided; // `kept` and `maps` drop here: nothing stays attached
    }
    for active in &kept {
        let mode = if wanted.enforces(active.tier) { Mode::Enforce } else { Mode::Audit };
        if let Err(e) = maps.set_mode(active.tier, mode, policy.signal) {
            // The programs would stay quiet: claim nothing.
            log::error!("cannot switch the {} tier on: {e}", active.tier.name());
            decided.posture.state = State::Refused;
            return decided;
        }
    }
    let follow_in_kernel = decided.posture.hooks[Hook::Follow as usize].is_some();
    let exact = kept.iter().all(|a| wanted.enforces(a.tier) && (a.tier.synchronous() || policy.signal == SIGKILL));
    decided.enforcement = Some(Enforcement { tiers: kept, maps, follow_in_kernel, generation, exact });
    decided
}

const SIGKILL: u8 = 9;

/// The path tier's names of the rules, in its own maps: an errno for its load step
/// when they cannot be made (a rule it cannot match is named in the log).
fn add_names(policy: &Policy, btf: &BtfChoice, maps: &mut Maps) -> Result<(), i32> {
    let started = std::time::Instant::now();
    let names = rules::path_names(policy, rules::canonical).map_err(|e| {
        log::error!("the path tier cannot match a rule: {e}");
        e.errno.unwrap_or(rustix::io::Errno::NAMETOOLONG).raw_os_error()
    })?;
    maps.add_names(&names, btf).map_err(|e| {
        log::error!("the path tier's maps: {e}");
        e.errno.raw_os_error()
    })?;
    log::debug!("path tier: {} names in its maps in {:?}", names.len(), started.elapsed());
    Ok(())
}

/// Brings `tier` up for `hooks`, proves each attached hook, records the facts, and
/// keeps the hooks that passed; returns the tier when any did.
fn try_tier(
    tier: Tier,
    hooks: &[Hook],
    maps: &Maps,
    btf: &BtfChoice,
    wanted: &Wanted,
    facts: &mut Facts,
    served: &mut [bool; HOOK_COUNT],
) -> Option<Active> {
    // Quiet until decided: only the canaries are acted on.
    if let Err(e) = maps.set_mode(tier, Mode::Quiet, wanted.signal) {
        log::error!("{} tier settings: {e}", tier.name());
        facts.tiers[tier as usize].load = Step::Failed(e.errno.raw_os_error());
        return None;
    }
    let up = tiers::bring_up(tier, hooks, maps, btf);
    let tf = &mut facts.tiers[tier as usize];
    tf.load = up.load;
    tf.jited = up.jited;
    for &h in hooks {
        tf.hooks[h as usize].attach = up.attach[h as usize];
    }
    let mut active = up.active?;
    for &h in hooks {
        let hf = &mut tf.hooks[h as usize];
        if hf.attach == Step::Ok {
            hf.canary = canary::prove(maps, tier, h, wanted.signal);
        }
        if hf.canary == Step::Ok {
            served[h as usize] = true;
        } else {
            active.detach(h);
        }
    }
    active.is_attached().then_some(active)
}
