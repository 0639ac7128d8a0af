//! The config file: flat `key = value` lines → a bounded [`Policy`].
//!
//! Syntax:
//! - one `key = value` per line; blanks (spaces, tabs) around key and value are
//!   ignored, and so are blank lines;
//! - line ends are LF or CRLF; a CR anywhere else is an error (old Mac CR-only files
//!   would otherwise read as one line). A UTF-8 byte-order mark is skipped at the very
//!   start of the file and is an error anywhere else; UTF-16 text is an error that
//!   says so;
//! - `#` starts a comment only as the first non-blank character of a line. There are
//!   no inline comments: a value with a `#` after a blank (`value  # text`) is an
//!   error that says so, since the text would otherwise be read as part of the value.
//!   A `#` not after a blank is part of the value (`deny_open = /srv/a#b` denies
//!   `/srv/a#b`); a file whose path has a blank before a `#` is named through a link;
//! - rule keys (`deny_open`, `deny_exec`, `deny_connect`) repeat; every other key may
//!   appear once;
//! - unknown keys, a line without `=` and an empty value are errors: a typo must not
//!   silently weaken a policy. Values are case-sensitive, except signal names;
//! - a rule identical to an earlier one (same key and path, or same network and port
//!   after normalisation) is an error naming the earlier line: it is most often a
//!   copied line that was meant to be edited, and it keeps one rule id per map entry.
//!
//! Every error carries the line it is about (line 0: the whole file).
//!
//! Drop-in files: after the config file FILE, the files named `*.conf` in the
//! directory beside it named after it with `.d` for its extension
//! (`/etc/enforce.conf`: `/etc/enforce.d/*.conf`) are read in byte order of their
//! names, with the same grammar, as if they followed FILE: a key that may appear once
//! may appear once in the whole set, and a rule may not repeat one of another file.
//! Lines are numbered on through the set (the first line of a drop-in follows the last
//! of the file before it), so a rule's line, which events name as `rule=`, is unique;
//! errors and warnings name the file and its own line ([`Policy::place`]).

use core::fmt;
use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use crate::ladder::{Class, Tier, TIER_COUNT};

/// Largest config file accepted, in bytes: room for every rule class at its capacity
/// with paths of the longest length, and comments.
pub const MAX_CONFIG_BYTES: usize = 8 << 20;
/// Longest path of a deny_open / deny_exec rule, in bytes.
pub const MAX_PATH_LEN: usize = 255;
/// Longest syslog_ident.
pub const MAX_IDENT_LEN: usize = 32;
/// Longest `pin` directory.
pub const MAX_PIN_LEN: usize = 128;
/// Most deny_open rules.
pub const MAX_OPEN_RULES: usize = 10_000;
/// Most deny_exec rules.
pub const MAX_EXEC_RULES: usize = 10_000;
/// Most allow_exec_from lines.
pub const MAX_ALLOW_EXEC_FROM: usize = 32;
/// Most deny_connect rules, both families together.
pub const MAX_CONNECT_RULES: usize = 10_000;
/// Smallest ring buffer (one page on most systems).
pub const MIN_RINGBUF_SIZE: u32 = 4 << 10;
/// Largest ring buffer.
pub const MAX_RINGBUF_SIZE: u32 = 16 << 20;
/// Ring buffer size when the config names none.
pub const DEFAULT_RINGBUF_SIZE: u32 = 256 << 10;
/// syslog_ident when the config names none.
pub const DEFAULT_IDENT: &str = "enforce";
/// Signal of the signal tier when the config names none (SIGKILL).
pub const DEFAULT_SIGNAL: u8 = 9;
/// `coalesce_window` when the config names none, in seconds.
pub const DEFAULT_COALESCE_WINDOW: u32 = 10;
/// Largest `coalesce_window`, in seconds.
pub const MAX_COALESCE_WINDOW: u32 = 3600;
/// `coalesce_burst` when the config names none.
pub const DEFAULT_COALESCE_BURST: u32 = 5;
/// Largest `coalesce_burst`.
pub const MAX_COALESCE_BURST: u32 = 10_000;
/// `log_rate` when the config names none, in event lines per second.
pub const DEFAULT_LOG_RATE: u32 = 100;
/// Largest `log_rate`.
pub const MAX_LOG_RATE: u32 = 100_000;


/// What the agent does on a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Deny.
    Enforce,
    /// Allow and log what would have been denied.
    Audit,
}

/// What `mode = enforce` does when BPF-LSM cannot enforce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// Use the signal tier.
    Signal,
    /// Log only.
    Audit,
    /// Do not start.
    Refuse,
}

/// How syslog lines are framed (`syslog_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyslogFormat {
    /// RFC 3164 (BSD): `<PRI>Mmm dd hh:mm:ss ident[pid]: msg`, local time, no year
    /// and no offset. What busybox syslogd and most daemons expect.
    #[default]
    Rfc3164,
    /// RFC 5424: `<PRI>1 YYYY-MM-DDThh:mm:ss+hh:mm HOST ident pid - - msg`, local time
    /// with its numeric offset.
    Rfc5424,
}

/// A syslog facility (RFC 3164 section 4.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Facility {
    /// kern (0).
    Kern,
    /// user (1).
    User,
    /// mail (2).
    Mail,
    /// daemon (3).
    Daemon,
    /// auth (4).
    Auth,
    /// syslog (5).
    Syslog,
    /// lpr (6).
    Lpr,
    /// news (7).
    News,
    /// uucp (8).
    Uucp,
    /// cron (9).
    Cron,
    /// authpriv (10).
    Authpriv,
    /// ftp (11).
    Ftp,
    /// local0 (16).
    Local0,
    /// local1 (17).
    Local1,
    /// local2 (18).
    Local2,
    /// local3 (19).
    Local3,
    /// local4 (20).
    Local4,
    /// local5 (21).
    Local5,
    /// local6 (22).
    Local6,
    /// local7 (23).
    Local7,
}

impl Facility {
    /// Every facility, for parsing by name.
    const ALL: [Facility; 20] = [
        Self::Kern,
        Self::User,
        Self::Mail,
        Self::Daemon,
        Self::Auth,
        Self::Syslog,
        Self::Lpr,
        Self::News,
        Self::Uucp,
        Self::Cron,
        Self::Authpriv,
        Self::Ftp,
        Self::Local0,
        Self::Local1,
        Self::Local2,
        Self::Local3,
        Self::Local4,
        Self::Local5,
        Self::Local6,
        Self::Local7,
    ];

    /// The RFC 3164 facility number.
    pub fn code(self) -> u8 {
        match self {
            Self::Kern => 0,
            Self::User => 1,
            Self::Mail => 2,
            Self::Daemon => 3,
            Self::Auth => 4,
            Self::Syslog => 5,
            Self::Lpr => 6,
            Self::News => 7,
            Self::Uucp => 8,
            Self::Cron => 9,
            Self::Authpriv => 10,
            Self::Ftp => 11,
            Self::Local0 => 16,
            Self::Local1 => 17,
            Self::Local2 => 18,
            Self::Local3 => 19,
            Self::Local4 => 20,
            Self::Local5 => 21,
            Self::Local6 => 22,
            Self::Local7 => 23,
        }
    }

    /// The name used in the config.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kern => "kern",
            Self::User => "user",
            Self::Mail => "mail",
            Self::Daemon => "daemon",
            Self::Auth => "auth",
            Self::Syslog => "syslog",
            Self::Lpr => "lpr",
            Self::News => "news",
            Self::Uucp => "uucp",
            Self::Cron => "cron",
            Self::Authpriv => "authpriv",
            Self::Ftp => "ftp",
            Self::Local0 => "local0",
            Self::Local1 => "local1",
            Self::Local2 => "local2",
            Self::Local3 => "local3",
            Self::Local4 => "local4",
            Self::Local5 => "local5",
            Self::Local6 => "local6",
            Self::Local7 => "local7",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

// SIGUSR1/SIGUSR2 are the only signals of the list whose numbers differ between Linux
// architectures; the others are the same everywhere.
#[cfg(any(target_arch = "mips", target_arch = "mips64", target_arch = "mips32r6", target_arch = "mips64r6"))]
const SIGUSR: (u8, u8) = (16, 17);
#[cfg(target_arch = "sparc64")]
const SIGUSR: (u8, u8) = (30, 31);
#[cfg(not(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "mips32r6",
    target_arch = "mips64r6",
    target_arch = "sparc64"
)))]
const SIGUSR: (u8, u8) = (10, 12);

/// The signals the signal tier may send: name without SIG, Linux number.
const SIGNALS: [(&str, u8); 8] = [
    ("KILL", 9),
    ("TERM", 15),
    ("INT", 2),
    ("HUP", 1),
    ("QUIT", 3),
    ("USR1", SIGUSR.0),
    ("USR2", SIGUSR.1),
    ("ABRT", 6),
];

/// The name (without SIG) of a signal the config can name, e.g. 9 → "KILL".
pub fn signal_name(num: u8) -> Option<&'static str> {
    SIGNALS.iter().find(|s| s.1 == num).map(|s| s.0)
}

fn signal_from_name(name: &str) -> Option<u8> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS.iter().find(|s| s.0 == bare).map(|s| s.1)
}

/// A deny_open or deny_exec rule. Its path (absolute, at most MAX_PATH_LEN bytes,
/// resolved to an inode at start) is kept in its policy's text of paths:
/// [`Policy::path`]. 12 bytes a rule and the path's own bytes, where a `String` each
/// cost 24 bytes and an allocation: 10,000 rules per class are 700 kB less.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathRule {
    /// Config line: the rule id reported in events.
    pub line: u32,
    start: u32,
    len: u32,
}

/// A network prefix, host bits clear. IPv4-mapped IPv6 prefixes are stored as V4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Net {
    /// IPv4 prefix, `prefix` ≤ 32.
    V4 {
        /// Address bytes in network order.
        addr: [u8; 4],
        /// CIDR prefix length.
        prefix: u8,
    },
    /// IPv6 prefix, `prefix` ≤ 128.
    V6 {
        /// Address bytes in network order.
        addr: [u8; 16],
        /// CIDR prefix length.
        prefix: u8,
    },
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Net::V4 { addr, prefix } => write!(f, "{}/{prefix}", Ipv4Addr::from(addr)),
            Net::V6 { addr, prefix } => write!(f, "{}/{prefix}", Ipv6Addr::from(addr)),
        }
    }
}

/// A deny_connect rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetRule {
    /// Config line: the rule id reported in events.
    pub line: u32,
    /// Destination prefix.
    pub net: Net,
    /// Destination port; None = every port.
    pub port: Option<u16>,
}

/// Prints the rule in config syntax: `10.0.0.0/8:443`, `[fd00::/8]:443`, `fd00::/8`.
impl fmt::Display for NetRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.net, self.port) {
            (net, None) => write!(f, "{net}"),
            (net @ Net::V4 { .. }, Some(port)) => write!(f, "{net}:{port}"),
            (net @ Net::V6 { .. }, Some(port)) => write!(f, "[{net}]:{port}"),
        }
    }
}

/// Everything the config says. The rule lists hold what the file has (at most the
/// MAX_*_RULES capacities), so memory follows the rules actually configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `mode`.
    pub mode: Mode,
    /// `fallback`.
    pub fallback: Fallback,
    /// `signal`, as its Linux number.
    pub signal: u8,
    /// The paths of the `deny_open`, `deny_exec` and `allow_exec_from` lines, one after
    /// the other.
    paths: String,
    /// `deny_open` rules, in config order (so by line: searchable by rule id).
    pub open: Vec<PathRule>,
    /// `deny_exec` rules, in config order.
    pub exec: Vec<PathRule>,
    /// `deny_connect` rules, in config order.
    pub connect: Vec<NetRule>,
    /// `syslog_ident`.
    pub syslog_ident: heapless::String<MAX_IDENT_LEN>,
    /// `syslog_facility`.
    pub syslog_facility: Facility,
    /// `syslog_format`.
    pub syslog_format: SyslogFormat,
    /// `ringbuf_size` in bytes: a power of two in MIN_RINGBUF_SIZE..=MAX_RINGBUF_SIZE.
    pub ringbuf_size: u32,
    /// `tiers`: the rungs of the ladder the gate may use, indexed by `Tier as usize`.
    pub tiers: [bool; TIER_COUNT],
    /// `allow_exec_from`: mount points whose filesystems alone code may run from (an
    /// allow list when not empty), in config order.
    pub allow_exec_from: Vec<PathRule>,
    /// `allow_anon_exec = no`: the line that says so; None (the default): allowed.
    pub allow_anon_exec: Option<u32>,
    /// `allow_dangerous_rules`: rules on the files the device needs to boot and be
    /// repaired (see `guard.rs`) are allowed, with a warning, instead of refused.
    pub allow_dangerous_rules: bool,
    /// `coalesce_window` in seconds; 0: identical events are not coalesced.
    pub coalesce_window: u32,
    /// `coalesce_burst`: identical events logged one by one per window.
    pub coalesce_burst: u32,
    /// `log_rate`: event lines per second at most; 0: no limit.
    pub log_rate: u32,
    /// `pin`: the directory (in a bpf filesystem) where the programs, links and maps
    /// are pinned so enforcement outlives the agent; None: nothing is pinned.
    pub pin: Option<PinDir>,
    /// `btf`: a BTF file describing the running kernel, for kernels built without
    /// BTF (CO-RE relocation of the kprobe and tracepoint tiers); the line and path.
    pub btf: Option<BtfFile>,
    /// The files read, in order, and the number their first line has in the set; empty
    /// for a policy parsed from text.
    pub sources: Vec<Source>,
}

/// A file of the config set and the number its first line has in the set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub first: u32,
}

/// The `btf` file and the line that named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfFile {
    pub line: u32,
    /// Absolute, no control characters, at most MAX_PATH_LEN bytes.
    pub path: String,
}

/// The `pin` directory and the line that named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinDir {
    pub line: u32,
    /// Absolute, at least two components, each of `A-Z a-z 0-9 _ -`.
    pub dir: heapless::String<MAX_PIN_LEN>,
}

impl Policy {
    /// Where line `line` of the set is: the drop-in file it is in (None: the config
    /// file itself) and its number in that file.
    pub fn place(&self, line: u32) -> (Option<&Path>, u32) {
        match self.sources.iter().rposition(|s| s.first <= line) {
            Some(i) if i > 0 && line > 0 => (Some(&self.sources[i].path), line - self.sources[i].first + 1),
            _ => (None, line),
        }
    }

    /// `FILE:LINE` for line `line` of the set whose config file is `config`.
    pub fn at(&self, config: &Path, line: u32) -> String {
        let (file, line) = self.place(line);
        format!("{}:{line}", file.unwrap_or(config).display())
    }

    /// How an error on line `line` names an earlier line `first`: `line N` in the same
    /// file, `FILE:N` in another.
    fn refer(&self, first: u32, line: u32) -> String {
        let source = |l: u32| self.sources.iter().rposition(|s| s.first <= l);
        let (a, b) = (source(first), source(line));
        match a {
            Some(i) if a != b => format!("{}:{}", self.sources[i].path.display(), first - self.sources[i].first + 1),
            _ => format!("line {}", self.place(first).1),
        }
    }

    /// The path of a `deny_open`, `deny_exec` or `allow_exec_from` line of this policy.
    pub fn path(&self, rule: &PathRule) -> &str {
        &self.paths[rule.start as usize..][..rule.len as usize]
    }

    /// The configured path of the file rule of `class` on config line `line` (what
    /// events name as `path=`); None for connect rules.
    pub fn rule_path(&self, class: Class, line: u32) -> Option<&str> {
        let rules = match class {
            Class::Open => &self.open[..],
            Class::Exec => &self.exec[..],
            Class::Connect => return None,
        };
        // In config order, so sorted by line: a binary search, whatever the rule count.
        rules.binary_search_by_key(&line, |r| r.line).ok().map(|i| self.path(&rules[i]))
    }

    /// The config line of the first rule of `class` (what an event about a path or
    /// destination that could not be read names); None when the class has none.
    pub fn first_rule_line(&self, class: Class) -> Option<u32> {
        match class {
            Class::Open => self.open.first().map(|r| r.line),
            Class::Exec => self.exec.first().map(|r| r.line),
            Class::Connect => self.connect.first().map(|r| r.line),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        let mut syslog_ident = heapless::String::new();
        let _ = syslog_ident.push_str(DEFAULT_IDENT); // 7 bytes: always fits
        Policy {
            mode: Mode::Enforce,
            fallback: Fallback::Signal,
            signal: DEFAULT_SIGNAL,
            paths: String::new(),
            open: Vec::new(),
            exec: Vec::new(),
            connect: Vec::new(),
            syslog_ident,
            syslog_facility: Facility::Daemon,
            syslog_format: SyslogFormat::Rfc3164,
            ringbuf_size: DEFAULT_RINGBUF_SIZE,
            tiers: [true; TIER_COUNT],
            allow_exec_from: Vec::new(),
            allow_anon_exec: None,
            allow_dangerous_rules: false,
            coalesce_window: DEFAULT_COALESCE_WINDOW,
            coalesce_burst: DEFAULT_COALESCE_BURST,
            log_rate: DEFAULT_LOG_RATE,
            pin: None,
            btf: None,
            sources: Vec::new(),
        }
    }
}

/// A config error. Display prints only the reason; the caller adds `FILE:LINE: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The drop-in file or directory the error is in; None: the config file itself.
    pub file: Option<PathBuf>,
    /// 1-based line the error is about, in that file; 0 = the whole file.
    pub line: u32,
    /// What is wrong, for a human.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Reads and parses the config file at `path` (at most MAX_CONFIG_BYTES).
///
/// Only a regular file is read. It is opened without blocking (`O_NONBLOCK`), so a
/// FIFO at the path cannot hang `--check-config`, the start or a reload waiting for
/// a writer; what it is is then read from the open file itself (`fstat`), so the
/// check and the read are about the same file. A non-regular path (`/dev/null`, a
/// FIFO) is refused as such before its owner and mode are looked at. Then only root
/// may be able to change it (see [`check_only_root_can_change`]). The drop-in files
/// follow (see the module doc and [`dropins`]); an error names the file it is in.
pub fn load(path: &Path) -> Result<Box<Policy>, ConfigError> {
    let mut set = SetParser::new();
    set.file(path, &read_regular(path)?)?;
    for file in dropins(path)? {
        let bytes = read_regular(&file).map_err(|e| ConfigError { file: Some(file.clone()), ..e })?;
        set.file(&file, &bytes)?;
    }
    let mut policy = set.finish().map_err(|e| set.locate(e))?;
    policy.sources = set.sources;
    Ok(policy)
}

/// The drop-in files of the config file `path` in the order they are read: the
/// `*.conf` files (not hidden ones) in `path` with `.d` for its extension, by the
/// bytes of their names; none when that directory does not exist. The directory is
/// checked as the config file is, and the sticky bit does not excuse it: whoever may
/// add a file to it may add to the policy.
fn dropins(path: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let dir = path.with_extension("d");
    let err = |reason: String| ConfigError { file: Some(dir.clone()), line: 0, reason };
    let st = match rustix::fs::stat(&dir) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(Vec::new()),
        Err(e) => return Err(err(format!("cannot read: {e}"))),
    };
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
        return Err(err("not a directory: drop-in config files go in a directory".into()));
    }
    check_only_root_can_change(&dir, st.st_uid, st.st_mode).map_err(err)?;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| err(format!("cannot read: {e}")))? {
        let name = entry.map_err(|e| err(format!("cannot read: {e}")))?.file_name().into_vec();
        if name.ends_with(b".conf") && !name.starts_with(b".") {
            names.push(name);
        }
    }
    let order = sorted_indices(names.len(), &|a, b| names[a].cmp(&names[b]));
    Ok(order.into_iter().map(|i| dir.join(std::ffi::OsStr::from_bytes(&names[i]))).collect())
}

/// The bytes of the regular file at `path`, at most MAX_CONFIG_BYTES + 1 of them.
fn read_regular(path: &Path) -> Result<Vec<u8>, ConfigError> {
    use rustix::fs::{FileType, Mode, OFlags};
    let whole = |reason: String| ConfigError { file: None, line: 0, reason };
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| whole(format!("cannot read: {e}")))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| whole(format!("cannot read: {e}")))?;
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => None,
        FileType::Directory => Some("a directory"),
        FileType::Fifo => Some("a FIFO (named pipe)"),
        FileType::CharacterDevice => Some("a character device"),
        FileType::BlockDevice => Some("a block device"),
        FileType::Socket => Some("a socket"),
        _ => Some("not a file"),
    };
    if let Some(kind) = kind {
        return Err(whole(format!("not a regular file but {kind}: the config must be a regular file")));
    }
    check_only_root_can_change(path, st.st_uid, st.st_mode).map_err(whole)?;
    let mut bytes = Vec::new();
    // One byte more than allowed tells "exactly the limit" from "too large".
    std::fs::File::from(fd)
        .take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| whole(format!("cannot read: {e}")))?;
    Ok(bytes)
}

/// Why a file (or directory, `dir`) with this owner and mode lets someone other than
/// root change what it holds, or None. A directory writable by others but with the
/// sticky bit (`/tmp`, 1777) is accepted: there, only a file's owner (root) may remove
/// or rename it.
fn changeable_by_others(uid: u32, mode: u32, dir: bool) -> Option<String> {
    if uid != 0 {
        return Some(format!("owned by uid {uid}, not root"));
    }
    let sticky = dir && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        return Some(format!("writable by group or others (mode {:04o})", mode & 0o7777));
    }
    None
}

/// Refuses a config that someone other than root could change, as sshd's StrictModes
/// does: whoever can write the policy can disable it. The file (`uid`, `mode`, from the
/// open file) must be root's and writable by root alone, and so must every directory
/// above it, both along the path as given (whose links could be replaced) and along
/// the path they resolve to, except that a sticky directory is accepted.
fn check_only_root_can_change(path: &Path, uid: u32, mode: u32) -> Result<(), String> {
    const WHY: &str = "only root may be able to change the config";
    if let Some(why) = changeable_by_others(uid, mode, false) {
        return Err(format!("{why}: {WHY}"));
    }
    let given = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| format!("cannot check the directories above it: {e}"))?.join(path)
    };
    let resolved = std::fs::canonicalize(path).map_err(|e| format!("cannot check the directories above it: {e}"))?;
    for dir in given.ancestors().skip(1).chain(resolved.ancestors().skip(1)) {
        let st = rustix::fs::stat(dir).map_err(|e| format!("cannot check directory {}: {e}", dir.display()))?;
        if let Some(why) = changeable_by_others(st.st_uid, st.st_mode, true) {
            return Err(format!("directory {} is {why}: {WHY}", dir.display()));
        }
    }
    Ok(())
}

/// Parses the bytes of a config file: UTF-8 text (see [`parse`]). UTF-16 text, which
/// some editors write, is named as such rather than reported as bad UTF-8.
#[cfg(test)]
pub fn parse_bytes(bytes: &[u8]) -> Result<Box<Policy>, ConfigError> {
    let mut set = SetParser::new();
    set.bytes(bytes)?;
    set.finish()
}

/// Parses config text (see the module doc for the syntax).
///
/// The policy is boxed, so moving it never copies its fixed part around. Its rule
/// lists are trimmed to their length: 10,000 rules cost what they hold, not a capacity.
#[cfg(test)]
pub fn parse(text: &str) -> Result<Box<Policy>, ConfigError> {
    let mut set = SetParser::new();
    set.text(text)?;
    set.finish()
}

/// Parses the files of a config set one after the other into one policy, numbering
/// their lines on through the set. Its errors carry numbers in the set until
/// [`SetParser::locate`] turns them into a file and its own line.
struct SetParser {
    policy: Box<Policy>,
    seen: [u32; Key::COUNT],
    /// The number of the next file's first line.
    next: u32,
    /// The files given to [`SetParser::file`].
    sources: Vec<Source>,
}

impl SetParser {
    fn new() -> SetParser {
        SetParser { policy: Box::default(), seen: [0; Key::COUNT], next: 1, sources: Vec::new() }
    }

    /// Parses the file at `path`, whose bytes are `bytes`; an error names its file.
    fn file(&mut self, path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
        self.sources.push(Source { path: path.to_owned(), first: self.next });
        self.policy.sources.clone_from(&self.sources);
        self.bytes(bytes).map_err(|e| self.locate(e))
    }

    /// The file and line of an error numbered in the set (line 0: the last file).
    fn locate(&self, e: ConfigError) -> ConfigError {
        if e.file.is_some() || self.sources.len() < 2 {
            return e;
        }
        if e.line == 0 {
            let last = self.sources.len() - 1;
            return ConfigError { file: (last > 0).then(|| self.sources[last].path.clone()), ..e };
        }
        let (file, line) = self.policy.place(e.line);
        ConfigError { file: file.map(Path::to_path_buf), line, ..e }
    }

    fn bytes(&mut self, bytes: &[u8]) -> Result<(), ConfigError> {
        if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
            let reason = "UTF-16 text (byte-order mark): save the file as UTF-8".into();
            return Err(ConfigError { file: None, line: self.next, reason });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let newlines = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
            ConfigError { file: None, line: self.line(newlines), reason: "not valid UTF-8".into() }
        })?;
        self.text(text)
    }

    /// The number in the set of the line after `index` earlier lines of this file.
    fn line(&self, index: usize) -> u32 {
        line_number(index).saturating_add(self.next - 1)
    }

    fn text(&mut self, text: &str) -> Result<(), ConfigError> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError { file: None, line: 0, reason: format!("too large: more than {MAX_CONFIG_BYTES} bytes") });
        }
        // Editors on other systems start a UTF-8 file with a byte-order mark: skip one.
        let text = text.strip_prefix(BOM).unwrap_or(text);
        let mut lines = 0;
        for (i, raw) in text.split('\n').enumerate() {
            let line = self.line(i);
            lines = i + 1;
            if let Err(reason) = parse_line(&mut self.policy, &mut self.seen, line, raw) {
                // Repeated rules are found once, by sorting, not by comparing every rule
                // with every earlier one (quadratic at 10,000 rules). Every rule parsed
                // so far lies before a line error, so a repeat among them is the first
                // error in the set.
                return Err(first_repeat(&self.policy).unwrap_or(ConfigError { file: None, line, reason }));
            }
        }
        self.next = self.line(lines);
        Ok(())
    }

    /// The policy, once no rule repeats another.
    fn finish(&mut self) -> Result<Box<Policy>, ConfigError> {
        if let Some(repeat) = first_repeat(&self.policy) {
            return Err(repeat);
        }
        let mut policy = core::mem::take(&mut self.policy);
        policy.paths.shrink_to_fit();
        policy.open.shrink_to_fit();
        policy.exec.shrink_to_fit();
        policy.connect.shrink_to_fit();
        Ok(policy)
    }
}

/// The earliest rule that repeats an earlier one of its list, as the error on its line
/// naming the first. `cmp` orders the rules so that identical ones are adjacent.
fn first_repeat_in<T>(rules: &[T], line: impl Fn(&T) -> u32, cmp: impl Fn(&T, &T) -> core::cmp::Ordering) -> Option<(u32, u32)> {
    // Ties keep config order: the first of each run of identical rules is the original.
    let order = sorted_indices(rules.len(), &|a, b| cmp(&rules[a], &rules[b]).then(a.cmp(&b)));
    let mut first: Option<(u32, u32)> = None;
    let mut run_start = 0;
    for i in 1..order.len() {
        let (prev, this) = (&rules[order[i - 1]], &rules[order[i]]);
        if cmp(prev, this).is_ne() {
            run_start = i;
            continue;
        }
        if i == run_start + 1 {
            // The first repeat of this run; later ones in the run come after it.
            let at = (line(this), line(&rules[order[run_start]]));
            if first.is_none_or(|f| at.0 < f.0) {
                first = Some(at);
            }
        }
    }
    first
}

/// The indices `0..n` ordered by `cmp` (a heapsort). One small function for every
/// sort of rules: the standard library's sorts are fast but each instance of them
/// costs kilobytes of a binary that must stay under 1 MiB.
pub fn sorted_indices(n: usize, cmp: &dyn Fn(usize, usize) -> core::cmp::Ordering) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let sift = |v: &mut [usize], mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && cmp(v[child], v[child + 1]).is_lt() {
            child += 1;
        }
        if cmp(v[root], v[child]).is_ge() {
            break;
        }
        v.swap(root, child);
        root = child;
    };
    for root in (0..n / 2).rev() {
        sift(&mut v, root, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift(&mut v, 0, end);
    }
    v
}

/// The first repeated rule of the policy (see [`first_repeat_in`]).
fn first_repeat(p: &Policy) -> Option<ConfigError> {
    let paths = |a: &PathRule, b: &PathRule| p.path(a).cmp(p.path(b));
    [
        first_repeat_in(&p.open, |r| r.line, paths),
        first_repeat_in(&p.exec, |r| r.line, paths),
        first_repeat_in(&p.connect, |r| r.line, |a, b| (a.net, a.port).cmp(&(b.net, b.port))),
    ]
    .into_iter()
    .flatten()
    .min()
    .map(|(line, first)| ConfigError { file: None, line, reason: format!("duplicate rule: same as {}", p.refer(first, line)) })
}

/// The 1-based number of the line after `index` earlier lines.
fn line_number(index: usize) -> u32 {
    u32::try_from(index).map_or(u32::MAX, |i| i.saturating_add(1))
}

/// The config keys.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Mode,
    Fallback,
    Signal,
    SyslogIdent,
    SyslogFacility,
    SyslogFormat,
    RingbufSize,
    AllowDangerousRules,
    AllowExecFrom,
    AllowAnonExec,
    CoalesceWindow,
    CoalesceBurst,
    LogRate,
    DenyOpen,
    DenyExec,
    DenyConnect,
    Tiers,
    Pin,
    Btf,
}

impl Key {
    const COUNT: usize = Key::Btf as usize + 1; // the last key

    fn from_name(name: &str) -> Option<Key> {
        Some(match name {
            "mode" => Key::Mode,
            "fallback" => Key::Fallback,
            "signal" => Key::Signal,
            "syslog_ident" => Key::SyslogIdent,
            "syslog_facility" => Key::SyslogFacility,
            "syslog_format" => Key::SyslogFormat,
            "ringbuf_size" => Key::RingbufSize,
            "allow_dangerous_rules" => Key::AllowDangerousRules,
            "allow_exec_from" => Key::AllowExecFrom,
            "allow_anon_exec" => Key::AllowAnonExec,
            "coalesce_window" => Key::CoalesceWindow,
            "coalesce_burst" => Key::CoalesceBurst,
            "log_rate" => Key::LogRate,
            "deny_open" => Key::DenyOpen,
            "deny_exec" => Key::DenyExec,
            "deny_connect" => Key::DenyConnect,
            "tiers" => Key::Tiers,
            "pin" => Key::Pin,
            "btf" => Key::Btf,
            _ => return None,
        })
    }

    fn repeats(self) -> bool {
        matches!(self, Key::DenyOpen | Key::DenyExec | Key::DenyConnect | Key::AllowExecFrom)
    }
}

/// `s` quoted for an error message, cut at 64 characters so one bad line cannot
/// flood the log, with control characters escaped.
fn quoted(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// The UTF-8 byte-order mark, accepted only as the first character of the file.
const BOM: char = '\u{feff}';

fn parse_line(p: &mut Policy, seen: &mut [u32; Key::COUNT], line: u32, raw: &str) -> Result<(), String> {
    // A CRLF line end is a line end. Any other CR is an error, comment lines included:
    // a file with old Mac (CR-only) line ends would otherwise be one line, and one
    // starting with a comment would silently be an empty policy.
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    if raw.contains('\r') {
        return Err("carriage return (CR) inside a line: save the file with LF or CRLF line ends".into());
    }
    if raw.contains(BOM) {
        return Err("byte-order mark (U+FEFF) inside the file (only one, at its very start, is allowed)".into());
    }
    let text = raw.trim_ascii();
    if text.is_empty() || text.starts_with('#') {
        return Ok(());
    }
    let Some((name, value)) = text.split_once('=') else {
        return Err(format!("expected key = value, got {}", quoted(text)));
    };
    let (name, value) = (name.trim_ascii(), value.trim_ascii());
    if name.is_empty() {
        return Err("missing key before '='".into());
    }
    let key = Key::from_name(name).ok_or_else(|| format!("unknown key {}", quoted(name)))?;
    if value.is_empty() {
        return Err(format!("empty value for {name}"));
    }
    // A blank then `#`: what `value  # text` leaves after trimming.
    if let Some(at) = value.as_bytes().windows(2).position(|w| matches!(w, [b' ' | b'\t', b'#'])) {
        let comment = &value[at + 1..];
        return Err(format!(
            "inline comments are not allowed: {} after the value of {name}; put the comment on a line of its own",
            quoted(comment)
        ));
    }
    if !key.repeats() {
        let first = &mut seen[key as usize];
        if *first != 0 {
            return Err(format!("duplicate key {name} (first set on {})", p.refer(*first, line)));
        }
        *first = line;
    }
    match key {
        Key::Mode => {
            p.mode = match value {
                "enforce" => Mode::Enforce,
                "audit" => Mode::Audit,
                _ => return Err(format!("mode must be enforce or audit, got {}", quoted(value))),
            }
        }
        Key::Fallback => {
            p.fallback = match value {
                "signal" => Fallback::Signal,
                "audit" => Fallback::Audit,
                "refuse" => Fallback::Refuse,
                _ => return Err(format!("fallback must be signal, audit or refuse, got {}", quoted(value))),
            }
        }
        Key::Signal => {
            p.signal = signal_from_name(value).ok_or_else(|| {
                format!("signal must be one of KILL TERM INT HUP QUIT USR1 USR2 ABRT, got {}", quoted(value))
            })?
        }
        Key::SyslogIdent => p.syslog_ident = parse_ident(value)?,
        Key::SyslogFacility => {
            p.syslog_facility = Facility::from_name(value).ok_or_else(|| {
                format!(
                    "syslog_facility must be one of kern user mail daemon auth syslog lpr news uucp cron \
                     authpriv ftp local0..local7, got {}",
                    quoted(value)
                )
            })?
        }
        Key::SyslogFormat => {
            p.syslog_format = match value {
                "rfc3164" => SyslogFormat::Rfc3164,
                "rfc5424" => SyslogFormat::Rfc5424,
                _ => return Err(format!("syslog_format must be rfc3164 or rfc5424, got {}", quoted(value))),
            }
        }
        Key::RingbufSize => p.ringbuf_size = parse_ringbuf_size(value)?,
        Key::AllowExecFrom => push_path(&mut p.allow_exec_from, &mut p.paths, MAX_ALLOW_EXEC_FROM, name, line, value)?,
        Key::AllowAnonExec => {
            p.allow_anon_exec = match value {
                "yes" => None,
                "no" => Some(line),
                _ => return Err(format!("allow_anon_exec must be yes or no, got {}", quoted(value))),
            }
        }
        Key::AllowDangerousRules => {
            p.allow_dangerous_rules = match value {
                "yes" => true,
                "no" => false,
                _ => return Err(format!("allow_dangerous_rules must be yes or no, got {}", quoted(value))),
            }
        }
        Key::CoalesceWindow => p.coalesce_window = parse_count(name, value, 0, MAX_COALESCE_WINDOW, " (seconds)")?,
        Key::CoalesceBurst => p.coalesce_burst = parse_count(name, value, 1, MAX_COALESCE_BURST, "")?,
        Key::LogRate => p.log_rate = parse_count(name, value, 0, MAX_LOG_RATE, " (lines per second)")?,
        Key::DenyOpen => push_path(&mut p.open, &mut p.paths, MAX_OPEN_RULES, name, line, value)?,
        Key::DenyExec => push_path(&mut p.exec, &mut p.paths, MAX_EXEC_RULES, name, line, value)?,
        Key::DenyConnect => push_net(&mut p.connect, line, value)?,
        Key::Tiers => p.tiers = parse_tiers(value)?,
        Key::Pin => p.pin = Some(PinDir { line, dir: parse_pin(value)? }),
        Key::Btf => p.btf = Some(BtfFile { line, path: parse_btf(value)? }),
    }
    Ok(())
}

/// `btf = /usr/lib/enforce/vmlinux.btf`: an absolute path, shown in errors and
/// `--check` as it is written.
fn parse_btf(value: &str) -> Result<String, String> {
    if !value.starts_with('/') {
        return Err(format!("btf needs an absolute path, got {}", quoted(value)));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!("btf: the path contains a control character (U+{:04X})", u32::from(c)));
    }
    if value.len() > MAX_PATH_LEN {
        return Err(format!("btf: the path is longer than {MAX_PATH_LEN} bytes"));
    }
    Ok(value.to_owned())
}

/// The first bytes of a BTF file libbpf reads: raw BTF (what `pahole
/// --btf_encode_detached` writes and /sys/kernel/btf/vmlinux holds; magic 0xeb9f, in
/// either byte order) or an ELF file with a .BTF section (`pahole -J` on a vmlinux).
pub fn btf_magic_ok(head: &[u8]) -> bool {
    head.starts_with(&[0x9f, 0xeb]) || head.starts_with(&[0xeb, 0x9f]) || head.starts_with(b"\x7fELF")
}

/// Checks the `btf` file: a readable regular file that starts like BTF. The error
/// is about the `btf` line.
pub fn check_btf_file(policy: &Policy) -> Result<(), ConfigError> {
    let Some(rule) = &policy.btf else { return Ok(()) };
    let err = |why: String| ConfigError { file: None, line: rule.line, reason: format!("btf {}: {why}", rule.path) };
    let mut file = std::fs::File::open(rule.path.as_str()).map_err(|e| err(e.to_string()))?;
    let meta = file.metadata().map_err(|e| err(e.to_string()))?;
    if !meta.is_file() {
        return Err(err("not a regular file".into()));
    }
    let mut head = [0u8; 4];
    let n = file.read(&mut head).map_err(|e| err(e.to_string()))?;
    if !btf_magic_ok(&head[..n]) {
        return Err(err("not a BTF file (neither raw BTF, magic 0xeb9f, nor an ELF file; make it with pahole)".into()));
    }
    Ok(())
}

/// `pin = /sys/fs/bpf/enforce`: an absolute directory below the root (the agent
/// creates its last component inside a bpf filesystem), plain names only, so the
/// path means what it says and nothing of it needs quoting; no dots, which a bpf
/// filesystem refuses in names.
fn parse_pin(value: &str) -> Result<heapless::String<MAX_PIN_LEN>, String> {
    let bad = |why: &str| format!("pin must be an absolute directory such as /sys/fs/bpf/enforce ({why}), got {}", quoted(value));
    let Some(rest) = value.strip_prefix('/') else { return Err(bad("not absolute")) };
    let names: Vec<&str> = rest.split('/').collect();
    if names.len() < 2 {
        return Err(bad("it needs a parent directory, in a bpf filesystem"));
    }
    for name in &names {
        if name.is_empty() || *name == "." || *name == ".." {
            return Err(bad("empty, . or .. components"));
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')) {
            return Err(bad("only A-Z a-z 0-9 _ - in names"));
        }
    }
    let mut dir = heapless::String::new();
    dir.push_str(value).map_err(|()| bad(&format!("at most {MAX_PIN_LEN} bytes")))?;
    Ok(dir)
}

/// `tiers = lsm, fmodret, kprobe, tracepoint, path`: names separated by commas and/or
/// blanks, each at most once. The ladder's order is fixed; this only picks its rungs.
fn parse_tiers(value: &str) -> Result<[bool; TIER_COUNT], String> {
    let mut allowed = [false; TIER_COUNT];
    for name in value.split(|c: char| c == ',' || c.is_ascii_whitespace()).filter(|n| !n.is_empty()) {
        let tier = Tier::from_name(name).ok_or_else(|| {
            format!("tiers: unknown tier {} (the tiers are lsm, fmodret, kprobe, tracepoint, path)", quoted(name))
        })?;
        if core::mem::replace(&mut allowed[tier as usize], true) {
            return Err(format!("tiers: {name} is named twice"));
        }
    }
    if !allowed.contains(&true) {
        return Err("tiers: name at least one of lsm, fmodret, kprobe, tracepoint, path".into());
    }
    Ok(allowed)
}

fn parse_ident(value: &str) -> Result<heapless::String<MAX_IDENT_LEN>, String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let mut ident = heapless::String::new();
    if !value.chars().all(valid) || ident.push_str(value).is_err() {
        return Err(format!("syslog_ident must be 1 to {MAX_IDENT_LEN} of A-Z a-z 0-9 _ . -, got {}", quoted(value)));
    }
    Ok(ident)
}

/// A whole number in `min..=max`, plain decimal digits.
fn parse_count(key: &str, value: &str, min: u32, max: u32, unit: &str) -> Result<u32, String> {
    let n = (value.len() <= 9 && value.bytes().all(|b| b.is_ascii_digit())).then(|| value.parse::<u32>().ok()).flatten();
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("{key} must be a whole number from {min} to {max}{unit}, got {}", quoted(value))),
    }
}

fn parse_ringbuf_size(value: &str) -> Result<u32, String> {
    let bad =
        || format!("ringbuf_size must be a power of two from 4K to 16M (bytes, or with K or M), got {}", quoted(value));
    let (digits, unit) = if let Some(d) = value.strip_suffix('K') {
        (d, 1u64 << 10)
    } else if let Some(d) = value.strip_suffix('M') {
        (d, 1u64 << 20)
    } else {
        (value, 1)
    };
    // At most 9 digits: no overflow below, and nothing in range needs more.
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let size = digits.parse::<u64>().map_err(|_| bad())? * unit;
    match u32::try_from(size) {
        Ok(size) if size.is_power_of_two() && (MIN_RINGBUF_SIZE..=MAX_RINGBUF_SIZE).contains(&size) => Ok(size),
        _ => Err(bad()),
    }
}

/// Adds a path rule; repeats are found once the file is read (see [`first_repeat`]).
fn push_path(
    rules: &mut Vec<PathRule>,
    paths: &mut String,
    max: usize,
    key: &str,
    line: u32,
    value: &str,
) -> Result<(), String> {
    if !value.starts_with('/') {
        return Err(format!("{key} needs an absolute path, got {}", quoted(value)));
    }
    if value.contains('\0') {
        return Err(format!("{key}: the path contains a NUL byte"));
    }
    // Error messages and logs show the path: a control character in it would reach a
    // terminal or syslog raw (and is almost surely a mistake in a deny rule).
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!("{key}: the path contains a control character (U+{:04X})", u32::from(c)));
    }
    if value.len() > MAX_PATH_LEN {
        return Err(format!("{key}: the path is longer than {MAX_PATH_LEN} bytes"));
    }
    if rules.len() >= max {
        return Err(format!("too many {key} rules (max {max})"));
    }
    // At most 30,000 paths of at most 255 bytes (and a config of at most 8 MiB): u32.
    rules.push(PathRule { line, start: paths.len() as u32, len: value.len() as u32 });
    paths.push_str(value);
    Ok(())
}

fn push_net(rules: &mut Vec<NetRule>, line: u32, value: &str) -> Result<(), String> {
    let (net, port) = parse_net_rule(value)?;
    if rules.len() >= MAX_CONNECT_RULES {
        return Err(format!("too many deny_connect rules (max {MAX_CONNECT_RULES})"));
    }
    rules.push(NetRule { line, net, port });
    Ok(())
}

/// `CIDR[:port]`: `a.b.c.d[/n][:port]`, `addr6[/n]`, `[addr6[/n]]:port`.
fn parse_net_rule(value: &str) -> Result<(Net, Option<u16>), String> {
    if let Some(rest) = value.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return Err(format!("missing ']' in {}", quoted(value)));
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(parse_port(port)?),
                None => return Err(format!("expected ':port' after ']', got {}", quoted(after))),
            },
        };
        return Ok((parse_cidr(inner)?, port));
    }
    // An IPv6 address has at least two colons; an IPv4 one none, so one colon is a port.
    match value.split_once(':') {
        Some((cidr, port)) if !port.contains(':') => Ok((parse_cidr(cidr)?, Some(parse_port(port)?))),
        _ => Ok((parse_cidr(value)?, None)),
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    if s.is_empty() {
        return Err("missing port after ':'".into());
    }
    if s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad port {}", quoted(s)));
    }
    match s.parse::<u32>() {
        Ok(0) => Err("port 0: leave the port out to match every port".into()),
        Ok(p) => u16::try_from(p).map_err(|_| format!("port {p} is more than 65535")),
        Err(_) => Err(format!("bad port {}", quoted(s))),
    }
}

fn parse_prefix(s: Option<&str>, max: u8) -> Result<u8, String> {
    let Some(s) = s else { return Ok(max) };
    if s.contains(':') {
        return Err("an IPv6 rule with a port needs brackets: [addr/n]:port".into());
    }
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad prefix length {}", quoted(s)));
    }
    match s.parse::<u8>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!("prefix length /{s} is more than {max}")),
    }
}

/// `addr[/n]`; a bare address is a host (/32, /128). Host bits beyond the prefix are
/// an error (a typo must not widen or narrow a rule), and an IPv4-mapped IPv6 prefix
/// of /96 or longer becomes the IPv4 prefix, where the kernel looks mapped addresses up.
fn parse_cidr(s: &str) -> Result<Net, String> {
    let (addr, prefix) = match s.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (s, None),
    };
    if addr.contains(':') {
        let ip: Ipv6Addr = addr.parse().map_err(|_| format!("bad IPv6 address {}", quoted(addr)))?;
        let prefix = parse_prefix(prefix, 128)?;
        let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
        let bits = u128::from(ip);
        if bits & !mask != 0 {
            return Err(format!("host bits set; did you mean {}/{prefix}?", Ipv6Addr::from(bits & mask)));
        }
        match ip.to_ipv4_mapped() {
            Some(v4) if prefix >= 96 => Ok(Net::V4 { addr: v4.octets(), prefix: prefix - 96 }),
            _ => Ok(Net::V6 { addr: ip.octets(), prefix }),
        }
    } else {
        let ip: Ipv4Addr = addr.parse().map_err(|_| format!("bad IPv4 address {}", quoted(addr)))?;
        let prefix = parse_prefix(prefix, 32)?;
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        let bits = u32::from(ip);
        if bits & !mask != 0 {
            return Err(format!("host bits set; did you mean {}/{prefix}?", Ipv4Addr::from(bits & mask)));
        }
        Ok(Net::V4 { addr: ip.octets(), prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error of `text`, as (line, reason).
    fn err(text: &str) -> (u32, String) {
        let e = parse(text).expect_err(text);
        (e.line, e.reason)
    }

    fn assert_err(text: &str, line: u32, needle: &str) {
        let (l, reason) = err(text);
        assert_eq!(l, line, "{text:?}: {reason}");
        assert!(reason.contains(needle), "{text:?}: {reason:?} should contain {needle:?}");
    }

    fn connect(value: &str) -> NetRule {
        let p = parse(&format!("deny_connect = {value}")).unwrap_or_else(|e| panic!("{value}: {e}"));
        p.connect[0]
    }

    #[test]
    fn empty_config_gives_defaults() {
        for text in ["", "\n\n", "# only a comment\n   \n\t# indented comment\n", "\r\n"] {
            let p = parse(text).unwrap();
            assert_eq!(*p, Policy::default());
        }
        let p = Policy::default();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.fallback, Fallback::Signal);
        assert_eq!(p.signal, 9);
        assert_eq!(p.syslog_ident.as_str(), "enforce");
        assert_eq!(p.syslog_facility, Facility::Daemon);
        assert_eq!(p.ringbuf_size, 256 * 1024);
        assert!(p.open.is_empty() && p.exec.is_empty() && p.connect.is_empty());
    }

    #[test]
    fn full_valid_file() {
        let text = "\
# the whole thing
mode = audit
fallback = refuse
signal = sigterm

  deny_open = /etc/shadow
deny_open=/srv/a#b
\tdeny_exec = /usr/bin/nc\t
deny_connect = 10.0.0.0/8
deny_connect = 192.0.2.10/32:443
deny_connect = 192.0.2.11
deny_connect = 192.0.2.12:22
deny_connect = 2001:db8::/32
deny_connect = [2001:db8::/32]:443
deny_connect = [2001:db8::1]:80
deny_connect = ::1
syslog_ident = my-enforce_1.0
syslog_facility = local7
ringbuf_size = 1M
";
        let p = parse(text).unwrap();
        assert_eq!(p.mode, Mode::Audit);
        assert_eq!(p.fallback, Fallback::Refuse);
        assert_eq!(p.signal, 15);
        assert_eq!(p.open.len(), 2);
        assert_eq!((p.open[0].line, p.path(&p.open[0])), (6, "/etc/shadow"));
        assert_eq!((p.open[1].line, p.path(&p.open[1])), (7, "/srv/a#b"), "a # inside a value is kept");
        assert_eq!((p.exec[0].line, p.path(&p.exec[0])), (8, "/usr/bin/nc"));
        let shown: Vec<String> = p.connect.iter().map(|r| format!("{}@{r}", r.line)).collect();
        assert_eq!(
            shown,
            [
                "9@10.0.0.0/8",
                "10@192.0.2.10/32:443",
                "11@192.0.2.11/32",
                "12@192.0.2.12/32:22",
                "13@2001:db8::/32",
                "14@[2001:db8::/32]:443",
                "15@[2001:db8::1/128]:80",
                "16@::1/128",
            ]
        );
        assert_eq!(p.syslog_ident.as_str(), "my-enforce_1.0");
        assert_eq!(p.syslog_facility, Facility::Local7);
        assert_eq!(p.ringbuf_size, 1 << 20);
    }

    #[test]
    fn pin_is_an_absolute_directory_of_plain_names() {
        assert_eq!(Policy::default().pin, None, "nothing is pinned without the key");
        let p = parse("mode = enforce\npin = /sys/fs/bpf/enforce\n").unwrap();
        assert_eq!(p.pin, Some(PinDir { line: 2, dir: heapless::String::try_from("/sys/fs/bpf/enforce").unwrap() }));
        assert_eq!(parse("pin = /run/bpf/enf_1-y\n").unwrap().pin.unwrap().dir.as_str(), "/run/bpf/enf_1-y");
        for (value, why) in [
            ("sys/fs/bpf/enforce", "not absolute"),
            ("/enforce", "needs a parent"),
            ("/", "needs a parent"),
            ("/sys/fs/bpf/", "empty"),
            ("/sys//bpf", "empty"),
            ("/sys/fs/bpf/../etc", ".."),
            ("/sys/fs/bpf/./x", ".."),
            ("/sys/fs/bpf/enforce.d", "only A-Z"),
            ("/sys/fs/bpf/a b", "only A-Z"),
            ("/sys/fs/bpf/\u{e9}", "only A-Z"),
        ] {
            assert_err(&format!("pin = {value}\n"), 1, why);
        }
        assert_err(&format!("pin = /{}/x\n", "a".repeat(MAX_PIN_LEN)), 1, "at most 128 bytes");
        assert_err("pin = /sys/fs/bpf/a\npin = /sys/fs/bpf/b\n", 2, "duplicate key pin");
    }

    #[test]
    fn btf_key() {
        let p = parse("mode = enforce\nbtf = /usr/lib/enforce/vmlinux.btf\n").unwrap();
        let rule = p.btf.as_ref().unwrap();
        assert_eq!((rule.line, rule.path.as_str()), (2, "/usr/lib/enforce/vmlinux.btf"));
        assert_eq!(parse("").unwrap().btf, None);
        assert_err("btf = vmlinux.btf\n", 1, "btf needs an absolute path");
        assert_err("btf = /a\nbtf = /b\n", 2, "duplicate key btf (first set on line 1)");
        assert_err("\nbtf =\n", 2, "empty value for btf");

        // The file itself: missing, not BTF, raw BTF, ELF.
        let dir = std::env::temp_dir().join(format!("enforce-btf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let check = |name: &str, bytes: Option<&[u8]>| {
            let f = dir.join(name);
            if let Some(b) = bytes {
                std::fs::write(&f, b).unwrap();
            }
            let p = parse(&format!("# x\nbtf = {}\n", f.display())).unwrap();
            check_btf_file(&p)
        };
        let e = check("missing", None).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("No such file or directory"), "{e}");
        let e = check("text", Some(b"hello")).unwrap_err();
        assert!(e.reason.contains("not a BTF file"), "{e}");
        assert_eq!(check("raw", Some(&[0x9f, 0xeb, 1, 0])), Ok(()));
        assert_eq!(check("elf", Some(b"\x7fELF\x01")), Ok(()));
        let e = parse(&format!("btf = {}\n", dir.display())).map(|p| check_btf_file(&p)).unwrap().unwrap_err();
        assert!(e.reason.contains("not a regular file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_shipped_config_parses() {
        let text = "\
# enforce: deny.
mode = enforce
fallback = signal
signal = KILL
# IPv6 with a port:
# deny_connect = [2001:db8::/32]:443
syslog_ident = enforce
syslog_facility = daemon
ringbuf_size = 256K
";
        let p = parse(text).unwrap();
        assert_eq!(p.syslog_facility, Facility::Daemon);
        assert_eq!(p.ringbuf_size, 256 << 10);
    }

    #[test]
    fn line_errors_name_their_line() {
        assert_err("mode = enforce\n# c\n\ndeny_opne = /etc/passwd\n", 4, "unknown key \"deny_opne\"");
        assert_err("mode = maybe\n", 1, "mode must be enforce or audit");
        assert_err("mode = Enforce\n", 1, "mode must be");
        assert_err("\nmode\n", 2, "expected key = value");
        assert_err("mode =\n", 1, "empty value for mode");
        assert_err("deny_open =   \n", 1, "empty value");
        assert_err(" = x\n", 1, "missing key");
        assert_err("deny open = /x\n", 1, "unknown key");
        assert_err("Mode = audit\n", 1, "unknown key");
        assert_err("mode = audit # trailing comment\n", 1, "inline comments are not allowed: \"# trailing comment\" after the value of mode");
        assert_err("deny_connect = 10.0.0.0/8\t# tab\n", 1, "inline comments are not allowed: \"# tab\"");
        assert_err("deny_open = /srv/a #b\n", 1, "inline comments are not allowed");
        assert_err("fallback = kill\n", 1, "fallback must be");
        assert_err("signal = STOP\n", 1, "signal must be");
        assert_err("signal = 9\n", 1, "signal must be");
        assert_err("syslog_ident = has space\n", 1, "syslog_ident");
        assert_err("syslog_ident = émoji\n", 1, "syslog_ident");
        assert_err(&format!("syslog_ident = {}\n", "a".repeat(33)), 1, "syslog_ident");
        assert_err("syslog_facility = DAEMON\n", 1, "syslog_facility");
        assert_err("syslog_facility = local8\n", 1, "syslog_facility");
        assert_err("syslog_format = RFC5424\n", 1, "syslog_format must be rfc3164 or rfc5424, got \"RFC5424\"");
        assert_eq!(parse("syslog_format = rfc5424\n").unwrap().syslog_format, SyslogFormat::Rfc5424);
        assert_eq!(parse("syslog_format = rfc3164\n").unwrap().syslog_format, SyslogFormat::Rfc3164);
        assert_eq!(parse("mode = audit\n").unwrap().syslog_format, SyslogFormat::Rfc3164);
        assert_err("deny_open = relative/path\n", 1, "absolute");
        assert_err("deny_exec = ~/bin/x\n", 1, "absolute");
        assert_err("deny_open = /a\0b\n", 1, "NUL");
        assert_err("deny_open = /a\u{f}b\n", 1, "deny_open: the path contains a control character (U+000F)");
        assert_err("deny_exec = /a\u{1b}[31mb\n", 1, "control character (U+001B)");
        assert_err("deny_exec = /a\u{85}b\n", 1, "control character (U+0085)");
        assert_err(&format!("deny_open = /{}\n", "a".repeat(255)), 1, "longer than 255");
    }

    #[test]
    fn allow_dangerous_rules_is_yes_or_no() {
        assert!(!parse("").unwrap().allow_dangerous_rules);
        assert!(parse("allow_dangerous_rules = yes").unwrap().allow_dangerous_rules);
        assert!(!parse("allow_dangerous_rules = no").unwrap().allow_dangerous_rules);
        for bad in ["Yes", "true", "1", "on"] {
            assert_err(&format!("allow_dangerous_rules = {bad}\n"), 1, "allow_dangerous_rules must be yes or no");
        }
        assert_err("allow_dangerous_rules = yes\nallow_dangerous_rules = yes\n", 2, "duplicate key");
    }

    #[test]
    fn coalescing_limits() {
        let p = parse("").unwrap();
        assert_eq!((p.coalesce_window, p.coalesce_burst, p.log_rate), (10, 5, 100));
        let p = parse("coalesce_window = 0\ncoalesce_burst = 1\nlog_rate = 0\n").unwrap();
        assert_eq!((p.coalesce_window, p.coalesce_burst, p.log_rate), (0, 1, 0));
        let p = parse("coalesce_window = 3600\ncoalesce_burst = 10000\nlog_rate = 100000\n").unwrap();
        assert_eq!((p.coalesce_window, p.coalesce_burst, p.log_rate), (3600, 10_000, 100_000));
        assert_err("coalesce_window = 3601\n", 1, "coalesce_window must be a whole number from 0 to 3600 (seconds), got \"3601\"");
        assert_err("coalesce_burst = 0\n", 1, "coalesce_burst must be a whole number from 1 to 10000, got \"0\"");
        assert_err("log_rate = 100001\n", 1, "log_rate must be a whole number from 0 to 100000 (lines per second)");
        for bad in ["-1", "+5", "1.5", "10s", "0x10", "99999999999999999999", "ten"] {
            assert_err(&format!("coalesce_window = {bad}\n"), 1, "coalesce_window must be a whole number");
            assert_err(&format!("log_rate = {bad}\n"), 1, "log_rate must be a whole number");
        }
        assert_err("log_rate = 1\nlog_rate = 2\n", 2, "duplicate key log_rate");
    }

    #[test]
    fn syslog_ident_bounds() {
        let max = "a".repeat(32);
        assert_eq!(parse(&format!("syslog_ident = {max}")).unwrap().syslog_ident.as_str(), max);
        assert_eq!(parse("syslog_ident = x").unwrap().syslog_ident.as_str(), "x");
    }

    #[test]
    fn longest_path_fits() {
        let path = format!("/{}", "a".repeat(254));
        let p = parse(&format!("deny_open = {path}")).unwrap();
        assert_eq!(p.path(&p.open[0]), path);
    }

    #[test]
    fn signal_names() {
        for (name, num) in [
            ("KILL", 9),
            ("kill", 9),
            ("SIGKILL", 9),
            ("sigTerm", 15),
            ("INT", 2),
            ("HUP", 1),
            ("QUIT", 3),
            ("ABRT", 6),
        ] {
            assert_eq!(parse(&format!("signal = {name}")).unwrap().signal, num, "{name}");
        }
        assert_eq!(parse("signal = USR1").unwrap().signal, SIGUSR.0);
        assert_eq!(parse("signal = SIGUSR2").unwrap().signal, SIGUSR.1);
        assert_eq!(signal_name(9), Some("KILL"));
        assert_eq!(signal_name(15), Some("TERM"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(200), None);
        assert_err("signal = SIG\n", 1, "signal must be");
        assert_err("signal = SIGSIGKILL\n", 1, "signal must be");
    }

    #[test]
    fn facilities() {
        for f in Facility::ALL {
            let p = parse(&format!("syslog_facility = {}", f.name())).unwrap();
            assert_eq!(p.syslog_facility, f);
        }
        assert_eq!(Facility::Kern.code(), 0);
        assert_eq!(Facility::Daemon.code(), 3);
        assert_eq!(Facility::Authpriv.code(), 10);
        assert_eq!(Facility::Ftp.code(), 11);
        assert_eq!(Facility::Local0.code(), 16);
        assert_eq!(Facility::Local7.code(), 23);
    }

    #[test]
    fn duplicate_scalar_key_names_the_first_line() {
        assert_err("mode = audit\n\nmode = audit\n", 3, "duplicate key mode (first set on line 1)");
        assert_err("# x\nringbuf_size = 4K\nringbuf_size = 8K\n", 3, "first set on line 2");
        assert_err("syslog_ident = a\nsyslog_ident = b\n", 2, "duplicate key syslog_ident");
    }

    #[test]
    fn duplicate_rules_are_errors() {
        assert_err("deny_open = /x\ndeny_open = /x\n", 2, "same as line 1");
        assert_err("deny_exec = /x\n\ndeny_exec =  /x \n", 3, "same as line 1");
        assert_err("deny_connect = 10.0.0.0/8\ndeny_connect = 10.0.0.0/8\n", 2, "same as line 1");
        // The same network once mapped is the same rule.
        assert_err("deny_connect = 1.2.3.4\ndeny_connect = ::ffff:1.2.3.4\n", 2, "same as line 1");
        // The same file for open and exec, or another port, is another rule.
        let p =
            parse("deny_open = /x\ndeny_exec = /x\ndeny_connect = 10.0.0.0/8\ndeny_connect = 10.0.0.0/8:1\n").unwrap();
        assert_eq!((p.open.len(), p.exec.len(), p.connect.len()), (1, 1, 2));
    }

    #[test]
    fn the_first_repeat_in_the_file_is_the_error() {
        // Across classes and runs, the earliest repeated line wins, naming the first of its run.
        let text = "deny_open = /b\ndeny_open = /a\ndeny_exec = /a\ndeny_connect = ::1\ndeny_open = /a\n\
                    deny_connect = ::1\ndeny_open = /b\ndeny_open = /a\n";
        assert_err(text, 5, "duplicate rule: same as line 2");
        assert_err("deny_connect = ::1\ndeny_connect = 10.0.0.0/8\ndeny_connect = ::1/128\n", 3, "same as line 1");
        // A repeat before a line error is reported first; a line error before a repeat is.
        assert_err("deny_open = /a\ndeny_open = /a\nmode = maybe\n", 2, "same as line 1");
        assert_err("deny_open = /a\nmode = maybe\ndeny_open = /a\n", 2, "mode must be");
        // Many rules, one repeat at the end: found, without comparing every pair.
        let mut text: String = (0..MAX_OPEN_RULES - 1).map(|i| format!("deny_open = /r/{i}\n")).collect();
        text.push_str("deny_open = /r/17\n");
        assert_err(&text, MAX_OPEN_RULES as u32, "same as line 18");
    }

    #[test]
    fn sorted_indices_sorts() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for n in [0, 1, 2, 3, 10, 1000] {
            let v: Vec<u64> = (0..n).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x % 50 }).collect();
            let order = sorted_indices(n, &|a, b| v[a].cmp(&v[b]).then(a.cmp(&b)));
            let mut expected: Vec<usize> = (0..n).collect();
            expected.sort_by_key(|&i| (v[i], i));
            assert_eq!(order, expected, "n={n}");
        }
    }

    #[test]
    fn rule_paths_are_found_by_line() {
        let mut text = String::from("# rules\n");
        for i in 0..1000 {
            text.push_str(&format!("deny_open = /o/{i}\ndeny_exec = /e/{i}\n"));
        }
        let p = parse(&text).unwrap();
        assert_eq!(p.rule_path(Class::Open, 2), Some("/o/0"));
        assert_eq!(p.rule_path(Class::Exec, 3), Some("/e/0"));
        assert_eq!(p.rule_path(Class::Open, 2 + 2 * 999), Some("/o/999"));
        assert_eq!(p.rule_path(Class::Exec, 3 + 2 * 999), Some("/e/999"));
        assert_eq!(p.rule_path(Class::Open, 3), None, "line 3 is an exec rule");
        assert_eq!(p.rule_path(Class::Open, 1), None);
        assert_eq!(p.rule_path(Class::Connect, 2), None);
        assert_eq!(p.open.capacity(), p.open.len(), "trimmed to what it holds");
    }

    #[test]
    fn ringbuf_sizes() {
        for (value, size) in
            [("4096", 4096), ("4K", 4096), ("8K", 8192), ("256K", 256 << 10), ("16M", 16 << 20), ("16777216", 16 << 20)]
        {
            assert_eq!(parse(&format!("ringbuf_size = {value}")).unwrap().ringbuf_size, size, "{value}");
        }
        for value in [
            "2K",
            "32M",
            "5000",
            "3K",
            "0",
            "K",
            "4k",
            "4 K",
            "-4K",
            "+4K",
            "4KB",
            "1G",
            "99999999999999999999M",
            "0x1000",
        ] {
            assert_err(&format!("ringbuf_size = {value}"), 1, "ringbuf_size must be");
        }
    }

    #[test]
    fn capacity_overflow_fails_on_the_overflowing_line() {
        let mut text = String::from("# header\n");
        for i in 0..MAX_OPEN_RULES {
            text.push_str(&format!("deny_open = /f{i}\n"));
        }
        assert_eq!(parse(&text).unwrap().open.len(), MAX_OPEN_RULES);
        text.push_str("deny_open = /one-too-many\n");
        assert_err(&text, MAX_OPEN_RULES as u32 + 2, "too many deny_open rules (max 10000)");

        let mut text = String::new();
        for i in 0..=MAX_EXEC_RULES {
            text.push_str(&format!("deny_exec = /f{i}\n"));
        }
        assert_err(&text, MAX_EXEC_RULES as u32 + 1, "too many deny_exec rules (max 10000)");

        let mut text = String::new();
        for i in 0..MAX_CONNECT_RULES / 2 {
            text.push_str(&format!("deny_connect = 10.{}.{}.0/24\ndeny_connect = fd00:{i:x}::/32\n", i / 256, i % 256));
        }
        assert_eq!(parse(&text).unwrap().connect.len(), MAX_CONNECT_RULES);
        text.push_str("deny_connect = 192.0.2.1\n");
        assert_err(&text, MAX_CONNECT_RULES as u32 + 1, "too many");
    }

    #[test]
    fn too_large_is_a_whole_file_error() {
        let text = "#".repeat(MAX_CONFIG_BYTES + 1);
        assert_err(&text, 0, "too large");
        let text = "#".repeat(MAX_CONFIG_BYTES);
        assert!(parse(&text).is_ok());
    }

    #[test]
    fn connect_forms() {
        assert_eq!(
            connect("10.0.0.0/8"),
            NetRule { line: 1, net: Net::V4 { addr: [10, 0, 0, 0], prefix: 8 }, port: None }
        );
        assert_eq!(connect("10.0.0.0/8:443").port, Some(443));
        assert_eq!(connect("1.2.3.4").net, Net::V4 { addr: [1, 2, 3, 4], prefix: 32 });
        assert_eq!(connect("1.2.3.4:65535").port, Some(65535));
        assert_eq!(connect("0.0.0.0/0").net, Net::V4 { addr: [0; 4], prefix: 0 });
        assert_eq!(connect("::/0").net, Net::V6 { addr: [0; 16], prefix: 0 });
        let mut fd = [0u8; 16];
        fd[0] = 0xfd;
        assert_eq!(connect("fd00::/8").net, Net::V6 { addr: fd, prefix: 8 });
        assert_eq!(
            connect("[fd00::/8]:443"),
            NetRule { line: 1, net: Net::V6 { addr: fd, prefix: 8 }, port: Some(443) }
        );
        assert_eq!(connect("[fd00::]:1").net, Net::V6 { addr: fd, prefix: 128 });
        assert_eq!(connect("[fd00::/8]").port, None);
        assert_eq!(connect("[10.0.0.0/8]:80").net, Net::V4 { addr: [10, 0, 0, 0], prefix: 8 });
    }

    #[test]
    fn connect_display() {
        for s in ["10.0.0.0/8", "10.0.0.0/8:443", "fd00::/8", "[fd00::/8]:443", "0.0.0.0/0", "[::1/128]:22"] {
            assert_eq!(connect(s).to_string(), s);
        }
        assert_eq!(connect("1.2.3.4").to_string(), "1.2.3.4/32");
        assert_eq!(connect("[::1]:22").to_string(), "[::1/128]:22");
    }

    #[test]
    fn mapped_ipv6_becomes_ipv4() {
        assert_eq!(connect("::ffff:10.0.0.0/104").net, Net::V4 { addr: [10, 0, 0, 0], prefix: 8 });
        assert_eq!(connect("::ffff:1.2.3.4").net, Net::V4 { addr: [1, 2, 3, 4], prefix: 32 });
        assert_eq!(connect("[::ffff:1.2.3.4]:443").to_string(), "1.2.3.4/32:443");
        assert_eq!(connect("::ffff:0.0.0.0/96").net, Net::V4 { addr: [0; 4], prefix: 0 });
        // Shorter than /96 the mapped marker itself would be host bits.
        assert_err("deny_connect = ::ffff:0:0/80\n", 1, "host bits set; did you mean ::/80?");
        // Not mapped (IPv4-compatible, deprecated) stays IPv6.
        assert!(matches!(connect("::1.2.3.4").net, Net::V6 { prefix: 128, .. }));
    }

    #[test]
    fn host_bits_are_errors() {
        assert_err("deny_connect = 10.0.0.1/8\n", 1, "host bits set; did you mean 10.0.0.0/8?");
        assert_err("deny_connect = 10.1.0.0/8:80\n", 1, "did you mean 10.0.0.0/8?");
        assert_err("deny_connect = 1.2.3.4/0\n", 1, "did you mean 0.0.0.0/0?");
        assert_err("deny_connect = fd00::1/8\n", 1, "did you mean fd00::/8?");
        assert_err("deny_connect = [2001:db8::1/32]:443\n", 1, "did you mean 2001:db8::/32?");
        assert_err("deny_connect = ::ffff:10.0.0.1/104\n", 1, "host bits set");
    }

    #[test]
    fn bad_connect_values() {
        for (value, needle) in [
            ("10.0.0.0/33", "more than 32"),
            ("::/129", "more than 128"),
            ("10.0.0.0/", "bad prefix length"),
            ("10.0.0.0/+8", "bad prefix length"),
            ("10.0.0.0/-1", "bad prefix length"),
            ("10.0.0.0/0008", "bad prefix length"),
            ("10.0.0.0/8:0", "port 0"),
            ("1.2.3.4:0", "port 0"),
            ("[fd00::/8]:0", "port 0"),
            ("10.0.0.0/8:65536", "more than 65535"),
            ("10.0.0.0/8:99999", "more than 65535"),
            ("10.0.0.0/8:", "missing port"),
            ("10.0.0.0/8:http", "bad port"),
            ("10.0.0.0/8:+80", "bad port"),
            ("10.0.0.0/8:123456", "bad port"),
            ("10.0.0/8", "bad IPv4 address"),
            ("010.0.0.0/8", "bad IPv4 address"),
            ("256.0.0.0/8", "bad IPv4 address"),
            ("localhost", "bad IPv4 address"),
            ("fd00::/8:443", "needs brackets"),
            ("fe80::1%eth0", "bad IPv6 address"),
            ("fd00:::/8", "bad IPv6 address"),
            ("[fd00::/8", "missing ']'"),
            ("[fd00::/8]443", "expected ':port'"),
            ("[fd00::/8]:", "missing port"),
            ("[]:80", "bad IPv4 address"),
            ("/8", "bad IPv4 address"),
        ] {
            assert_err(&format!("deny_connect = {value}\n"), 1, needle);
        }
    }

    #[test]
    fn odd_input_never_panics() {
        let odd = [
            "=",
            "==",
            "= =",
            "#=",
            "mode==enforce",
            "deny_connect = [",
            "deny_connect = ]",
            "deny_connect = [:]",
            "deny_connect = :",
            "deny_connect = ::::",
            "deny_connect = /",
            "deny_connect = 1.2.3.4/8/8",
            "deny_connect = [[::]]:1",
            "deny_connect = ::ffff:1.2.3.4/95",
            "ringbuf_size = M",
            "ringbuf_size = 999999999M",
            "signal = \u{0}",
            "syslog_ident = \u{7f}",
            "\u{feff}mode = audit",
            "mode = audit\r",
            "deny_open = /\u{1b}[31m",
            "deny_connect = 1.2.3.4:1:2",
            "deny_connect = 💥",
            "deny_open = /💥",
        ];
        for text in odd {
            let _ = parse(text);
        }
        // CR line ends are blanks.
        assert_eq!(parse("mode = audit\r\n").unwrap().mode, Mode::Audit);
        // Long garbage is cut in the message.
        let (_, reason) = err(&format!("{} = 1", "k".repeat(1000)));
        assert!(reason.len() < 100, "{reason}");
    }

    #[test]
    fn editor_line_ends_and_byte_order_mark() {
        // What editors write: a UTF-8 byte-order mark at the start, CRLF line ends.
        let p = parse("\u{feff}mode = audit\r\ndeny_connect = 10.0.0.0/8\r\n# done\r\n").unwrap();
        assert_eq!((p.mode, p.connect.len(), p.connect[0].line), (Mode::Audit, 1, 2));
        assert_eq!(*parse("\u{feff}").unwrap(), Policy::default());
        assert_eq!(*parse("\u{feff}# only a comment\r\n").unwrap(), Policy::default());
        // A key right after the mark is the key, on line 1.
        assert_err("\u{feff}mode = maybe\r\n", 1, "mode must be enforce or audit");
        // A mark anywhere else is named, not shown as part of a key.
        assert_err("mode = audit\n\u{feff}deny_connect = 10.0.0.0/8\n", 2, "byte-order mark (U+FEFF)");
        assert_err("\u{feff}\u{feff}mode = audit\n", 1, "byte-order mark (U+FEFF)");
        assert_err("deny_open = /x\u{feff}\n", 1, "byte-order mark (U+FEFF)");
        // A CR that does not end a line (old Mac line ends, or a stray one) is named:
        // otherwise a file of CR-ended lines would be one line, and when that line is
        // a comment the whole policy would silently be empty.
        assert_err("# header\rmode = audit\rdeny_open = /x\r", 1, "carriage return (CR)");
        assert_err("mode = audit\n\ndeny_open = /x\ry\n", 3, "carriage return (CR)");
        assert_err("mode = audit\r\r\n", 1, "carriage return (CR)");
    }

    #[test]
    fn random_token_soup_never_panics() {
        let tokens = [
            "deny_connect",
            "deny_open",
            "mode",
            "ringbuf_size",
            "signal",
            "=",
            " ",
            "\t",
            "\n",
            "#",
            "[",
            "]",
            ":",
            "::",
            "/",
            ".",
            "0",
            "1",
            "8",
            "32",
            "128",
            "255",
            "65535",
            "ffff",
            "fd00",
            "10.0.0.0",
            "K",
            "M",
            "SIG",
            "é",
            "\0",
            "\r",
            "💥",
            "-",
            "+",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(state % 12) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(tokens[(state % tokens.len() as u64) as usize]);
            }
            if let Err(e) = parse(&text) {
                assert!(e.line >= 1 && e.line as usize <= text.split('\n').count(), "{text:?}: {e:?}");
            }
            state = state.wrapping_add(1);
        }
    }

    /// `load` on `path` in another thread: its result, or None when it did not return
    /// within 5 s (the thread is then left blocked; the test fails).
    fn load_within_5s(path: &Path) -> Option<Result<Box<Policy>, ConfigError>> {
        let (tx, rx) = std::sync::mpsc::channel();
        let path = path.to_owned();
        std::thread::spawn(move || {
            let _ = tx.send(load(&path));
        });
        rx.recv_timeout(std::time::Duration::from_secs(5)).ok()
    }

    #[test]
    fn only_regular_files_are_read_and_a_fifo_does_not_block() {
        let dir = std::env::temp_dir().join(format!("enforce-config-fifo.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("enforce.conf");
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o600), 0)
            .unwrap();
        let got = load_within_5s(&fifo);
        std::fs::remove_dir_all(&dir).unwrap();
        let e = got.expect("load of a FIFO blocked (waiting for a writer)").unwrap_err();
        assert_eq!(
            (e.line, e.reason.as_str()),
            (0, "not a regular file but a FIFO (named pipe): the config must be a regular file")
        );

        let e = load_within_5s(Path::new("/dev/null")).expect("load of /dev/null blocked").unwrap_err();
        assert_eq!((e.line, e.reason.as_str()), (0, "not a regular file but a character device: the config must be a regular file"));
    }

    #[test]
    fn only_root_may_change_the_config() {
        assert_eq!(changeable_by_others(0, 0o100644, false), None);
        assert_eq!(changeable_by_others(0, 0o100600, false), None);
        assert_eq!(changeable_by_others(0, 0o100664, false).as_deref(), Some("writable by group or others (mode 0664)"));
        assert_eq!(changeable_by_others(0, 0o100646, false).as_deref(), Some("writable by group or others (mode 0646)"));
        assert_eq!(changeable_by_others(65534, 0o100644, false).as_deref(), Some("owned by uid 65534, not root"));
        assert_eq!(changeable_by_others(0, 0o40755, true), None);
        assert_eq!(changeable_by_others(0, 0o40777, true).as_deref(), Some("writable by group or others (mode 0777)"));
        assert_eq!(changeable_by_others(0, 0o41777, true), None, "sticky, as /tmp");
        assert_eq!(changeable_by_others(0, 0o101666, false).as_deref(), Some("writable by group or others (mode 1666)"), "sticky means nothing on a file");
        assert_eq!(changeable_by_others(1000, 0o41777, true).as_deref(), Some("owned by uid 1000, not root"));

        // Read from files (the unit tests run as root, as the host tests do).
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::scratch::TempDir::new("config-modes");
        let path = dir.0.join("enforce.conf");
        std::fs::write(&path, "mode = audit\n").unwrap();
        assert_eq!(load(&path).unwrap().mode, Mode::Audit);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!((e.line, e.reason.as_str()), (0, "writable by group or others (mode 0666): only root may be able to change the config"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = load(&path).unwrap_err();
        let want = format!("directory {} is writable by group or others (mode 0777): only root may be able to change the config", dir.0.display());
        assert_eq!((e.line, e.reason), (0, want));
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(load(&path).unwrap().mode, Mode::Audit, "a sticky directory");
    }

    #[test]
    fn drop_in_files_follow_in_name_order_and_errors_name_their_file() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        let dir = crate::scratch::TempDir::new("config-dropins");
        let path = dir.0.join("enforce.conf");
        std::fs::write(&path, "mode = audit\ndeny_connect = 10.0.0.1\n").unwrap();
        let d = dir.0.join("enforce.d");
        std::fs::create_dir(&d).unwrap();
        mode(&d, 0o755);
        let (a, b) = (d.join("10-a.conf"), d.join("20-b.conf"));
        std::fs::write(&b, "deny_connect = 10.0.0.3\n").unwrap();
        std::fs::write(&a, "# a\ndeny_connect = 10.0.0.2\n").unwrap();
        std::fs::write(d.join(".hidden.conf"), "bogus\n").unwrap();
        std::fs::write(d.join("notes.txt"), "bogus\n").unwrap();
        std::fs::write(d.join("30-c.conf.off"), "bogus\n").unwrap();
        let p = load(&path).unwrap();
        assert_eq!(p.mode, Mode::Audit);
        // Lines numbered on: main 1-3 (the last is empty), 10-a 4-6, 20-b 7-8.
        let lines: Vec<u32> = p.connect.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 5, 7]);
        let sources: Vec<(&Path, u32)> = p.sources.iter().map(|s| (s.path.as_path(), s.first)).collect();
        assert_eq!(sources, [(path.as_path(), 1), (a.as_path(), 4), (b.as_path(), 7)]);
        assert_eq!(p.place(2), (None, 2));
        assert_eq!(p.place(5), (Some(a.as_path()), 2));
        assert_eq!(p.at(&path, 7), format!("{}:1", b.display()));

        // An error in a drop-in names it and its own line.
        std::fs::write(&b, "\nbogus line\n").unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!((e.file.as_deref(), e.line, e.reason.as_str()), (Some(b.as_path()), 2, "expected key = value, got \"bogus line\""));
        // A key set twice, or a rule repeated, across files: both places named.
        std::fs::write(&b, "mode = enforce\n").unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!((e.file.as_deref(), e.line), (Some(b.as_path()), 1));
        assert_eq!(e.reason, format!("duplicate key mode (first set on {}:1)", path.display()));
        std::fs::write(&b, "\ndeny_connect = 10.0.0.2\n").unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!((e.file.as_deref(), e.line), (Some(b.as_path()), 2));
        assert_eq!(e.reason, format!("duplicate rule: same as {}:2", a.display()));
        std::fs::write(&b, "deny_connect = 10.0.0.3\n").unwrap();
        assert!(load(&path).is_ok());

        // Only root may be able to change the directory or a file in it.
        const WHY: &str = "only root may be able to change the config";
        mode(&b, 0o664);
        let e = load(&path).unwrap_err();
        assert_eq!((e.file.as_deref(), e.line), (Some(b.as_path()), 0));
        assert_eq!(e.reason, format!("writable by group or others (mode 0664): {WHY}"));
        mode(&b, 0o644);
        for m in [0o775, 0o1777] {
            mode(&d, m);
            let e = load(&path).unwrap_err();
            assert_eq!((e.file.as_deref(), e.line), (Some(d.as_path()), 0));
            assert_eq!(e.reason, format!("writable by group or others (mode {m:04o}): {WHY}"), "sticky or not");
        }
        mode(&d, 0o755);
        std::os::unix::fs::chown(&d, Some(65534), None).unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!(e.reason, format!("owned by uid 65534, not root: {WHY}"));
        std::os::unix::fs::chown(&d, Some(0), None).unwrap();
        // A drop-in that is not a regular file, and a directory that is not one.
        std::fs::create_dir(d.join("40-dir.conf")).unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!(e.file, Some(d.join("40-dir.conf")));
        assert!(e.reason.starts_with("not a regular file but a directory"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::write(&d, "x\n").unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!((e.file.as_deref(), e.reason.as_str()), (Some(d.as_path()), "not a directory: drop-in config files go in a directory"));
        std::fs::remove_file(&d).unwrap();
        assert!(load(&path).is_ok(), "no drop-in directory");
    }

    #[test]
    fn load_reads_files() {
        let dir = std::env::temp_dir().join(format!("enforce-config-test.{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("enforce.conf");

        std::fs::write(&path, "mode = audit\ndeny_connect = 10.0.0.0/8\n").unwrap();
        assert_eq!(load(&path).unwrap().mode, Mode::Audit);

        std::fs::write(&path, b"# ok\nmode = audit\n\nsyslog_ident = \xff\n").unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!((e.line, e.reason.as_str()), (4, "not valid UTF-8"));

        std::fs::write(&path, "#".repeat(MAX_CONFIG_BYTES + 1)).unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.reason.contains("too large"), "{e}");

        let e = load(&dir.join("missing.conf")).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.to_string().starts_with("cannot read: "), "{e}");
        assert!(e.to_string().contains("No such file"), "{e}");

        let e = load(&dir).unwrap_err();
        assert_eq!(e.line, 0);
        assert_eq!(e.to_string(), "not a regular file but a directory: the config must be a regular file");

        // Editors' encodings, read from a file.
        std::fs::write(&path, b"\xef\xbb\xbfmode = audit\r\n").unwrap();
        assert_eq!(load(&path).unwrap().mode, Mode::Audit);
        for utf16 in [&b"\xff\xfem\0o\0"[..], b"\xfe\xff\0m\0o"] {
            std::fs::write(&path, utf16).unwrap();
            let e = load(&path).unwrap_err();
            assert_eq!((e.line, e.reason.as_str()), (1, "UTF-16 text (byte-order mark): save the file as UTF-8"));
        }

        std::fs::remove_dir_all(&dir).unwrap();
    }
}
