//! `allow_exec_from`: code may run only from the filesystems the config names. Each
//! line names a mount point; the filesystem mounted there — its superblock, as the
//! kernel's `s_dev` — is what is trusted, so a bind mount of a writable directory
//! under an allowed path stays untrusted (its files keep their own superblock), and a
//! memfd (the kernel's internal tmpfs) is never trusted.
//!
//! Resolved once at start (and reload), from `/proc/self/mountinfo`: a path that is
//! not a mount point, or does not exist, is a config error naming its line. A
//! filesystem mounted read-write, or an overlay (whose upper layer is writable), is
//! allowed with a warning: anyone who can write to it can run code from it.
//!
//! The bricking guard applies here too: when PID 1's executable or a file it runs code
//! from, the agent's own binary, `/bin/sh` or a loader they name lies on none of the
//! allowed filesystems, the policy is refused (unless `allow_dangerous_rules = yes`).

use core::fmt;
use std::path::Path;

use crate::config::Policy;
use crate::guard::Protected;
use crate::rules;

/// An allowed filesystem: its kernel `s_dev`, and the config line that allows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowed {
    pub dev: u64,
    pub line: u32,
}

/// The allowed filesystems of a policy.
/// The allowed filesystems: one per `allow_exec_from` line, and an overlay's layers'.
pub type AllowList = heapless::Vec<Allowed, { 4 * crate::config::MAX_ALLOW_EXEC_FROM }>;

/// Why an `allow_exec_from` line cannot be used. Display: the reason; the caller
/// adds `FILE:LINE: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustError {
    pub line: u32,
    pub reason: String,
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// One line of mountinfo: what is mounted where.
#[derive(Debug, PartialEq, Eq)]
struct Mount {
    dev: u64,
    point: String,
    read_write: bool,
    fstype: String,
}

/// `ID PARENT MAJOR:MINOR ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`
fn parse_mountinfo(text: &str) -> impl Iterator<Item = Mount> + '_ {
    text.lines().filter_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let f: Vec<&str> = left.split(' ').collect();
        let (major, minor) = f.get(2)?.split_once(':')?;
        let dev = (major.parse::<u64>().ok()? << 20) | minor.parse::<u64>().ok()?;
        let read_write = f.get(5)?.split(',').any(|o| o == "rw");
        let fstype = right.split(' ').next()?.to_owned();
        Some(Mount { dev, point: rules::unescape(f.get(4)?), read_write, fstype })
    })
}

/// Resolves every `allow_exec_from` line against `mountinfo`; `canonical` turns a path
/// into the absolute path without links the mount table uses. Warnings go to `warn`.
pub fn resolve(
    policy: &Policy,
    mountinfo: &str,
    canonical: impl Fn(&str) -> std::io::Result<String>,
    mut warn: impl FnMut(u32, String),
) -> Result<AllowList, TrustError> {
    let mounts: Vec<Mount> = parse_mountinfo(mountinfo).collect();
    let mut allowed = AllowList::new();
    for rule in &policy.allow_exec_from {
        let configured = policy.path(rule);
        let error = |reason: String| TrustError { line: rule.line, reason: format!("allow_exec_from {configured}: {reason}") };
        let path = canonical(configured).map_err(|e| error(e.to_string()))?;
        // The last mount on a point is the one on top, the one paths reach.
        let Some(m) = mounts.iter().rev().find(|m| m.point == path) else {
            let under = mounts
                .iter()
                .rev()
                .filter(|m| Path::new(&path).starts_with(&m.point))
                .max_by_key(|m| m.point.len())
                .map_or(String::new(), |m| format!(" (it lies on the filesystem mounted on {})", m.point));
            return Err(error(format!("not a mount point{under}: name the mount point of the filesystem to trust")));
        };
        if m.fstype == "overlay" {
            warn(rule.line, format!("allow_exec_from {configured}: an overlay: files written to its upper layer can run too"));
        } else if m.read_write {
            warn(rule.line, format!("allow_exec_from {configured}: mounted read-write: whoever can write to it can run code from it"));
        }
        let mut allow = |dev: u64| {
            if allowed.iter().any(|a| a.dev == dev) {
                return Ok(());
            }
            allowed.push(Allowed { dev, line: rule.line }).map_err(|_| error("more filesystems than the allow list holds".into()))
        };
        allow(m.dev)?;
        // The programs judge an overlay file by the real file in its layer: the layers'
        // filesystems are trusted with the overlay.
        if m.fstype == "overlay" {
            for layer in rules::overlay_layers(mountinfo, &m.point).map(|(_, layers)| layers).unwrap_or_default() {
                let layer = canonical(&layer).unwrap_or(layer);
                let under = mounts.iter().rev().filter(|u| Path::new(&layer).starts_with(&u.point)).max_by_key(|u| u.point.len());
                if let Some(under) = under {
                    allow(under.dev)?;
                }
            }
        }
    }
    Ok(allowed)
}

/// The bricking guard for the allow list: every protected file must lie on an allowed
/// filesystem. Refuses at the first `allow_exec_from` line, or warns through `warn`
/// when `allow_dangerous_rules = yes`.
pub fn guard(policy: &Policy, allowed: &AllowList, protected: &[Protected], mut warn: impl FnMut(u32, String)) -> Result<(), TrustError> {
    let Some(first) = policy.allow_exec_from.first() else { return Ok(()) };
    for p in protected {
        if allowed.iter().any(|a| a.dev == p.fsdev) {
            continue;
        }
        let dev = p.fsdev;
        let reason = format!(
            "allow_exec_from: {} (on device {}:{}) lies on none of the allowed filesystems: the device could not boot or be repaired",
            p.what,
            dev >> 20,
            dev & 0xf_ffff
        );
        if !policy.allow_dangerous_rules {
            return Err(TrustError { line: first.line, reason: format!("{reason} (set allow_dangerous_rules = yes to allow it)") });
        }
        warn(first.line, format!("{reason}; allowed by allow_dangerous_rules"));
    }
    Ok(())
}

/// [`resolve`] and [`guard`] on this machine, warnings on stderr as `FILE:LINE: …`.
pub fn check(config: &Path, policy: &Policy) -> Result<AllowList, TrustError> {
    if policy.allow_exec_from.is_empty() {
        return Ok(AllowList::new());
    }
    let warn = |line: u32, text: String| log::warn!("{}: {text}", policy.at(config, line));
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| TrustError { line: policy.allow_exec_from[0].line, reason: format!("allow_exec_from: /proc/self/mountinfo: {e}") })?;
    let canonical = |p: &str| std::fs::canonicalize(p).map(|c| c.to_string_lossy().into_owned());
    let allowed = resolve(policy, &mountinfo, canonical, warn)?;
    guard(policy, &allowed, &crate::guard::Facts::read().protected, warn)?;
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::InodeKey;
    use crate::config;
    use crate::guard::What;

    const MOUNTINFO: &str = "\
22 1 254:0 / / ro,relatime shared:1 - squashfs /dev/root ro
23 22 0:21 / /proc rw,nosuid - proc proc rw
24 22 0:44 / /data rw,nodev shared:2 - tmpfs tmpfs rw
25 22 0:45 / /with\\040space ro - tmpfs tmpfs ro
26 24 0:46 / /data rw - tmpfs tmpfs rw
27 22 0:50 / /etc rw - overlay overlay rw,lowerdir=/x,upperdir=/y
28 22 0:44 /sub /opt/bound rw - tmpfs tmpfs rw
";

    fn policy(text: &str) -> Box<Policy> {
        config::parse(text).unwrap()
    }

    fn canonical(p: &str) -> std::io::Result<String> {
        if p.contains("missing") {
            return Err(std::io::Error::from_raw_os_error(2));
        }
        Ok(p.trim_end_matches('/').to_owned().max("/".into()))
    }

    fn run(text: &str) -> (Result<AllowList, TrustError>, Vec<(u32, String)>) {
        let mut warned = Vec::new();
        let r = resolve(&policy(text), MOUNTINFO, canonical, |l, t| warned.push((l, t)));
        (r, warned)
    }

    #[test]
    fn mount_points_resolve_to_their_superblock() {
        let (r, warned) = run("allow_exec_from = /\n\nallow_exec_from = /with space\n");
        assert_eq!(r.unwrap().as_slice(), [Allowed { dev: 254 << 20, line: 1 }, Allowed { dev: 45, line: 3 }]);
        assert!(warned.is_empty(), "{warned:?}");
        // Two mounts on one point: the one on top.
        assert_eq!(run("allow_exec_from = /data\n").0.unwrap()[0].dev, 46);
    }

    #[test]
    fn writable_and_overlay_filesystems_are_warned_about() {
        let (r, warned) = run("allow_exec_from = /data\nallow_exec_from = /etc\n");
        // The overlay's layers (/x, /y) lie on the root filesystem.
        let devs: Vec<u64> = r.unwrap().iter().map(|a| a.dev).collect();
        assert_eq!(devs, [46, 50, 254 << 20]);
        assert_eq!(warned[0].0, 1);
        assert!(warned[0].1.contains("read-write"), "{warned:?}");
        assert!(warned[1].1.contains("overlay"), "{warned:?}");
    }

    /// OpenWrt's root: an overlay of a squashfs (/rom) and a directory of a writable
    /// filesystem (/overlay). The programs see its files as the layers' files.
    #[test]
    fn an_overlay_root_trusts_its_layers_filesystems() {
        let mountinfo = "\
10 1 254:0 / /rom ro - squashfs /dev/root ro
11 1 0:20 / /overlay rw - ubifs ubi0:rootfs_data rw
12 1 0:30 / / rw - overlay overlayfs:/overlay/upper rw,lowerdir=/rom,upperdir=/overlay/upper,workdir=/overlay/work
";
        let r = resolve(&policy("allow_exec_from = /\n"), mountinfo, canonical, |_, _| {}).unwrap();
        assert_eq!(r.as_slice(), [Allowed { dev: 30, line: 1 }, Allowed { dev: 20, line: 1 }, Allowed { dev: 254 << 20, line: 1 }]);
    }

    #[test]
    fn not_a_mount_point_names_the_line_and_the_filesystem() {
        let e = run("mode = audit\nallow_exec_from = /usr/bin\n").0.unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.reason, "allow_exec_from /usr/bin: not a mount point (it lies on the filesystem mounted on /): name the mount point of the filesystem to trust");
        let e = run("allow_exec_from = /missing\n").0.unwrap_err();
        assert!(e.reason.starts_with("allow_exec_from /missing: No such file"), "{e}");
    }

    #[test]
    fn a_bind_mount_is_its_source_filesystem() {
        // /opt/bound is /data's tmpfs bound elsewhere: trusting / does not trust it.
        let list = run("allow_exec_from = /\n").0.unwrap();
        assert!(!list.iter().any(|a| a.dev == 44));
    }

    #[test]
    fn the_guard_wants_every_protected_file_on_an_allowed_filesystem() {
        let p = policy("deny_open = /x\nallow_exec_from = /\n");
        let list = AllowList::from_slice(&[Allowed { dev: 254 << 20, line: 2 }]).unwrap();
        let on = |dev, what| Protected { key: InodeKey { dev, ino: 1 }, fsdev: dev, what };
        assert_eq!(guard(&p, &list, &[on(254 << 20, What::Shell)], |_, _| {}), Ok(()));
        let e = guard(&p, &list, &[on(254 << 20, What::Shell), on(44, What::SelfExe)], |_, _| {}).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("the agent's own binary (on device 0:44) lies on none"), "{e}");
        let dangerous = policy("allow_dangerous_rules = yes\nallow_exec_from = /\n");
        let mut warned = Vec::new();
        assert_eq!(guard(&dangerous, &list, &[on(44, What::SelfExe)], |l, t| warned.push((l, t))), Ok(()));
        assert_eq!(warned.len(), 1);
        // No allow list: nothing to guard.
        assert_eq!(guard(&policy(""), &AllowList::new(), &[on(44, What::SelfExe)], |_, _| {}), Ok(()));
    }

    #[test]
    fn this_machines_root_is_a_mount_point() {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let r = resolve(&policy("allow_exec_from = /\n"), &text, |p| std::fs::canonicalize(p).map(|c| c.to_string_lossy().into_owned()), |_, _| {});
        assert_eq!(r.unwrap().len(), 1);
        assert_eq!(rules::unescape("a\\040b\\134c\\011"), "a b\\c\t");
    }
}
