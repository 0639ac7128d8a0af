//! A fuzzer for the config parser that runs on the stable toolchain: seeded,
//! mutation-based, outcome-guided (an input whose outcome — accepted, or the kind of
//! rejection — is new joins the corpus). It drives what `main::load` does with a
//! config's bytes, with the file system replaced by fakes: `config::parse_bytes`,
//! `targets::check_with` and `rules::inode_rules`. It checks:
//!
//! - no panic (caught, and the input saved under `target/fuzz-findings/`);
//! - no hang: every input is handled within MAX_INPUT_TIME;
//! - every rejection is a clean `FILE:LINE: reason`: the line is 0 (the whole file)
//!   or a line of the input, the reason one line of printable text, not empty, at
//!   most MAX_REASON bytes;
//! - every accepted policy is within its bounds (rule lines in order and in the file,
//!   capacities, paths absolute and without NUL).
//!
//! `make test` runs it for 20 s (`make fuzz-test`); `make fuzz FUZZ_SECS=N` runs it
//! longer. `ENFORCE_FUZZ_SECS` (default 2 for the unit-test run) and
//! `ENFORCE_FUZZ_SEED` (default: fixed) control it. FUZZING.md records a long run.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::abi::InodeKey;
use crate::config::{self, Policy};
use crate::guard::{Protected, What};
use crate::rules;
use crate::targets::{self, Kind, Target};

/// The longest any one input may take.
const MAX_INPUT_TIME: Duration = Duration::from_secs(1);
/// The longest reason a rejection may give (a rule's path, up to 255 bytes, and why).
const MAX_REASON: usize = 600;
/// Inputs are kept below this size (a little over the parser's limit, so the
/// too-large path is reached too).
const MAX_INPUT: usize = config::MAX_CONFIG_BYTES + 2048;
/// The corpus stops growing here.
const MAX_CORPUS: usize = 4096;

const SEEDS: &[&str] = &[
    include_str!("../init/enforce.conf"),
    include_str!("../init/demo.conf"),
    "",
    "mode = audit\nfallback = refuse\nsignal = sigterm\n",
    "deny_open = /etc/shadow\ndeny_exec = /usr/bin/nc\ndeny_open = /srv/a#b\n",
    "deny_connect = 10.0.0.0/8\ndeny_connect = 192.0.2.10/32:443\ndeny_connect = [2001:db8::/32]:443\n\
     deny_connect = ::ffff:10.0.0.0/104\ndeny_connect = ::1\n",
    "syslog_ident = my-enforce_1.0\nsyslog_facility = local7\nringbuf_size = 1M\n",
    "coalesce_window = 0\ncoalesce_burst = 10000\nlog_rate = 100000\nallow_dangerous_rules = yes\n",
    "pin = /sys/fs/bpf/enforce\n",
    "\u{feff}mode = enforce\r\ndeny_open = /bin/sh\r\n",
    "# comment\n\n   \t# indented\nmode = enforce # not a comment\n",
];

/// Tokens the mutator inserts: keys, values and the characters the parser splits on.
const TOKENS: &[&str] = &[
    "mode", "fallback", "signal", "deny_open", "deny_exec", "deny_connect", "syslog_ident", "syslog_facility",
    "syslog_format", "rfc5424", "ringbuf_size", "allow_dangerous_rules", "coalesce_window", "coalesce_burst", "log_rate", "pin", "btf", "tiers", "enforce", "audit",
    "refuse", "yes", "no", "KILL", "SIGUSR1", "local7", "=", " = ", "\n", "\r\n", "\r", "#", " ", "\t", "/", "//",
    "/proc/self/status", "/bin/sh", "/dev/null", "/etc", "/x", "[", "]", ":", "::", "::ffff:", "/0", "/8", "/32",
    "/128", "/129", ":443", ":0", ":65536", "10.0.0.0", "255.255.255.255", "fd00::", "4K", "16M", "0", "1",
    "4294967296", "99999999999", "\u{feff}", "\u{0}", "\u{7f}", "é", "💥", "\u{202e}",
];

/// Interesting single bytes.
const BYTES: &[u8] = &[0, b'\n', b'\r', b'=', b'#', b' ', b'/', b':', b'[', b']', b'.', b'0', b'9', 0x7f, 0x80, 0xc3, 0xef, 0xfe, 0xff];

/// xorshift64*: deterministic for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One to four stacked mutations of `input`, with `other` for splicing.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(9) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = BYTES[rng.below(BYTES.len())];
            }
            2 | 3 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                v.splice(at..at, t.iter().copied());
            }
            4 if !v.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at.min(end)..end);
            }
            5 if !v.is_empty() => {
                let start = rng.below(v.len());
                let end = (start + 1 + rng.below(64)).min(v.len());
                let copy = v[start..end].to_vec();
                v.splice(at..at, copy);
            }
            6 => {
                let cut = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[cut..]);
            }
            7 => {
                // Swap two lines.
                let mut lines: Vec<Vec<u8>> = v.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                lines.swap(a, b);
                v = lines.join(&b'\n');
            }
            _ => {
                // A whole line from the dictionary: key = value.
                let key = TOKENS[rng.below(13)];
                let value = TOKENS[rng.below(TOKENS.len())];
                let line = format!("{key} = {value}\n");
                v.splice(at..at, line.bytes());
            }
        }
    }
    if rng.below(2000) == 0 {
        // Now and then, a file at or over the size limit.
        let fill = config::MAX_CONFIG_BYTES + 1 - rng.below(2);
        v.resize(fill.max(v.len()), b'#');
    }
    v.truncate(MAX_INPUT);
    v
}

/// Fake file facts: the path decides kind, mode, filesystem and inode, so every
/// branch of `targets::judge` and the guard is reached without touching the disk.
fn fake_target(path: &str) -> Result<Target, rustix::io::Errno> {
    let h = path.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    if h % 11 == 0 {
        return Err(rustix::io::Errno::NOENT);
    }
    let kind = match h % 13 {
        0 => Kind::Directory,
        1 => Kind::CharDevice,
        2 => Kind::Fifo,
        3 => Kind::Socket,
        _ => Kind::Regular,
    };
    let fs_magic = if path.starts_with("/proc") { 0x9fa0 } else { 0xef53 };
    let perm = if h % 5 == 0 { 0o644 } else { 0o755 };
    Ok(Target { kind, perm, fs_magic, key: InodeKey { dev: 8, ino: h % 300 } })
}

fn fake_key(path: &str) -> Result<InodeKey, rustix::io::Errno> {
    fake_target(path).map(|t| t.key)
}

/// A rejection as `main::load` prints it, checked for cleanliness; panics with the
/// input when it is not clean.
fn check_rejection(input: &[u8], line: u32, reason: &str) {
    let lines = input.split(|&b| b == b'\n').count() as u32;
    let shown = format!("/etc/enforce.conf:{line}: {reason}");
    let fail = |why: &str| panic!("{why}: {shown:?} for input {:?}", String::from_utf8_lossy(input));
    if line > lines {
        fail("line beyond the input");
    }
    if reason.is_empty() {
        fail("empty reason");
    }
    if reason.len() > MAX_REASON {
        fail("reason too long");
    }
    if reason.chars().any(char::is_control) {
        fail("reason not one printable line");
    }
}

/// An accepted policy must be within its bounds.
fn check_policy(input: &[u8], p: &Policy) {
    let lines = input.split(|&b| b == b'\n').count() as u32;
    let fail = |why: &str| panic!("{why}: {p:?} for input {:?}", String::from_utf8_lossy(input));
    let path_lines = p.open.iter().chain(p.exec.iter()).map(|r| r.line);
    if path_lines.chain(p.connect.iter().map(|r| r.line)).any(|l| l == 0 || l > lines) {
        fail("a rule's line is not a line of the input");
    }
    for rules in [&p.open[..], &p.exec[..]] {
        if rules.windows(2).any(|w| w[0].line >= w[1].line) {
            fail("rules out of order");
        }
        if rules.iter().any(|r| !p.path(r).starts_with('/') || p.path(r).contains('\0')) {
            fail("a path that is not absolute, or has a NUL");
        }
    }
    if !p.ringbuf_size.is_power_of_two() || p.coalesce_burst == 0 || p.syslog_ident.is_empty() {
        fail("a value out of its range");
    }
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Figures {
    pub iterations: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub outcomes: usize,
    pub corpus: usize,
    pub slowest: Duration,
}

/// The outcome class of an input, for the corpus: for an accepted one, which parts
/// of the policy it sets; for a rejection, whether it is about the whole file and the
/// first four words of the reason before any quoted value, without paths and numbers.
fn outcome(result: &Result<Box<Policy>, (u32, String)>) -> String {
    match result {
        Ok(p) => {
            let d = Policy::default();
            format!(
                "ok:{}{}{}{}{}{}{}{}{}",
                !p.open.is_empty() as u8,
                !p.exec.is_empty() as u8,
                p.connect.iter().any(|r| matches!(r.net, config::Net::V4 { .. })) as u8,
                p.connect.iter().any(|r| matches!(r.net, config::Net::V6 { .. })) as u8,
                p.connect.iter().any(|r| r.port.is_some()) as u8,
                (p.mode != d.mode) as u8,
                (p.fallback != d.fallback || p.signal != d.signal) as u8,
                (p.syslog_ident != d.syslog_ident || p.syslog_facility != d.syslog_facility || p.syslog_format != d.syslog_format) as u8,
                (p.ringbuf_size != d.ringbuf_size || p.allow_dangerous_rules || p.log_rate != d.log_rate) as u8,
            )
        }
        Err((line, reason)) => {
            // A reason quotes what it got from the input from its first '"' on.
            let head = reason.split('"').next().unwrap_or("");
            let words = head.split(' ').filter(|w| !w.contains('/') && !w.bytes().any(|b| b.is_ascii_digit()));
            format!("{}{}", if *line == 0 { "0:" } else { "n:" }, words.take(4).collect::<Vec<_>>().join(" "))
        }
    }
}

/// Handles one input as `main::load` would; Err is (line, reason).
fn run_one(input: &[u8], protected: &[Protected]) -> Result<Box<Policy>, (u32, String)> {
    let policy = config::parse_bytes(input).map_err(|e| (e.line, e.reason))?;
    check_policy(input, &policy);
    targets::check_with(&policy, fake_target, protected, |_, _| {}).map_err(|e| (e.line, e.to_string()))?;
    rules::inode_rules(&policy, fake_key).map_err(|e| (e.line, e.to_string()))?;
    Ok(policy)
}

/// Fuzzes for `duration` from `seed`.
pub fn fuzz(seed: u64, duration: Duration) -> Figures {
    let mut rng = Rng(seed | 1);
    let protected = [
        Protected { key: fake_key("/bin/sh").unwrap_or(InodeKey { dev: 8, ino: 1 }), fsdev: 8, what: What::Shell },
        Protected { key: InodeKey { dev: 8, ino: 7 }, fsdev: 8, what: What::Pid1Exe },
    ];
    let mut corpus: Vec<Vec<u8>> = SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
    let mut seen = HashSet::new();
    let mut f = Figures::default();
    let start = Instant::now();
    while start.elapsed() < duration {
        let input = {
            let a = &corpus[rng.below(corpus.len())];
            let b = &corpus[rng.below(corpus.len())];
            mutate(&mut rng, a, b)
        };
        let t = Instant::now();
        let result = std::panic::catch_unwind(|| run_one(&input, &protected));
        let took = t.elapsed();
        let result = result.unwrap_or_else(|_| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-findings");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("crash-{seed}-{}.conf", f.iterations));
            let _ = std::fs::write(&file, &input);
            panic!("the config parser panicked; input saved as {}", file.display())
        });
        assert!(
            took <= MAX_INPUT_TIME,
            "one input took {took:?}: {:?}",
            String::from_utf8_lossy(&input[..input.len().min(200)])
        );
        f.slowest = f.slowest.max(took);
        match &result {
            Ok(_) => f.accepted += 1,
            Err((line, reason)) => {
                f.rejected += 1;
                check_rejection(&input, *line, reason);
            }
        }
        if seen.insert(outcome(&result)) && corpus.len() < MAX_CORPUS {
            corpus.push(input);
        }
        f.iterations += 1;
    }
    f.outcomes = seen.len();
    f.corpus = corpus.len();
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_u64(name: &str, default: u64) -> u64 {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    }

    #[test]
    fn fuzz_config_parser() {
        let secs = env_u64("ENFORCE_FUZZ_SECS", 2);
        let seed = env_u64("ENFORCE_FUZZ_SEED", 0x5eed_c0f1_9000_0001);
        let start = Instant::now();
        let f = fuzz(seed, Duration::from_secs(secs));
        let took = start.elapsed();
        println!(
            "config fuzz: seed {seed:#x}, {} inputs in {:.1} s ({:.0}/s): {} accepted, {} rejected cleanly, \
             {} distinct outcomes, corpus {}, slowest input {:?}, no panic, no hang",
            f.iterations,
            took.as_secs_f64(),
            f.iterations as f64 / took.as_secs_f64(),
            f.accepted,
            f.rejected,
            f.outcomes,
            f.corpus,
            f.slowest
        );
        assert!(f.iterations > 0);
        assert!(f.accepted > 0 && f.rejected > 0, "the fuzzer reaches both outcomes: {f:?}");
    }

    #[test]
    fn the_checks_catch_what_they_are_for() {
        // The rejection check fails on a bad line number, and on a reason that is
        // not one clean line: a fuzz run that passes means something.
        for (line, reason) in [(3, "x"), (1, ""), (1, "a\nb"), (1, "\u{1b}[31m")] {
            let r = std::panic::catch_unwind(|| check_rejection(b"one line\n", line, reason));
            assert!(r.is_err(), "{line} {reason:?} passed the check");
        }
        check_rejection(b"a\nb\n", 3, "fine");
        check_rejection(b"", 0, "the whole file");
        // And the mutator is deterministic for a seed.
        let (mut a, mut b) = (Rng(7), Rng(7));
        assert_eq!(mutate(&mut a, b"mode = audit\n", b"x"), mutate(&mut b, b"mode = audit\n", b"x"));
    }
}
