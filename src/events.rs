//! Ring-buffer record (`struct enforce_event`) → typed [`Event`] → one text line.
//!
//! The line goes to syslog as is, so its format is stable and grep-friendly: one word
//! for the action, then `key=value` fields separated by single spaces, no value ever
//! containing a space:
//!
//! ```text
//! ACTION class=CLASS op=OP tier=TIER [signal=SIG] pid=N uid=N comm=NAME OBJECT [path=PATH] rule=N
//! ```
//!
//! - ACTION: `denied`, `audited`, `followed` (a rule moved to the inode that
//!   replaced a denied file by rename), or `unlinked` (a denied file lost a name by
//!   unlink or rename: the agent watches the rule's path until a new file takes it);
//! - CLASS: `open`, `exec`, `connect`; OP: what the hook saw: `open`; `exec`, `mmap`
//!   (a file mapped executable), `mprotect` (a file mapping made executable);
//!   `connect`, `send` (a send with a destination); `follow`;
//! - TIER: `lsm`, `fmodret`, `kprobe`, `tracepoint`, `path`;
//! - `signal=` only when a signal was sent: its name without SIG (`KILL`), or its number;
//! - `comm=`: the task name, every byte outside printable ASCII (space included) shown as `?`;
//! - OBJECT: `dev=MAJOR:MINOR ino=N` for file operations (none in the `path` tier, which
//!   matches names, not inodes), `addr=IP port=N` for connect
//!   and send (IPv6 in the standard form without brackets; IPv4-mapped as IPv4);
//!   none with `reason=unreadable` (a signal tier could not read the path or
//!   destination from the caller's memory) or `reason=shared-clone` (it killed a clone
//!   that would share the caller's descriptor table or memory with a new process);
//! - `path=`: the configured path of the file rule that matched (bytes outside
//!   printable ASCII, and spaces, as `\xNN`);
//! - `rule=`: the config line of the matching rule (for a reason, the config line it
//!   comes from; `reason=unreadable` and `shared-clone`: the class's first rule).
//!
//! ```text
//! denied class=open op=open tier=lsm pid=123 uid=0 comm=cat dev=8:1 ino=1234 path=/etc/shadow rule=12
//! denied class=exec op=mmap tier=kprobe signal=KILL pid=9 uid=0 comm=ld-linux dev=0:44 ino=77 path=/opt/tool rule=3
//! audited class=connect op=send tier=fmodret pid=7 uid=1000 comm=dig addr=10.1.2.3 port=53 rule=14
//! ```

use core::fmt;
use core::mem::offset_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::abi::{self, COMM_LEN};
use crate::config;
use crate::ladder::{Class, Hook, Tier};

/// What was done about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The operation failed with EPERM, or the offender was signalled.
    Denied,
    /// Allowed and logged (audit mode).
    Audited,
    /// A rule followed a rename onto the incoming inode.
    Followed,
    /// A denied file lost a name (unlink, rename away): the agent re-resolves the
    /// rule's path, and watches it until a new file takes it.
    Unlinked,
}

impl Action {
    /// The name in the event line.
    pub fn name(self) -> &'static str {
        match self {
            Action::Denied => "denied",
            Action::Audited => "audited",
            Action::Followed => "followed",
            Action::Unlinked => "unlinked",
        }
    }
}

/// Why an exec-class operation was denied (or audited) when no rule names the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A deny rule matched.
    Rule,
    /// allow_exec_from: the file is on no allowed filesystem.
    Untrusted,
    /// allow_anon_exec = no: anonymous or written memory made executable.
    Anon,
    /// A signal tier could not read the path or destination from the caller's memory
    /// while the policy has rules of the class: the caller is signalled.
    Unreadable,
    /// A signal tier killed a clone that would make a new process share the caller's
    /// descriptor table (class open) or memory (class exec), or the parent of a vfork
    /// child killed for a mapping in their memory.
    Shared,
}

impl Reason {
    /// The name in the event line (`reason=`), None for a rule.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Reason::Rule => None,
            Reason::Untrusted => Some("untrusted-fs"),
            Reason::Anon => Some("anon-exec"),
            Reason::Unreadable => Some("unreadable"),
            Reason::Shared => Some("shared-clone"),
        }
    }
}

/// The file or destination the event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// Open and exec: the inode.
    File {
        /// The kernel's `s_dev` encoding, `(major << 20) | minor`.
        dev: u64,
        /// Inode number.
        ino: u64,
    },
    /// Anonymous memory made executable: no file.
    Memory,
    /// The path tier matched a name (the rule's `path=`): it knows no inode.
    Name,
    /// The path or destination could not be read (reason Unreadable), or there is
    /// none (reason Shared).
    Unknown,
    /// Connect: the destination.
    Net {
        /// Destination address (IPv4-mapped IPv6 as IPv4).
        addr: IpAddr,
        /// Destination port.
        port: u16,
    },
}

/// One decoded ring-buffer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// What it is about.
    pub class: Class,
    /// The hook that saw it.
    pub op: Hook,
    /// Why, when no rule names the file.
    pub reason: Reason,
    /// reason Untrusted: the file as the kernel names it; path tier: the new name a
    /// link, symlink or rename of a denied file made (printable ASCII only).
    pub file: heapless::String<{ abi::FILE_LEN }>,
    /// What was done.
    pub action: Action,
    /// Which tier acted.
    pub tier: Tier,
    /// Process id (tgid).
    pub pid: u32,
    /// Real uid.
    pub uid: u32,
    /// Config line of the matching rule, or `abi::RULE_CANARY`.
    pub rule: u32,
    /// Signal sent by the signal tier, 0 for none.
    pub signal: u8,
    /// Task name, printable ASCII only (see the module doc).
    pub comm: heapless::String<COMM_LEN>,
    /// The file or destination.
    pub object: Object,
}

/// Why a record was not decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than `struct enforce_event` (the length is given).
    Short(usize),
    /// Unknown `class`.
    Class(u8),
    /// Unknown `action`.
    Action(u8),
    /// Unknown `tier`.
    Tier(u8),
    /// Unknown `op`.
    Op(u8),
    /// Unknown `reason`.
    Reason(u8),
    /// A connect whose `family` is neither AF_INET nor AF_INET6.
    Family(u16),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Short(len) => write!(f, "record of {len} bytes, expected at least {}", abi::Event::SIZE),
            DecodeError::Class(v) => write!(f, "unknown class {v}"),
            DecodeError::Action(v) => write!(f, "unknown action {v}"),
            DecodeError::Tier(v) => write!(f, "unknown tier {v}"),
            DecodeError::Op(v) => write!(f, "unknown op {v}"),
            DecodeError::Reason(v) => write!(f, "unknown reason {v}"),
            DecodeError::Family(v) => write!(f, "unknown address family {v}"),
        }
    }
}

impl std::error::Error for DecodeError {}

type Raw = abi::Event;

/// The `N` bytes at `off` of a full-size record. Offsets are `offset_of!` constants,
/// always in bounds once the record length was checked.
fn field<const N: usize>(rec: &[u8; Raw::SIZE], off: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&rec[off..off + N]);
    out
}

/// Decodes one ring-buffer record. Longer records are accepted (the ring buffer may
/// pad); shorter ones and unknown enum values are rejected.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let rec: &[u8; Raw::SIZE] =
        bytes.get(..Raw::SIZE).and_then(|b| b.try_into().ok()).ok_or(DecodeError::Short(bytes.len()))?;
    let u8_at = |off: usize| rec[off];
    let u16_at = |off: usize| u16::from_ne_bytes(field(rec, off));
    let u32_at = |off: usize| u32::from_ne_bytes(field(rec, off));
    let u64_at = |off: usize| u64::from_ne_bytes(field(rec, off));

    let class = match u8_at(offset_of!(Raw, class)) {
        abi::CLASS_OPEN => Class::Open,
        abi::CLASS_EXEC => Class::Exec,
        abi::CLASS_CONNECT => Class::Connect,
        v => return Err(DecodeError::Class(v)),
    };
    let action = match u8_at(offset_of!(Raw, action)) {
        abi::ACTION_DENIED => Action::Denied,
        abi::ACTION_AUDITED => Action::Audited,
        abi::ACTION_FOLLOWED => Action::Followed,
        abi::ACTION_UNLINKED => Action::Unlinked,
        v => return Err(DecodeError::Action(v)),
    };
    let tier = u8_at(offset_of!(Raw, tier));
    let tier = Tier::from_abi(tier).ok_or(DecodeError::Tier(tier))?;
    let op = u8_at(offset_of!(Raw, op));
    let op = crate::ladder::HOOKS.into_iter().find(|h| h.op() == op).ok_or(DecodeError::Op(op))?;
    let reason = match u8_at(offset_of!(Raw, reason)) {
        abi::REASON_RULE => Reason::Rule,
        abi::REASON_UNTRUSTED => Reason::Untrusted,
        abi::REASON_ANON => Reason::Anon,
        abi::REASON_UNREADABLE => Reason::Unreadable,
        abi::REASON_SHARED => Reason::Shared,
        v => return Err(DecodeError::Reason(v)),
    };
    let object = match class {
        _ if matches!(reason, Reason::Unreadable | Reason::Shared) => Object::Unknown,
        Class::Open | Class::Exec => {
            Object::File { dev: u64_at(offset_of!(Raw, dev)), ino: u64_at(offset_of!(Raw, ino)) }
        }
        Class::Connect => {
            let raw: [u8; 16] = field(rec, offset_of!(Raw, addr));
            let addr = match u16_at(offset_of!(Raw, family)) {
                abi::AF_INET => IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
                abi::AF_INET6 => {
                    let v6 = Ipv6Addr::from(raw);
                    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
                }
                v => return Err(DecodeError::Family(v)),
            };
            Object::Net { addr, port: u16_at(offset_of!(Raw, port)) }
        }
    };
    let object = match (reason, object) {
        // No file: anonymous memory.
        (Reason::Anon, Object::File { .. }) => Object::Memory,
        (_, Object::File { .. }) if tier == Tier::Path => Object::Name,
        (_, object) => object,
    };
    Ok(Event {
        class,
        op,
        reason,
        file: if reason == Reason::Untrusted || tier == Tier::Path { sanitize(&field::<{ abi::FILE_LEN }>(rec, offset_of!(Raw, file))) } else { heapless::String::new() },
        action,
        tier,
        pid: u32_at(offset_of!(Raw, pid)),
        uid: u32_at(offset_of!(Raw, uid)),
        rule: u32_at(offset_of!(Raw, rule)),
        signal: u8_at(offset_of!(Raw, signal)),
        comm: sanitize(&field(rec, offset_of!(Raw, comm))),
        object,
    })
}

/// A kernel string up to its first NUL, every byte outside printable ASCII (space
/// included, so a field never splits) replaced by `?`.
fn sanitize<const N: usize>(raw: &[u8; N]) -> heapless::String<N> {
    let mut out = heapless::String::new();
    for &b in raw.iter().take_while(|&&b| b != 0) {
        // At most N one-byte chars: always fits.
        let _ = out.push(if b.is_ascii_graphic() { char::from(b) } else { '?' });
    }
    out
}

/// The event line (format in the module doc), with the configured path of the file
/// rule it matched when there is one.
pub struct Line<'a> {
    pub event: &'a Event,
    pub path: Option<&'a str>,
    /// The config line to name when the event carries none (a reason, not a rule:
    /// the allow_exec_from or allow_anon_exec line).
    pub rule: Option<u32>,
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ev = self.event;
        write!(f, "{} class={} op={}", ev.action.name(), ev.class.name(), ev.op.name())?;
        if let Some(reason) = ev.reason.name() {
            write!(f, " reason={reason}")?;
        }
        write!(f, " tier={}", ev.tier.name())?;
        if ev.signal != 0 {
            match config::signal_name(ev.signal) {
                Some(name) => write!(f, " signal={name}")?,
                None => write!(f, " signal={}", ev.signal)?,
            }
        }
        write!(f, " pid={} uid={} comm={}", ev.pid, ev.uid, ev.comm)?;
        match ev.object {
            Object::File { dev, ino } => write!(f, " dev={}:{} ino={ino}", dev >> 20, dev & 0xf_ffff)?,
            Object::Net { addr, port } => write!(f, " addr={addr} port={port}")?,
            Object::Memory | Object::Name | Object::Unknown => {}
        }
        if !ev.file.is_empty() {
            write!(f, " file={}", ev.file)?;
        }
        if let Some(path) = self.path {
            f.write_str(" path=")?;
            write_path(f, path)?;
        }
        write!(f, " rule={}", self.rule.unwrap_or(ev.rule))
    }
}

/// The line for a rule the agent itself moved to a replacement of a denied file (see
/// `follow.rs`): `followed class=CLASS op=follow tier=agent dev=… ino=… path=… rule=N`.
pub struct AgentFollowed<'a> {
    pub class: Class,
    pub key: crate::abi::InodeKey,
    pub path: &'a str,
    pub rule: u32,
}

impl fmt::Display for AgentFollowed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dev = self.key.dev;
        write!(f, "followed class={} op=follow tier=agent dev={}:{} ino={}", self.class.name(), dev >> 20, dev & 0xf_ffff, self.key.ino)?;
        f.write_str(" path=")?;
        write_path(f, self.path)?;
        write!(f, " rule={}", self.rule)
    }
}

/// A configured path as one field: bytes outside printable ASCII, spaces and
/// backslashes as `\xNN`.
fn write_path(f: &mut fmt::Formatter<'_>, path: &str) -> fmt::Result {
    let plain = |b: u8| b.is_ascii_graphic() && b != b'\\';
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // A run of plain bytes (ASCII, so a whole str) in one write; the rest escaped.
        let run = bytes[i..].iter().take_while(|&&b| plain(b)).count();
        if run > 0 {
            f.write_str(&path[i..i + run])?;
            i += run;
        } else {
            write!(f, "\\x{:02x}", bytes[i])?;
            i += 1;
        }
    }
    Ok(())
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Line { event: self, path: None, rule: None }.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comm(name: &[u8]) -> [u8; COMM_LEN] {
        let mut c = [0; COMM_LEN];
        c[..name.len()].copy_from_slice(name);
        c
    }

    fn file_event(class: u8, tier: u8, signal: u8) -> Raw {
        Raw {
            op: if class == abi::CLASS_OPEN { abi::OP_OPEN } else { abi::OP_EXEC },
            dev: (8 << 20) | 1,
            ino: 1234,
            pid: 123,
            uid: 0,
            rule: 12,
            class,
            action: abi::ACTION_DENIED,
            tier,
            signal,
            comm: comm(b"cat"),
            ..Raw::default()
        }
    }

    fn connect_event(family: u16, addr: &[u8]) -> Raw {
        let mut raw = [0; 16];
        raw[..addr.len()].copy_from_slice(addr);
        Raw {
            pid: 7,
            uid: 1000,
            rule: 14,
            class: abi::CLASS_CONNECT,
            op: abi::OP_CONNECT,
            action: abi::ACTION_AUDITED,
            tier: abi::TIER_LSM,
            family,
            port: 443,
            addr: raw,
            comm: comm(b"curl"),
            ..Raw::default()
        }
    }

    fn line(raw: &Raw) -> String {
        decode(&raw.to_bytes()).unwrap().to_string()
    }

    #[test]
    fn open_round_trip() {
        let ev = decode(&file_event(abi::CLASS_OPEN, abi::TIER_LSM, 0).to_bytes()).unwrap();
        assert_eq!(
            ev,
            Event {
                class: Class::Open,
                op: Hook::Open,
                reason: Reason::Rule,
                file: heapless::String::new(),
                action: Action::Denied,
                tier: Tier::Lsm,
                pid: 123,
                uid: 0,
                rule: 12,
                signal: 0,
                comm: heapless::String::try_from("cat").unwrap(),
                object: Object::File { dev: (8 << 20) | 1, ino: 1234 },
            }
        );
        assert_eq!(ev.to_string(), "denied class=open op=open tier=lsm pid=123 uid=0 comm=cat dev=8:1 ino=1234 rule=12");
        let line = Line { event: &ev, path: Some("/etc/shadow"), rule: None }.to_string();
        assert_eq!(line, "denied class=open op=open tier=lsm pid=123 uid=0 comm=cat dev=8:1 ino=1234 path=/etc/shadow rule=12");
        let line = Line { event: &ev, path: Some("/srv/a b\\c\u{e9}"), rule: None }.to_string();
        assert!(line.contains(" path=/srv/a\\x20b\\x5cc\\xc3\\xa9 rule=12"), "{line}");
    }

    #[test]
    fn exec_round_trip() {
        let raw = Raw {
            dev: 44,
            ino: 77,
            pid: 9,
            rule: 3,
            comm: comm(b"sh"),
            ..file_event(abi::CLASS_EXEC, abi::TIER_TRACEPOINT, 9)
        };
        assert_eq!(
            line(&raw),
            "denied class=exec op=exec tier=tracepoint signal=KILL pid=9 uid=0 comm=sh dev=0:44 ino=77 rule=3"
        );
        let raw = Raw { signal: 15, dev: (259 << 20) | 300, ..raw };
        assert_eq!(
            line(&raw),
            "denied class=exec op=exec tier=tracepoint signal=TERM pid=9 uid=0 comm=sh dev=259:300 ino=77 rule=3"
        );
        let raw = Raw { signal: 31, ..raw };
        assert!(line(&raw).contains(" signal=31 "));
        // An audited signal-tier event (pid 1, or audit mode) sends no signal.
        let raw = Raw { signal: 0, action: abi::ACTION_AUDITED, ..raw };
        assert!(line(&raw).starts_with("audited class=exec op=exec tier=tracepoint pid=9 "), "{}", line(&raw));
        let raw = Raw { op: abi::OP_MMAP, tier: abi::TIER_KPROBE, ..raw };
        assert!(line(&raw).starts_with("audited class=exec op=mmap tier=kprobe pid=9 "), "{}", line(&raw));
        let raw = Raw { op: abi::OP_FOLLOW, action: abi::ACTION_FOLLOWED, tier: abi::TIER_FMODRET, ..raw };
        assert!(line(&raw).starts_with("followed class=exec op=follow tier=fmodret pid=9 "), "{}", line(&raw));
        let raw = Raw { action: abi::ACTION_UNLINKED, ..raw };
        assert!(line(&raw).starts_with("unlinked class=exec op=follow tier=fmodret pid=9 "), "{}", line(&raw));
    }

    #[test]
    fn connect_round_trip() {
        let ev = decode(&connect_event(abi::AF_INET, &[10, 1, 2, 3]).to_bytes()).unwrap();
        assert_eq!(ev.object, Object::Net { addr: IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), port: 443 });
        assert_eq!(
            ev.to_string(),
            "audited class=connect op=connect tier=lsm pid=7 uid=1000 comm=curl addr=10.1.2.3 port=443 rule=14"
        );
    }

    #[test]
    fn connect_addresses() {
        let v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert!(line(&connect_event(abi::AF_INET6, &v6)).contains(" addr=2001:db8::1 port=443 "));
        let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1];
        assert!(line(&connect_event(abi::AF_INET6, &mapped)).contains(" addr=192.0.2.1 port=443 "));
        // AF_INET reads only the first four bytes.
        assert!(line(&connect_event(abi::AF_INET, &[1, 2, 3, 4, 5, 6])).contains(" addr=1.2.3.4 "));
        assert_eq!(decode(&connect_event(0, &[]).to_bytes()), Err(DecodeError::Family(0)));
        assert_eq!(decode(&connect_event(1, &[]).to_bytes()), Err(DecodeError::Family(1)));
        // Open and exec ignore the family.
        let raw = Raw { family: 99, ..file_event(abi::CLASS_OPEN, abi::TIER_LSM, 0) };
        assert!(decode(&raw.to_bytes()).is_ok());
    }

    #[test]
    fn record_length() {
        let bytes = file_event(abi::CLASS_OPEN, abi::TIER_LSM, 0).to_bytes();
        assert_eq!(decode(&bytes[..Raw::SIZE - 1]), Err(DecodeError::Short(135)));
        assert_eq!(decode(&[]), Err(DecodeError::Short(0)));
        let mut longer = bytes.to_vec();
        longer.extend_from_slice(&[0xff; 8]);
        assert_eq!(decode(&longer), decode(&bytes));
        assert_eq!(DecodeError::Short(3).to_string(), "record of 3 bytes, expected at least 136");
    }

    #[test]
    fn path_tier_events_name_no_inode() {
        let ev = decode(&file_event(abi::CLASS_OPEN, abi::TIER_PATH, 0).to_bytes()).unwrap();
        assert_eq!((ev.tier, ev.object), (Tier::Path, Object::Name));
        let line = Line { event: &ev, path: Some("/etc/shadow"), rule: None }.to_string();
        assert!(line.contains(" tier=path ") && !line.contains(" dev=") && line.contains(" path=/etc/shadow "), "{line}");
        assert!(!line.contains(" file="), "{line}");
        let mut raw = file_event(abi::CLASS_OPEN, abi::TIER_PATH, 9);
        raw.file[..8].copy_from_slice(b"/tmp/new");
        let ev = decode(&raw.to_bytes()).unwrap();
        let line = Line { event: &ev, path: Some("/etc/shadow"), rule: None }.to_string();
        assert!(line.contains(" file=/tmp/new path=/etc/shadow "), "a new name is reported: {line}");
    }

    #[test]
    fn unknown_enum_values() {
        let base = file_event(abi::CLASS_OPEN, abi::TIER_LSM, 0);
        for class in [0, 4, 255] {
            assert_eq!(decode(&Raw { class, ..base }.to_bytes()), Err(DecodeError::Class(class)));
        }
        for action in [0, 5] {
            assert_eq!(decode(&Raw { action, ..base }.to_bytes()), Err(DecodeError::Action(action)));
        }
        for tier in [0, 6] {
            assert_eq!(decode(&Raw { tier, ..base }.to_bytes()), Err(DecodeError::Tier(tier)));
        }
        for op in [0, 8] {
            assert_eq!(decode(&Raw { op, ..base }.to_bytes()), Err(DecodeError::Op(op)));
        }
        assert_eq!(DecodeError::Class(4).to_string(), "unknown class 4");
    }

    #[test]
    fn comm_is_sanitised() {
        let base = file_event(abi::CLASS_OPEN, abi::TIER_LSM, 0);
        let comm_of = |name: &[u8]| decode(&Raw { comm: comm(name), ..base }.to_bytes()).unwrap().comm;
        assert_eq!(comm_of(b"a b\x1b\xffc\0zz"), "a?b??c");
        assert_eq!(comm_of(b"Web Content"), "Web?Content");
        assert_eq!(comm_of("é=x".as_bytes()), "??=x");
        assert_eq!(comm_of(b""), "");
        assert_eq!(comm_of(b"0123456789abcdef"), "0123456789abcdef", "no NUL: all 16 bytes");
        let ev = decode(&Raw { comm: comm(b"x\ny"), ..base }.to_bytes()).unwrap();
        assert!(ev.to_string().contains(" comm=x?y "));
    }

    #[test]
    fn canary_rule_decodes() {
        let raw = Raw { rule: abi::RULE_CANARY, ..file_event(abi::CLASS_OPEN, abi::TIER_LSM, 0) };
        assert_eq!(decode(&raw.to_bytes()).unwrap().rule, abi::RULE_CANARY);
    }

    #[test]
    fn exec_policy_reasons() {
        let mut file = [0u8; abi::FILE_LEN];
        file[..11].copy_from_slice(b"evil tool\x1b\0");
        let raw = Raw { op: abi::OP_MMAP, reason: abi::REASON_UNTRUSTED, rule: 0, dev: 44, ino: 9, file, ..file_event(abi::CLASS_EXEC, abi::TIER_LSM, 0) };
        let ev = decode(&raw.to_bytes()).unwrap();
        assert_eq!(ev.reason, Reason::Untrusted);
        let line = Line { event: &ev, path: None, rule: Some(7) }.to_string();
        assert_eq!(line, "denied class=exec op=mmap reason=untrusted-fs tier=lsm pid=123 uid=0 comm=cat dev=0:44 ino=9 file=evil?tool? rule=7");
        let raw = Raw { op: abi::OP_MPROTECT, reason: abi::REASON_ANON, file: [b'x'; abi::FILE_LEN], ..raw };
        let ev = decode(&raw.to_bytes()).unwrap();
        assert_eq!(ev.object, Object::Memory);
        assert!(ev.file.is_empty(), "only an untrusted file is named");
        let line = Line { event: &ev, path: None, rule: Some(3) }.to_string();
        assert_eq!(line, "denied class=exec op=mprotect reason=anon-exec tier=lsm pid=123 uid=0 comm=cat rule=3");
        assert_eq!(decode(&Raw { reason: 5, ..raw }.to_bytes()), Err(DecodeError::Reason(5)));
        // Nothing could be read: no object, not even a family.
        let raw = Raw { op: abi::OP_SEND, reason: abi::REASON_UNREADABLE, family: 0, ..file_event(abi::CLASS_CONNECT, abi::TIER_TRACEPOINT, 9) };
        let ev = decode(&raw.to_bytes()).unwrap();
        assert_eq!(ev.object, Object::Unknown);
        let line = Line { event: &ev, path: None, rule: Some(5) }.to_string();
        assert_eq!(line, "denied class=connect op=send reason=unreadable tier=tracepoint signal=KILL pid=123 uid=0 comm=cat rule=5");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small xorshift: deterministic, no dependency.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut decoded = 0;
        for round in 0..20_000 {
            let len = (next() % 200) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if len >= Raw::SIZE {
                // Make valid enum values common enough to reach Display.
                bytes[28] = 1 + (round % 3) as u8;
                bytes[29] = 1 + (round % 2) as u8;
                bytes[30] = 1 + (round / 2 % 4) as u8;
                bytes[68] = 1 + (round / 8 % 7) as u8;
                bytes[69] = (round / 56 % 3) as u8;
                bytes[32..34].copy_from_slice(&[abi::AF_INET, abi::AF_INET6][round % 2].to_ne_bytes());
            }
            if let Ok(ev) = decode(&bytes) {
                let text = ev.to_string();
                assert!(!text.contains('\n') && text.is_ascii(), "{text:?}");
                assert_eq!(text.split(' ').count(), text.split(' ').filter(|w| !w.is_empty()).count());
                decoded += 1;
            }
        }
        assert!(decoded > 1000, "{decoded}");
    }
}
