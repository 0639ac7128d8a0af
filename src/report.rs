//! The `--check` report: the gate's outcome as `key=value` lines or one JSON object.
//! Keys and codes are stable; scripts read them.

use core::fmt::{self, Write};

use crate::config::{Fallback, Mode};
use crate::ladder::{Tier, CLASSES, HOOKS, LADDER};
use crate::posture::{Btf, Facts, Posture, Step, Wanted};
use crate::probe::LsmList;

/// Everything a report shows.
pub struct Report<'a> {
    pub posture: &'a Posture,
    pub wanted: &'a Wanted,
    pub facts: &'a Facts,
    pub lsm_list: &'a LsmList,
    pub kernel: &'a str,
    /// The config's `btf` file, if it names one.
    pub btf_file: Option<&'a str>,
    /// Rule counts per class.
    pub rules: [usize; 3],
    /// The config's `pin` directory, or `none`.
    pub pin: &'a str,
    /// The generations pinned there (or in the default directory), or `none`.
    pub pinned: &'a str,
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Enforce => "enforce",
        Mode::Audit => "audit",
    }
}

fn fallback_name(f: Fallback) -> &'static str {
    match f {
        Fallback::Signal => "signal",
        Fallback::Audit => "audit",
        Fallback::Refuse => "refuse",
    }
}

struct StepText(Step);

impl fmt::Display for StepText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Step::NotTried => f.write_str("not-tried"),
            Step::Ok => f.write_str("ok"),
            Step::Failed(e) => write!(f, "failed:{e}"),
        }
    }
}

/// Every (key, value) pair of the report, in order; both renderings use this.
fn pairs(r: &Report<'_>, mut emit: impl FnMut(&str, fmt::Arguments<'_>) -> fmt::Result) -> fmt::Result {
    let mut key = heapless::String::<40>::new();
    let mut keyed = |emit: &mut dyn FnMut(&str, fmt::Arguments<'_>) -> fmt::Result, k: fmt::Arguments<'_>, v: fmt::Arguments<'_>| {
        key.clear();
        let _ = key.write_fmt(k);
        emit(&key, v)
    };
    let tier_name = |t: Option<Tier>| t.map_or("none", Tier::name);
    emit("posture", format_args!("{}", r.posture.state.name()))?;
    emit("mode", format_args!("{}", mode_name(r.wanted.mode)))?;
    emit("fallback", format_args!("{}", fallback_name(r.wanted.fallback)))?;
    emit("tiers", format_args!("{}", Allowed(&r.wanted.allowed)))?;
    for c in CLASSES {
        keyed(&mut emit, format_args!("tier.{}", c.name()), format_args!("{}", tier_name(r.posture.tiers[c as usize])))?;
    }
    for h in HOOKS {
        let by = r.posture.hooks[h as usize];
        // Without a kernel program, the agent re-resolves the rules' paths itself.
        let name = if by.is_none() && h == crate::ladder::Hook::Follow { "agent" } else { tier_name(by) };
        keyed(&mut emit, format_args!("hook.{}", h.name()), format_args!("{name}"))?;
    }
    emit("blockers", format_args!("{}", Blockers(r.posture)))?;
    emit("rules.open", format_args!("{}", r.rules[0]))?;
    emit("rules.exec", format_args!("{}", r.rules[1]))?;
    emit("rules.connect", format_args!("{}", r.rules[2]))?;
    emit("kernel", format_args!("{}", r.kernel))?;
    match r.lsm_list {
        LsmList::Read(list) => emit("lsm_list", format_args!("{list}"))?,
        LsmList::Unreadable(why) => emit("lsm_list", format_args!("unreadable: {why}"))?,
    }
    emit("lsm.listed", format_args!("{}", if r.facts.lsm_listed { "yes" } else { "no" }))?;
    // The BTF libbpf relocated against: the kernel's own, the config's file, or none.
    match (r.facts.btf, r.btf_file) {
        (Btf::Kernel, _) => emit("btf", format_args!("kernel"))?,
        (Btf::File, Some(path)) => emit("btf", format_args!("file:{path}"))?,
        (Btf::File, None) => emit("btf", format_args!("file"))?,
        (Btf::None, _) => emit("btf", format_args!("none"))?,
    }
    emit("maps", format_args!("{}", StepText(r.facts.maps)))?;
    emit("pin", format_args!("{}", r.pin))?;
    emit("pinned", format_args!("{}", r.pinned))?;
    for t in LADDER {
        let tf = &r.facts.tiers[t as usize];
        if !r.wanted.allowed[t as usize] {
            keyed(&mut emit, format_args!("{}.load", t.name()), format_args!("excluded"))?;
            continue;
        }
        keyed(&mut emit, format_args!("{}.load", t.name()), format_args!("{}", StepText(tf.load)))?;
        if tf.load == Step::Ok {
            // Native code, or the interpreter (32-bit ARM's JIT refuses BPF-to-BPF calls).
            let jit = match tf.jited {
                Some(true) => "yes",
                Some(false) => "no",
                None => "unknown",
            };
            keyed(&mut emit, format_args!("{}.jit", t.name()), format_args!("{jit}"))?;
        }
        for h in HOOKS.into_iter().filter(|&h| !t.spec().programs[h as usize].is_empty()) {
            let hf = tf.hooks[h as usize];
            keyed(&mut emit, format_args!("{}.attach.{}", t.name(), h.name()), format_args!("{}", StepText(hf.attach)))?;
            keyed(&mut emit, format_args!("{}.canary.{}", t.name(), h.name()), format_args!("{}", StepText(hf.canary)))?;
        }
    }
    Ok(())
}

/// The allowed tiers, comma-separated, in ladder order.
struct Allowed<'a>(&'a [bool; crate::ladder::TIER_COUNT]);

impl fmt::Display for Allowed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for t in LADDER.into_iter().filter(|&t| self.0[t as usize]) {
            write!(f, "{sep}{}", t.name())?;
            sep = ",";
        }
        Ok(())
    }
}

/// The blockers, comma-separated ("none" when there are none): the same text in the
/// report and in the agent's `attached:` line.
pub struct Blockers<'a>(pub &'a Posture);

impl fmt::Display for Blockers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.blockers.is_empty() {
            return f.write_str("none");
        }
        for (i, b) in self.0.blockers.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            write!(f, "{b}")?;
        }
        Ok(())
    }
}

/// `key=value`, one pair a line.
pub fn write_text(out: &mut impl Write, r: &Report<'_>) -> fmt::Result {
    pairs(r, |k, v| writeln!(out, "{k}={v}"))
}

/// One JSON object with the same keys; every value is a string.
pub fn write_json(out: &mut impl Write, r: &Report<'_>) -> fmt::Result {
    out.write_char('{')?;
    let mut first = true;
    pairs(r, |k, v| {
        if !first {
            out.write_char(',')?;
        }
        first = false;
        write!(out, "\"{k}\":\"")?;
        write!(JsonEscape(out), "{v}")?;
        out.write_char('"')
    })?;
    out.write_str("}\n")
}

/// Escapes what it is given for a JSON string.
struct JsonEscape<'a, W: Write>(&'a mut W);

impl<W: Write> Write for JsonEscape<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '"' => self.0.write_str("\\\"")?,
                '\\' => self.0.write_str("\\\\")?,
                c if (c as u32) < 0x20 => write!(self.0, "\\u{:04x}", c as u32)?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder::{Hook, TIER_COUNT};
    use crate::posture::{decide, HookFacts, TierFacts};

    fn sample() -> (Posture, Wanted, Facts, LsmList) {
        let proven =
            TierFacts { load: Step::Ok, hooks: [HookFacts { attach: Step::Ok, canary: Step::Ok }; 7], jited: Some(true) };
        let mut facts = Facts { lsm_listed: true, maps: Step::Ok, ..Facts::default() };
        facts.tiers[Tier::Lsm as usize].load = Step::Failed(1);
        facts.tiers[Tier::Fmodret as usize].load = Step::Failed(1);
        facts.tiers[Tier::Kprobe as usize].load = Step::Ok;
        facts.tiers[Tier::Kprobe as usize].hooks[Hook::Open as usize].attach = Step::Failed(95);
        facts.tiers[Tier::Tracepoint as usize] = proven;
        let wanted = Wanted {
            mode: Mode::Enforce,
            fallback: Fallback::Signal,
            signal: 9,
            allowed: [true; TIER_COUNT],
            in_use: [true, false, false],
        };
        let list = LsmList::Read(heapless::String::try_from("capability,\"bpf").unwrap());
        (decide(&facts, &wanted), wanted, facts, list)
    }

    #[test]
    fn text_report_names_posture_tiers_and_blockers() {
        let (posture, wanted, facts, list) = sample();
        let r = Report { posture: &posture, wanted: &wanted, facts: &facts, lsm_list: &list, kernel: "6.1.0", btf_file: None, rules: [1, 0, 0], pin: "none", pinned: "none" };
        let mut s = String::new();
        write_text(&mut s, &r).unwrap();
        assert!(
            s.starts_with("posture=ENFORCE_SIGNAL\nmode=enforce\nfallback=signal\ntiers=lsm,fmodret,kprobe,tracepoint,path\ntier.open=tracepoint\n"),
            "{s}"
        );
        assert!(s.contains("\nhook.open=tracepoint\n"), "{s}");
        assert!(s.contains("\nhook.follow=agent\n"), "{s}");
        // A loaded tier says whether its programs run JIT-compiled; a failed load does not.
        assert!(s.contains("\ntracepoint.load=ok\ntracepoint.jit=yes\n"), "{s}");
        assert!(s.contains("\nlsm.load=failed:1\nlsm.attach."), "{s}");
        assert!(s.contains("\nblockers=lsm-load-failed:1,fmodret-load-failed:1,kprobe-attach-failed:open:95\n"), "{s}");
        assert!(s.contains("\nlsm.load=failed:1\nlsm.attach.open=not-tried\n"), "{s}");
        assert!(s.contains("\ntracepoint.canary.open=ok\n"), "{s}");
        assert!(s.contains("\nmaps=ok\npin=none\npinned=none\nlsm.load="), "{s}");
        assert!(!s.contains("tracepoint.attach.follow"), "the tracepoint tier has no follow program: {s}");
        assert!(s.ends_with("tracepoint.canary.send=ok\npath.load=not-tried\npath.attach.open=not-tried\npath.canary.open=not-tried\npath.attach.exec=not-tried\npath.canary.exec=not-tried\npath.attach.connect=not-tried\npath.canary.connect=not-tried\npath.attach.send=not-tried\npath.canary.send=not-tried\n"), "{s}");
        assert!(!s.contains("path.attach.mmap"), "the path tier has no mmap program: {s}");
    }

    #[test]
    fn the_btf_used_is_named() {
        let (posture, wanted, facts, list) = sample();
        let text = |facts: &Facts, file| {
            let r = Report { posture: &posture, wanted: &wanted, facts, lsm_list: &list, kernel: "6.1.0", btf_file: file, rules: [1, 0, 0], pin: "none", pinned: "none" };
            let mut s = String::new();
            write_text(&mut s, &r).unwrap();
            s
        };
        assert!(text(&facts, Some("/x.btf")).contains("\nbtf=kernel\n"));
        let file = Facts { btf: Btf::File, ..facts };
        assert!(text(&file, Some("/usr/lib/enforce/vmlinux.btf")).contains("\nbtf=file:/usr/lib/enforce/vmlinux.btf\n"));
        let none = Facts { btf: Btf::None, ..facts };
        assert!(text(&none, None).contains("\nbtf=none\n"));
    }

    #[test]
    fn excluded_tiers_say_so() {
        let (_, mut wanted, facts, list) = sample();
        wanted.allowed = [false, false, true, true, false];
        let posture = decide(&facts, &wanted);
        let r = Report { posture: &posture, wanted: &wanted, facts: &facts, lsm_list: &list, kernel: "6.1.0", btf_file: None, rules: [1, 0, 0], pin: "none", pinned: "none" };
        let mut s = String::new();
        write_text(&mut s, &r).unwrap();
        assert!(s.contains("\ntiers=kprobe,tracepoint\n"), "{s}");
        assert!(s.contains("\nlsm.load=excluded\nfmodret.load=excluded\nkprobe.load=ok\n"), "{s}");
        assert!(s.contains("blockers=lsm-excluded,fmodret-excluded,kprobe-attach-failed:open:95,path-excluded\n"), "{s}");
    }

    #[test]
    fn json_report_has_the_same_keys_escaped() {
        let (posture, wanted, facts, list) = sample();
        let r = Report { posture: &posture, wanted: &wanted, facts: &facts, lsm_list: &list, kernel: "6.1.0", btf_file: None, rules: [1, 0, 0], pin: "none", pinned: "none" };
        let mut s = String::new();
        write_json(&mut s, &r).unwrap();
        assert!(s.starts_with("{\"posture\":\"ENFORCE_SIGNAL\",\"mode\":\"enforce\","), "{s}");
        assert!(s.contains("\"lsm_list\":\"capability,\\\"bpf\""), "{s}");
        assert!(s.ends_with("\"path.canary.send\":\"not-tried\"}\n"), "{s}");
        let mut text = String::new();
        write_text(&mut text, &r).unwrap();
        assert_eq!(s.matches("\":\"").count(), text.lines().count());
    }
}
