//! What a `deny_open` / `deny_exec` path names, and whether a rule on it can mean what
//! its author thinks. Rules are fixed to an inode at start (`rules.rs`), so:
//!
//! - a file on a kernel pseudo-filesystem (proc, sysfs, debugfs, tracefs, cgroup, …)
//!   is refused: the kernel makes those inodes per process or per object and drops
//!   them when it goes away (`/proc/self/status` resolves to the agent's own, short-
//!   lived inode), so the rule would not keep meaning the path;
//! - a directory is refused: denying its open breaks every listing of it and covers
//!   none of the files in it;
//! - a socket is refused: sockets are connected to, not opened;
//! - `deny_exec` of anything but a regular file with an execute bit is refused: no one
//!   can exec it, so the rule would deny nothing (`sh script` reads a script, it does
//!   not exec it: that is `deny_open`'s job);
//! - `deny_open` of a device node or a FIFO is accepted and means that node: another
//!   node of the same device (`mknod`, a node recreated on hotplug) is another inode
//!   and is not denied.
//!
//! Then the bricking guard (`guard.rs`) refuses rules on the files the device needs
//! to boot and be repaired, unless `allow_dangerous_rules = yes`.
//!
//! Every refusal names the rule's line: the caller prints `FILE:LINE: reason`.

use core::fmt;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::abi::InodeKey;
use crate::config::Policy;
use crate::guard::{self, Protected};
use crate::rules::{self, Resolved};

/// What kind of file a rule's path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Directory,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    Other,
}

impl Kind {
    fn of(mode: u32) -> Kind {
        match FileType::from_raw_mode(mode as _) {
            FileType::RegularFile => Kind::Regular,
            FileType::Directory => Kind::Directory,
            FileType::CharacterDevice => Kind::CharDevice,
            FileType::BlockDevice => Kind::BlockDevice,
            FileType::Fifo => Kind::Fifo,
            FileType::Socket => Kind::Socket,
            _ => Kind::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Regular => "a regular file",
            Kind::Directory => "a directory",
            Kind::CharDevice => "a character device",
            Kind::BlockDevice => "a block device",
            Kind::Fifo => "a FIFO",
            Kind::Socket => "a socket",
            Kind::Other => "not a file",
        }
    }
}

/// Kernel pseudo-filesystems (statfs `f_type`), by name. Their inodes are made by the
/// kernel for processes and kernel objects and go away with them.
/// mqueue's files are POSIX message queues: `mq_open` reaches them without the open
/// hooks' file being the queue's, so a rule on one would be a promise not kept.
const PSEUDO_FILESYSTEMS: [(u32, &str); 17] = [
    (0x0000_9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0xcafe_4a11, "bpf"),
    (0x6265_6570, "configfs"),
    (0x6165_676c, "pstore"),
    (0xde5e_81e4, "efivarfs"),
    (0x0000_1cd1, "devpts"),
    (0x6e73_6673, "nsfs"),
    (0xf97c_ff8c, "selinuxfs"),
    (0x4341_5d53, "smackfs"),
    (0x4249_4e4d, "binfmt_misc"),
    (0x1980_0202, "mqueue"),
];

/// Whether a filesystem (statfs magic) numbers its inodes in memory, not on disk (FAT,
/// exFAT): an inode the kernel evicts from its cache comes back with another number,
/// which no rule names. The agent holds such a rule's file open (`O_PATH`), which keeps
/// the inode cached and its number the rule's while the agent runs.
pub fn numbers_inodes_in_memory(magic: u32) -> bool {
    const MSDOS: u32 = 0x4d44;
    const EXFAT: u32 = 0x2011_bab0;
    magic == MSDOS || magic == EXFAT
}

/// `O_PATH` holds on the files of the rules that need one (see
/// [`numbers_inodes_in_memory`]); one that cannot be opened again is warned about.
pub fn holds(config: &Path, policy: &Policy, resolved: &[Resolved]) -> Vec<std::os::fd::OwnedFd> {
    let mut out = Vec::new();
    for r in resolved.iter().filter(|r| r.hold) {
        let Some((_, rule)) = rules::path_rules(policy).find(|(_, rule)| rule.line == r.line) else { continue };
        match rustix::fs::open(policy.path(rule), OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => out.push(fd),
            Err(e) => log::warn!("{}: {}: cannot hold it open ({e}): its inode number may change", policy.at(config, r.line), policy.path(rule)),
        }
    }
    out
}

/// The pseudo-filesystem with this statfs magic, if it is one.
pub fn pseudo_filesystem(magic: u32) -> Option<&'static str> {
    PSEUDO_FILESYSTEMS.iter().find(|(m, _)| *m == magic).map(|(_, name)| *name)
}

/// The facts about a rule's path that decide whether the rule is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    /// Permission bits (`st_mode & 0o7777`).
    pub perm: u32,
    /// statfs `f_type` of the filesystem holding it.
    pub fs_magic: u32,
    /// The inode the rule would deny, as the BPF side sees it.
    pub key: InodeKey,
}

/// Resolves `path` once (following symlinks; `O_PATH` neither reads nor blocks, on a
/// FIFO either) and reads its kind, mode, filesystem and inode from that one open.
pub fn target(path: &str) -> Result<Target, Errno> {
    let fd = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
    target_of_fd(&fd)
}

/// The same facts of the file behind `fd`.
pub fn target_of_fd(fd: &impl AsFd) -> Result<Target, Errno> {
    let st = rustix::fs::fstat(fd)?;
    let fs = rustix::fs::fstatfs(fd)?;
    #[allow(clippy::unnecessary_cast)]
    let fs_magic = fs.f_type as u32;
    real(target_of(&st, fs_magic), fd)
}

/// A regular file on overlayfs is named by the real file underneath (see
/// `rules::overlay_real_key`); any other target is what it is.
fn real(mut t: Target, fd: &impl AsFd) -> Result<Target, Errno> {
    if t.fs_magic == rules::OVERLAYFS_MAGIC && t.kind == Kind::Regular {
        t.key = rules::overlay_real_key(fd)?;
    }
    Ok(t)
}

fn target_of(st: &rustix::fs::Stat, fs_magic: u32) -> Target {
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)] // widths differ between architectures
    let (dev, ino, mode) = (u64::from(st.st_dev), u64::from(st.st_ino), st.st_mode as u32);
    Target { kind: Kind::of(mode), perm: mode & 0o7777, fs_magic, key: InodeKey { dev: rules::kernel_dev(dev), ino } }
}

/// [`target`] for many paths: one `stat` per path (it neither opens nor blocks), and
/// the filesystem read once per device, through [`target`] on the first path of that
/// device (every file of a device is on its filesystem). 10,000 rules cost 10,000
/// system calls instead of 40,000.
#[derive(Default)]
pub struct Resolver {
    fs_of_dev: Vec<(u64, u32)>,
}

impl Resolver {
    pub fn target(&mut self, path: &str) -> Result<Target, Errno> {
        let st = rustix::fs::stat(path)?;
        #[allow(clippy::useless_conversion)]
        let dev = u64::from(st.st_dev);
        if let Some(&(_, magic)) = self.fs_of_dev.iter().find(|(d, _)| *d == dev) {
            let t = target_of(&st, magic);
            if magic == rules::OVERLAYFS_MAGIC && t.kind == Kind::Regular {
                return target(path); // through a descriptor, for the real file
            }
            return Ok(t);
        }
        let t = target(path)?;
        #[allow(clippy::useless_conversion)]
        self.fs_of_dev.push((u64::from(rustix::fs::stat(path)?.st_dev), t.fs_magic));
        Ok(t)
    }
}

/// Whether a rule on `t` can mean what it says (see the module doc); the reason if not.
pub fn judge(exec: bool, t: &Target) -> Result<(), String> {
    if let Some(fs) = pseudo_filesystem(t.fs_magic) {
        return Err(format!(
            "on {fs}, a kernel pseudo-filesystem: its files are made by the kernel per process or \
             kernel object and come and go, so a rule fixed to one inode at start would not keep \
             meaning this path"
        ));
    }
    match t.kind {
        Kind::Directory => {
            return Err("a directory: denying its open would break every listing of it and would \
                        not cover the files in it; name the files"
                .into())
        }
        Kind::Socket => return Err("a socket: sockets are connected to, not opened".into()),
        _ => {}
    }
    if exec {
        if t.kind != Kind::Regular {
            return Err(format!("{}: only regular files are executed", t.kind.name()));
        }
        if t.perm & 0o111 == 0 {
            return Err(format!(
                "not executable (mode {:04o}): no one can exec it, so the rule would deny nothing; \
                 to keep it from being read (or run by an interpreter), use deny_open",
                t.perm
            ));
        }
    }
    Ok(())
}

/// A rule refused by [`check`]. Display: `deny_exec /bin/sh: reason`; the caller
/// prefixes `FILE:LINE: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub line: u32,
    pub key: &'static str,
    pub path: String,
    pub reason: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.key, self.path, self.reason)
    }
}

/// Judges every deny_open and deny_exec rule, in config order, with `resolve` (
/// [`Resolver::target`] outside tests) and the bricking guard's `protected` files, and
/// returns them resolved to inodes (for `rules::entries`). The first rule in the file
/// that fails is the error, whether its path does not resolve (the errno, e.g. `No
/// such file or directory`) or it is refused. A rule on a protected file is refused
/// unless the policy sets `allow_dangerous_rules`; then it is reported through `warn`
/// (`FILE:LINE`-less text; the caller adds them) instead.
pub fn check_with(
    policy: &Policy,
    mut resolve: impl FnMut(&str) -> Result<Target, Errno>,
    protected: &[Protected],
    mut warn: impl FnMut(u32, &str),
) -> Result<Vec<Resolved>, Refused> {
    let mut resolved = Vec::with_capacity(policy.open.len() + policy.exec.len());
    for (is_open, rule) in rules::path_rules(policy) {
        let (key, exec) = if is_open { ("deny_open", false) } else { ("deny_exec", true) };
        let path = policy.path(rule);
        let refuse = |reason: String| Refused { line: rule.line, key, path: path.into(), reason };
        let t = resolve(path).map_err(|e| refuse(e.to_string()))?;
        judge(exec, &t).map_err(refuse)?;
        if let Some(p) = protected.iter().find(|p| p.key == t.key) {
            let reason = format!("that is {}: denying it can leave the device unable to boot or be repaired", p.what);
            if !policy.allow_dangerous_rules {
                return Err(refuse(format!("{reason} (set allow_dangerous_rules = yes to allow it)")));
            }
            warn(rule.line, &format!("{key} {path}: {reason}; allowed by allow_dangerous_rules"));
        }
        resolved.push(Resolved { key: t.key, is_open, line: rule.line, hold: numbers_inodes_in_memory(t.fs_magic) });
    }
    Ok(resolved)
}

/// [`check_with`] on this machine: real paths, and the guard's facts read now. Rules
/// allowed by `allow_dangerous_rules` are warned about on stderr as `FILE:LINE: …`,
/// and so are facts the guard could not read, when the config passes.
pub fn check(config: &Path, policy: &Policy) -> Result<Vec<Resolved>, Refused> {
    if policy.open.is_empty() && policy.exec.is_empty() {
        return Ok(Vec::new());
    }
    let started = std::time::Instant::now();
    let facts = guard::Facts::read();
    let mut resolver = Resolver::default();
    let resolved = check_with(policy, |path| resolver.target(path), &facts.protected, |line, text| {
        log::warn!("{}: {text}", policy.at(config, line));
    })?;
    // Only for a config that passed: a refused one says nothing but its error.
    for gap in &facts.gaps {
        log::warn!("bricking guard: {gap}: rules on that file are not checked");
    }
    log::debug!("rules: {} paths resolved and judged in {:?}", resolved.len(), started.elapsed());
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::guard::What;

    fn file(perm: u32) -> Target {
        Target { kind: Kind::Regular, perm, fs_magic: 0xef53, key: InodeKey { dev: 1, ino: 2 } }
    }

    #[test]
    fn kinds_and_modes() {
        let ok = |exec, t: Target| judge(exec, &t);
        assert_eq!(ok(false, file(0o644)), Ok(()));
        assert_eq!(ok(true, file(0o755)), Ok(()));
        assert_eq!(ok(true, file(0o100)), Ok(()), "executable by its owner is executable");
        assert_eq!(ok(true, file(0o4711)), Ok(()));
        let e = ok(true, file(0o644)).unwrap_err();
        assert!(e.starts_with("not executable (mode 0644)") && e.contains("use deny_open"), "{e}");
        assert!(ok(true, file(0o4000)).unwrap_err().contains("mode 4000"));

        let of = |kind| Target { kind, ..file(0o755) };
        for exec in [false, true] {
            assert!(ok(exec, of(Kind::Directory)).unwrap_err().starts_with("a directory:"));
            assert!(ok(exec, of(Kind::Socket)).unwrap_err().starts_with("a socket:"));
        }
        // A device node or a FIFO may be denied opening (that node), never exec.
        for kind in [Kind::CharDevice, Kind::BlockDevice, Kind::Fifo] {
            assert_eq!(ok(false, of(kind)), Ok(()), "{kind:?}");
            let e = ok(true, of(kind)).unwrap_err();
            assert!(e.ends_with("only regular files are executed"), "{kind:?}: {e}");
        }
    }

    #[test]
    fn pseudo_filesystems_are_refused_first() {
        for (magic, name) in [(0x9fa0, "proc"), (0x6265_6572, "sysfs"), (0x6367_7270, "cgroup2"), (0x1cd1, "devpts"), (0x1980_0202, "mqueue")] {
            for kind in [Kind::Regular, Kind::Directory] {
                let t = Target { kind, fs_magic: magic, ..file(0o755) };
                let e = judge(false, &t).unwrap_err();
                assert!(e.starts_with(&format!("on {name}, a kernel pseudo-filesystem")), "{e}");
            }
        }
        // tmpfs (devtmpfs too), ext4, overlayfs, squashfs hold real files.
        for magic in [0x0102_1994, 0xef53, 0x794c_7630, 0x7371_7368] {
            assert_eq!(pseudo_filesystem(magic), None);
            assert_eq!(judge(false, &Target { fs_magic: magic, ..file(0o644) }), Ok(()));
        }
    }

    fn policy(text: &str) -> Box<Policy> {
        config::parse(text).unwrap()
    }

    /// Paths name inodes by their last character's value; `/dir…` is a directory,
    /// `/ro…` not executable, `/x…` does not resolve.
    fn fake(path: &str) -> Result<Target, Errno> {
        let ino = u64::from(*path.as_bytes().last().unwrap());
        let kind = if path.starts_with("/dir") { Kind::Directory } else { Kind::Regular };
        let perm = if path.starts_with("/ro") { 0o644 } else { 0o755 };
        match path.starts_with("/x") {
            true => Err(Errno::NOENT),
            false => Ok(Target { kind, perm, fs_magic: 0xef53, key: InodeKey { dev: 8, ino } }),
        }
    }

    fn protected() -> Vec<Protected> {
        vec![
            Protected { key: InodeKey { dev: 8, ino: u64::from(b'1') }, fsdev: 8, what: What::Pid1Exe },
            Protected { key: InodeKey { dev: 8, ino: u64::from(b'2') }, fsdev: 8, what: What::Shell },
        ]
    }

    fn check_fake(text: &str) -> (Result<(), Refused>, Vec<(u32, String)>) {
        let mut warned = Vec::new();
        let r = check_with(&policy(text), fake, &protected(), |line, t| warned.push((line, t.to_owned())));
        (r.map(drop), warned)
    }

    #[test]
    fn the_first_refused_rule_in_the_file_is_reported() {
        let (r, _) = check_fake("deny_exec = /a\ndeny_open = /b\ndeny_open = /dir\ndeny_exec = /ro-script\n");
        let e = r.unwrap_err();
        assert_eq!((e.line, e.key, e.path.as_str()), (3, "deny_open", "/dir"));
        assert!(e.to_string().starts_with("deny_open /dir: a directory:"), "{e}");

        let (r, _) = check_fake("deny_open = /ro-a\ndeny_exec = /ro-b\n");
        let e = r.unwrap_err();
        assert_eq!((e.line, e.key), (2, "deny_exec"));
        assert!(e.reason.starts_with("not executable (mode 0644)"));

        // A path that does not resolve: its errno, as rules::inode_rules would say it.
        let e = check_fake("deny_open = /a\ndeny_open = /xmissing\ndeny_open = /dir\n").0.unwrap_err();
        assert!(e.to_string().starts_with("deny_open /xmissing: No such file or directory"), "{e}");
        assert_eq!(e.line, 2);
        assert_eq!(check_fake("").0, Ok(()));
    }

    #[test]
    fn accepted_rules_come_back_resolved_in_config_order() {
        let p = policy("deny_exec = /a\ndeny_open = /b\n# c\ndeny_open = /a\n");
        let got = check_with(&p, fake, &protected(), |_, _| {}).unwrap();
        let key = |c: u8| InodeKey { dev: 8, ino: u64::from(c) };
        assert_eq!(
            got,
            [
                Resolved { key: key(b'a'), is_open: false, line: 1, hold: false },
                Resolved { key: key(b'b'), is_open: true, line: 2, hold: false },
                Resolved { key: key(b'a'), is_open: true, line: 4, hold: false },
            ]
        );
    }

    #[test]
    fn protected_files_are_refused_without_the_override() {
        let (r, warned) = check_fake("deny_open = /a\n\ndeny_exec = /bin/init1\n");
        let e = r.unwrap_err();
        assert_eq!((e.line, e.key, e.path.as_str()), (3, "deny_exec", "/bin/init1"));
        assert_eq!(
            e.to_string(),
            "deny_exec /bin/init1: that is PID 1's executable (init): denying it can leave the device \
             unable to boot or be repaired (set allow_dangerous_rules = yes to allow it)"
        );
        assert!(warned.is_empty());
        // deny_open is refused as well: exec opens the file, and so does a reboot.
        let e = check_fake("deny_open = /some/sh2\n").0.unwrap_err();
        assert_eq!((e.line, e.key), (1, "deny_open"));
        assert!(e.reason.starts_with("that is /bin/sh: "), "{e}");
    }

    #[test]
    fn the_override_turns_refusals_into_warnings() {
        let (r, warned) = check_fake("allow_dangerous_rules = yes\ndeny_exec = /bin/init1\ndeny_open = /sh2\ndeny_open = /c\n");
        assert_eq!(r, Ok(()));
        assert_eq!(
            warned,
            [
                (2, "deny_exec /bin/init1: that is PID 1's executable (init): denying it can leave the device unable to boot or be repaired; allowed by allow_dangerous_rules".to_owned()),
                (3, "deny_open /sh2: that is /bin/sh: denying it can leave the device unable to boot or be repaired; allowed by allow_dangerous_rules".to_owned()),
            ]
        );
        // The override does not cover rules that cannot mean anything.
        let (r, _) = check_fake("allow_dangerous_rules = yes\ndeny_open = /dir\n");
        assert_eq!(r.unwrap_err().line, 2);
        assert_eq!(check_fake("allow_dangerous_rules = no\ndeny_open = /sh2\n").0.unwrap_err().line, 2);
    }

    #[test]
    fn real_targets() {
        let dir = std::env::temp_dir().join(format!("enforce-targets.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        std::fs::write(&f, "x").unwrap();
        let t = target(f.to_str().unwrap()).unwrap();
        assert_eq!((t.kind, t.key), (Kind::Regular, rules::inode_key(f.to_str().unwrap()).unwrap()));
        assert_eq!(target(dir.to_str().unwrap()).unwrap().kind, Kind::Directory);
        let fifo = dir.join("fifo");
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        assert_eq!(target(fifo.to_str().unwrap()).unwrap().kind, Kind::Fifo, "O_PATH does not wait for a writer");
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(target("/dev/null").unwrap().kind, Kind::CharDevice);
        let status = target("/proc/self/status").unwrap();
        assert_eq!(pseudo_filesystem(status.fs_magic), Some("proc"));
        assert_eq!(target("/nonexistent/enforce").unwrap_err(), Errno::NOENT);
    }

    #[test]
    fn the_resolver_agrees_with_target() {
        let dir = std::env::temp_dir().join(format!("enforce-resolver.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["a", "b"] {
            std::fs::write(dir.join(name), "x").unwrap();
        }
        let fifo = dir.join("fifo");
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        let mut r = Resolver::default();
        // Twice each: the second time the filesystem comes from the per-device cache.
        for _ in 0..2 {
            for p in ["a", "b", "fifo"].map(|n| dir.join(n)) {
                let p = p.to_str().unwrap();
                assert_eq!(r.target(p), target(p), "{p}");
            }
            for p in ["/proc/self/status", "/proc/1/cmdline", "/dev/null", "/nonexistent/enforce"] {
                assert_eq!(r.target(p).map(|t| (t.kind, t.fs_magic)), target(p).map(|t| (t.kind, t.fs_magic)), "{p}");
            }
        }
        assert_eq!(pseudo_filesystem(r.target("/proc/self/status").unwrap().fs_magic), Some("proc"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
