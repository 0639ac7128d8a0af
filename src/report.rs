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

/// One value of the report, typed for JSON; the text rendering writes each as it
/// always has.
enum Value<'a> {
    /// Text: a JSON string.
    Text(fmt::Arguments<'a>),
    /// A count: a JSON number.
    Count(usize),
    /// `yes` or `no`: a JSON boolean.
    YesNo(bool),
    /// `yes`, `no` or `unknown`: a JSON boolean or null.
    Maybe(Option<bool>),
    /// Names, comma-separated (`empty` when there are none): a JSON array of strings.
    List(Items<'a>, &'static str),
}

/// Calls its argument with each item of a list.
type Items<'a> = &'a dyn Fn(&mut dyn FnMut(fmt::Arguments<'_>) -> fmt::Result) -> fmt::Result;

/// Every (key, value) pair of the report, in order; both renderings use this.
fn pairs(r: &Report<'_>, mut emit: impl FnMut(&str, Value<'_>) -> fmt::Result) -> fmt::Result {
    use Value::{Count, List, Maybe, Text, YesNo};
    let mut key = heapless::String::<40>::new();
    let mut keyed = |emit: &mut dyn FnMut(&str, Value<'_>) -> fmt::Result, k: fmt::Arguments<'_>, v: Value<'_>| {
        key.clear();
        let _ = key.write_fmt(k);
        emit(&key, v)
    };
    let tier_name = |t: Option<Tier>| t.map_or("none", Tier::name);
    emit("posture", Text(format_args!("{}", r.posture.state.name())))?;
    emit("mode", Text(format_args!("{}", mode_name(r.wanted.mode))))?;
    emit("fallback", Text(format_args!("{}", fallback_name(r.wanted.fallback))))?;
    let allowed = |item: &mut dyn FnMut(fmt::Arguments<'_>) -> fmt::Result| {
        LADDER.into_iter().filter(|&t| r.wanted.allowed[t as usize]).try_for_each(|t| item(format_args!("{}", t.name())))
    };
    emit("tiers", List(&allowed, ""))?;
    for c in CLASSES {
        keyed(&mut emit, format_args!("tier.{}", c.name()), Text(format_args!("{}", tier_name(r.posture.tiers[c as usize]))))?;
    }
    for h in HOOKS {
        let by = r.posture.hooks[h as usize];
        // Without a kernel program, the agent re-resolves the rules' paths itself.
        let name = if by.is_none() && h == crate::ladder::Hook::Follow { "agent" } else { tier_name(by) };
        keyed(&mut emit, format_args!("hook.{}", h.name()), Text(format_args!("{name}")))?;
    }
    let blockers = |item: &mut dyn FnMut(fmt::Arguments<'_>) -> fmt::Result| r.posture.blockers.iter().try_for_each(|b| item(format_args!("{b}")));
    emit("blockers", List(&blockers, "none"))?;
    emit("rules.open", Count(r.rules[0]))?;
    emit("rules.exec", Count(r.rules[1]))?;
    emit("rules.connect", Count(r.rules[2]))?;
    emit("kernel", Text(format_args!("{}", r.kernel)))?;
    match r.lsm_list {
        LsmList::Read(list) => emit("lsm_list", Text(format_args!("{list}")))?,
        LsmList::Unreadable(why) => emit("lsm_list", Text(format_args!("unreadable: {why}")))?,
    }
    emit("lsm.listed", YesNo(r.facts.lsm_listed))?;
    // The BTF libbpf relocated against: the kernel's own, the config's file, or none.
    match (r.facts.btf, r.btf_file) {
        (Btf::Kernel, _) => emit("btf", Text(format_args!("kernel")))?,
        (Btf::File, Some(path)) => emit("btf", Text(format_args!("file:{path}")))?,
        (Btf::File, None) => emit("btf", Text(format_args!("file")))?,
        (Btf::None, _) => emit("btf", Text(format_args!("none")))?,
    }
    emit("maps", Text(format_args!("{}", StepText(r.facts.maps))))?;
    emit("pin", Text(format_args!("{}", r.pin)))?;
    emit("pinned", Text(format_args!("{}", r.pinned)))?;
    for t in LADDER {
        let tf = &r.facts.tiers[t as usize];
        if !r.wanted.allowed[t as usize] {
            keyed(&mut emit, format_args!("{}.load", t.name()), Text(format_args!("excluded")))?;
            continue;
        }
        keyed(&mut emit, format_args!("{}.load", t.name()), Text(format_args!("{}", StepText(tf.load))))?;
        if tf.load == Step::Ok {
            // Native code, or the interpreter (32-bit ARM's JIT refuses BPF-to-BPF calls).
            keyed(&mut emit, format_args!("{}.jit", t.name()), Maybe(tf.jited))?;
        }
        for h in HOOKS.into_iter().filter(|&h| !t.spec().programs[h as usize].is_empty()) {
            let hf = tf.hooks[h as usize];
            keyed(&mut emit, format_args!("{}.attach.{}", t.name(), h.name()), Text(format_args!("{}", StepText(hf.attach))))?;
            keyed(&mut emit, format_args!("{}.canary.{}", t.name(), h.name()), Text(format_args!("{}", StepText(hf.canary))))?;
        }
    }
    Ok(())
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
    pairs(r, |k, v| {
        write!(out, "{k}=")?;
        match v {
            Value::Text(t) => out.write_fmt(t)?,
            Value::Count(n) => write!(out, "{n}")?,
            Value::YesNo(b) => out.write_str(if b { "yes" } else { "no" })?,
            Value::Maybe(b) => out.write_str(b.map_or("unknown", |b| if b { "yes" } else { "no" }))?,
            Value::List(items, empty) => {
                let mut sep = "";
                items(&mut |item| {
                    out.write_str(sep)?;
                    sep = ",";
                    out.write_fmt(item)
                })?;
                if sep.is_empty() {
                    out.write_str(empty)?;
                }
            }
        }
        out.write_char('\n')
    })
}

/// One JSON object with the same keys, and `version` and `build` (null when the
/// build names none) at its end: counts are numbers, yes/no are booleans (`unknown`
/// is null), lists are arrays of strings (empty when the text says `none`), the rest
/// strings.
pub fn write_json(out: &mut impl Write, r: &Report<'_>, version: &str, build: &str) -> fmt::Result {
    out.write_char('{')?;
    let mut first = true;
    pairs(r, |k, v| {
        if !first {
            out.write_char(',')?;
        }
        first = false;
        write!(out, "\"{k}\":")?;
        match v {
            Value::Text(t) => {
                out.write_char('"')?;
                JsonEscape(&mut *out).write_fmt(t)?;
                out.write_char('"')
            }
            Value::Count(n) => write!(out, "{n}"),
            Value::YesNo(b) => write!(out, "{b}"),
            Value::Maybe(None) => out.write_str("null"),
            Value::Maybe(Some(b)) => write!(out, "{b}"),
            Value::List(items, _) => {
                out.write_char('[')?;
                let mut sep = "";
                items(&mut |item| {
                    write!(out, "{sep}\"")?;
                    sep = ",";
                    JsonEscape(&mut *out).write_fmt(item)?;
                    out.write_char('"')
                })?;
                out.write_char(']')
            }
        }
    })?;
    out.write_str(",\"version\":\"")?;
    JsonEscape(&mut *out).write_str(version)?;
    match build {
        "" => out.write_str("\",\"build\":null}\n"),
        build => {
            out.write_str("\",\"build\":\"")?;
            JsonEscape(&mut *out).write_str(build)?;
            out.write_str("\"}\n")
        }
    }
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
    fn json_report_has_the_same_keys_typed_and_escaped() {
        let (posture, wanted, facts, list) = sample();
        let r = Report { posture: &posture, wanted: &wanted, facts: &facts, lsm_list: &list, kernel: "6.1.0", btf_file: None, rules: [1, 0, 0], pin: "none", pinned: "none" };
        let mut s = String::new();
        write_json(&mut s, &r, "0.1.0", "abc1234-dirty").unwrap();
        assert!(s.starts_with("{\"posture\":\"ENFORCE_SIGNAL\",\"mode\":\"enforce\",\"fallback\":\"signal\",\"tiers\":[\"lsm\",\"fmodret\",\"kprobe\",\"tracepoint\",\"path\"],"), "{s}");
        assert!(s.contains("\"lsm_list\":\"capability,\\\"bpf\""), "{s}");
        assert!(s.contains("\"blockers\":[\"lsm-load-failed:1\",\"fmodret-load-failed:1\",\"kprobe-attach-failed:open:95\"],"), "{s}");
        assert!(s.contains("\"rules.open\":1,\"rules.exec\":0,\"rules.connect\":0,"), "{s}");
        assert!(s.contains("\"lsm.listed\":true,"), "{s}");
        assert!(s.contains("\"tracepoint.jit\":true,"), "{s}");
        assert!(s.ends_with("\"path.canary.send\":\"not-tried\",\"version\":\"0.1.0\",\"build\":\"abc1234-dirty\"}\n"), "{s}");
        let mut text = String::new();
        write_text(&mut text, &r).unwrap();
        // The same keys, in the same order, and version and build.
        let keys = |s: &str| s.split(['{', ',']).filter_map(|p| p.strip_prefix('"')?.split_once("\":").map(|(k, _)| k.to_owned())).collect::<Vec<_>>();
        let mut want: Vec<String> = text.lines().map(|l| l.split_once('=').unwrap().0.to_owned()).collect();
        want.extend(["version".to_owned(), "build".to_owned()]);
        assert_eq!(keys(&s), want);

        let mut s = String::new();
        write_json(&mut s, &r, "0.1.0", "").unwrap();
        assert!(s.ends_with(",\"version\":\"0.1.0\",\"build\":null}\n"), "{s}");
    }

    #[test]
    fn json_empty_lists_and_unknown_jit() {
        let (_, mut wanted, mut facts, list) = sample();
        facts.tiers[Tier::Tracepoint as usize].jited = None;
        wanted.allowed = [false, false, false, true, false];
        let mut posture = decide(&facts, &wanted);
        posture.blockers.clear();
        let r = Report { posture: &posture, wanted: &wanted, facts: &facts, lsm_list: &list, kernel: "6.1.0", btf_file: None, rules: [1, 0, 0], pin: "none", pinned: "none" };
        let (mut json, mut text) = (String::new(), String::new());
        write_json(&mut json, &r, "0.1.0", "").unwrap();
        write_text(&mut text, &r).unwrap();
        assert!(json.contains("\"tiers\":[\"tracepoint\"],") && json.contains("\"blockers\":[],"), "{json}");
        assert!(json.contains("\"tracepoint.jit\":null,"), "{json}");
        assert!(text.contains("\ntiers=tracepoint\n") && text.contains("\nblockers=none\n"), "{text}");
        assert!(text.contains("\ntracepoint.jit=unknown\n"), "{text}");
    }
}
