//! The `--check` report: the gate's outcome as `key=value` lines or one JSON object.
//! Keys and codes are stable; scripts read them.

use core::fmt::{self, Write};

use crate::config::{Fallback, Mode};
use crate::posture::{Facts, Posture, Step, TierFacts, Wanted, CLASSES};
use crate::probe::LsmList;

/// Everything a report shows.
pub struct Report<'a> {
    pub posture: &'a Posture,
    pub wanted: &'a Wanted,
    pub facts: &'a Facts,
    pub lsm_list: &'a LsmList,
    pub kernel: &'a str,
    /// Rule counts per class.
    pub rules: [usize; 3],
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
    emit("posture", format_args!("{}", r.posture.state.name()))?;
    emit("mode", format_args!("{}", mode_name(r.wanted.mode)))?;
    emit("fallback", format_args!("{}", fallback_name(r.wanted.fallback)))?;
    for c in CLASSES {
        let tier = r.posture.tiers[c as usize].map_or("none", |t| t.name());
        let key = match c {
            crate::posture::Class::Open => "tier.open",
            crate::posture::Class::Exec => "tier.exec",
            crate::posture::Class::Connect => "tier.connect",
        };
        emit(key, format_args!("{tier}"))?;
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
    tier_pairs("lsm", &r.facts.lsm, &mut emit)?;
    tier_pairs("signal", &r.facts.signal, &mut emit)
}

fn tier_pairs(prefix: &str, t: &TierFacts, emit: &mut impl FnMut(&str, fmt::Arguments<'_>) -> fmt::Result) -> fmt::Result {
    let mut key = heapless::String::<32>::new();
    let mut put = |suffix: &str, step: Step| {
        key.clear();
        let _ = write!(key, "{prefix}.{suffix}");
        emit(&key, format_args!("{}", StepText(step)))
    };
    put("load", t.load)?;
    put("attach.open", t.attach[0])?;
    put("attach.exec", t.attach[1])?;
    put("attach.connect", t.attach[2])?;
    put("canary", t.canary)
}

/// The blockers, comma-separated ("none" when there are none).
struct Blockers<'a>(&'a Posture);

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
    use crate::posture::{decide, Blocker, TierFacts};

    fn sample() -> (Posture, Wanted, Facts, LsmList) {
        let facts = Facts {
            lsm_listed: true,
            lsm: TierFacts { load: Step::Failed(1), ..Default::default() },
            signal: TierFacts { load: Step::Ok, attach: [Step::Ok; 3], canary: Step::Ok },
        };
        let wanted = Wanted { mode: Mode::Enforce, fallback: Fallback::Signal, in_use: [true, false, false] };
        let list = LsmList::Read(heapless::String::try_from("capability,\"bpf").unwrap());
        (decide(&facts, &wanted), wanted, facts, list)
    }

    #[test]
    fn text_report_names_posture_tiers_and_blockers() {
        let (posture, wanted, facts, list) = sample();
        assert_eq!(posture.blockers.as_slice(), &[Blocker::LsmLoadFailed(1)]);
        let r = Report { posture: &posture, wanted: &wanted, facts: &facts, lsm_list: &list, kernel: "6.1.0", rules: [1, 0, 0] };
        let mut s = String::new();
        write_text(&mut s, &r).unwrap();
        assert!(s.starts_with("posture=ENFORCE_SIGNAL\nmode=enforce\nfallback=signal\ntier.open=signal\n"), "{s}");
        assert!(s.contains("\nblockers=lsm-load-failed:1\n"), "{s}");
        assert!(s.contains("\nlsm.load=failed:1\nlsm.attach.open=not-tried\n"), "{s}");
        assert!(s.contains("\nsignal.canary=ok\n"), "{s}");
        assert!(s.ends_with("signal.canary=ok\n"));
    }

    #[test]
    fn json_report_has_the_same_keys_escaped() {
        let (posture, wanted, facts, list) = sample();
        let r = Report { posture: &posture, wanted: &wanted, facts: &facts, lsm_list: &list, kernel: "6.1.0", rules: [1, 0, 0] };
        let mut s = String::new();
        write_json(&mut s, &r).unwrap();
        assert!(s.starts_with("{\"posture\":\"ENFORCE_SIGNAL\",\"mode\":\"enforce\","), "{s}");
        assert!(s.contains("\"lsm_list\":\"capability,\\\"bpf\""), "{s}");
        assert!(s.ends_with("\"signal.canary\":\"ok\"}\n"), "{s}");
        let mut text = String::new();
        write_text(&mut text, &r).unwrap();
        assert_eq!(s.matches("\":\"").count(), text.lines().count());
    }
}
