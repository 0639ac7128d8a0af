//! The whole posture gate, as both `enforce` and `enforce --check` run it: read the
//! LSM list, bring the LSM tier up, fall back to the signal tier when the LSM tier is
//! not complete and the config allows it, decide, and keep only what the decision uses.

use crate::config::Policy;
use crate::posture::{self, Facts, Posture, State, TierKind, Wanted};
use crate::probe::{self, LsmList};
use crate::tiers::{self, Active, Rules};

/// What the gate found and what it kept attached.
pub struct Outcome {
    pub lsm_list: LsmList,
    pub kernel: heapless::String<64>,
    pub wanted: Wanted,
    pub facts: Facts,
    pub posture: Posture,
    /// The tier in use; None when the posture is REFUSED (nothing stays attached).
    pub active: Option<Active>,
}

/// What the config asks of the gate.
pub fn wanted(policy: &Policy) -> Wanted {
    Wanted {
        mode: policy.mode,
        fallback: policy.fallback,
        in_use: [!policy.open.is_empty(), !policy.exec.is_empty(), !policy.connect.is_empty()],
    }
}

/// Runs the gate. On return the kept tier (if any) has its maps filled and its
/// programs attached in the mode the posture allows.
pub fn run(policy: &Policy, rules: &Rules<'_>) -> Outcome {
    let lsm_list = probe::lsm_list();
    let wanted = wanted(policy);
    let mut facts = Facts { lsm_listed: lsm_list.has_bpf(), ..Facts::default() };

    // The LSM tier is tried even when bpf is not listed: a program that loads and
    // attaches there never runs, and the canary shows it.
    let (lsm_facts, lsm) = tiers::bring_up(TierKind::Lsm, rules, None);
    facts.lsm = lsm_facts;
    let mut active = if posture::lsm_complete(&facts, &wanted) {
        lsm
    } else {
        drop(lsm); // detach before the other tier comes up
        None
    };
    if active.is_none() && posture::wants_signal_tier(&facts, &wanted) {
        let (signal_facts, signal) = tiers::bring_up(TierKind::Signal, rules, Some(i32::from(policy.signal)));
        facts.signal = signal_facts;
        active = signal;
    }

    let mut posture = posture::decide(&facts, &wanted);
    if posture.state == State::Refused {
        active = None;
    }
    if let Some(tier) = &active {
        let enforcing = posture::programs_enforce(&facts, &wanted);
        if let Err(e) = tier.set_enforcing(enforcing, policy.signal) {
            // The programs would stay in report-only mode: claim nothing.
            log::error!("cannot switch the {} tier on: {e}", tier.kind.name());
            posture.state = State::Refused;
            active = None;
        }
    }
    Outcome { lsm_list, kernel: probe::kernel_release(), wanted, facts, posture, active }
}
