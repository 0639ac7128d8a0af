//! Policy → kernel map entries: deny_open / deny_exec paths → `deny_inodes` entries
//! (and, for the path tier, `deny_paths` entries), deny_connect rules → `deny_net4` /
//! `deny_net6` LPM keys.

#[cfg(test)]
use core::fmt;

use rustix::io::Errno;

use crate::abi::{self, InodeKey, InodeRule, Net4Key, Net6Key, PathKey};
use crate::config::{sorted_indices, Net, NetRule, PathRule, Policy};
#[cfg(test)]
use crate::config::{MAX_EXEC_RULES, MAX_OPEN_RULES};

/// Most distinct inodes the rules can name.
#[cfg(test)]
pub const MAX_INODE_RULES: usize = MAX_OPEN_RULES + MAX_EXEC_RULES;

/// The entries of the `deny_inodes` map, one per distinct inode, in the order their
/// first rule appears in the config.
pub type InodeEntries = Vec<(InodeKey, InodeRule)>;

/// Converts userspace's `st_dev` (glibc/musl `makedev` encoding) to the kernel's
/// `inode->i_sb->s_dev` encoding, `(major << 20) | minor`, which the BPF side reads.
pub fn kernel_dev(st_dev: u64) -> u64 {
    let major = ((st_dev >> 8) & 0xfff) | ((st_dev >> 32) & !0xfff);
    let minor = (st_dev & 0xff) | ((st_dev >> 12) & !0xff);
    // The kernel's dev_t has 12 major and 20 minor bits; st_dev never holds more.
    ((major & 0xfff) << 20) | (minor & 0xf_ffff)
}

/// The inode `path` names now. Follows symlinks: a symlink in the config denies its target.
/// On btrfs, `stat`'s device is the subvolume's, as the BPF side names the inode
/// (its `inode_dev`): inode numbers restart in every subvolume.
pub fn inode_key(path: &str) -> Result<InodeKey, Errno> {
    Ok(key_of_stat(&rustix::fs::stat(path)?))
}

/// The inode behind an open descriptor.
pub fn inode_key_of(fd: impl std::os::fd::AsFd) -> Result<InodeKey, Errno> {
    Ok(key_of_stat(&rustix::fs::fstat(fd)?))
}

/// The device of the filesystem (its superblock) holding `path`, as `allow_exec_from`
/// names filesystems: `stat`'s, except on btrfs, where `stat` reports the subvolume's,
/// and on overlayfs, where a file is the real file in its layer.
pub fn filesystem_dev(path: &str) -> Result<u64, Errno> {
    use rustix::fs::{Mode, OFlags};
    const BTRFS_MAGIC: u32 = 0x9123_683e;
    let fd = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
    #[allow(clippy::unnecessary_cast)]
    match rustix::fs::fstatfs(&fd)?.f_type as u32 {
        BTRFS_MAGIC => superblock_dev(&fd),
        // The programs judge an overlay file by the real file underneath.
        OVERLAYFS_MAGIC if rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode).is_file() => {
            Ok(overlay_real_key(&fd)?.dev)
        }
        _ => Ok(inode_key_of(&fd)?.dev),
    }
}

/// The superblock's device of the filesystem behind `fd`, in the kernel's encoding:
/// the `MAJOR:MINOR` /proc/self/mountinfo shows for the mount statx names (5.8 on).
fn superblock_dev(fd: impl std::os::fd::AsFd) -> Result<u64, Errno> {
    use rustix::fs::{AtFlags, StatxFlags};
    let stx = rustix::fs::statx(fd, c"", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)?;
    if stx.stx_mask & StatxFlags::MNT_ID.bits() == 0 {
        return Err(Errno::NOSYS);
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(io_errno)?;
    mount_dev(&mountinfo, stx.stx_mnt_id).ok_or(Errno::NOENT)
}

/// The device (kernel encoding) of mount `id` in `mountinfo`.
fn mount_dev(mountinfo: &str, id: u64) -> Option<u64> {
    mountinfo.lines().find_map(|line| {
        let mut fields = line.split(' ');
        if fields.next()?.parse::<u64>().ok()? != id {
            return None;
        }
        let (major, minor) = fields.nth(1)?.split_once(':')?;
        Some((major.parse::<u64>().ok()? & 0xfff) << 20 | (minor.parse::<u64>().ok()? & 0xf_ffff))
    })
}

/// overlayfs's statfs magic.
pub const OVERLAYFS_MAGIC: u32 = 0x794c_7630;

/// The identity of a regular file on overlayfs: the real (upper or lower) file the
/// overlay opens for it, which is the inode the hooks see (`stat` through the overlay
/// reports a device of the overlay's own). Found as overlayfs finds it: the file's
/// path below the mount point, in the upper layer first, then in each lower layer
/// (the mount's options in /proc/self/mountinfo), taking the one with the inode number
/// the overlay reports; layers that are overlays themselves are looked through too.
pub fn overlay_real_key(fd: impl std::os::fd::AsFd) -> Result<InodeKey, Errno> {
    use std::os::fd::AsRawFd;
    let st = rustix::fs::fstat(fd.as_fd())?;
    let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())).map_err(io_errno)?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(io_errno)?;
    let path = path.to_str().ok_or(Errno::INVAL)?;
    real_in_layers(&mountinfo, path, st.st_ino as u64, 0)
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_io_error(&e).unwrap_or(Errno::IO)
}

fn real_in_layers(mountinfo: &str, path: &str, ino: u64, depth: u32) -> Result<InodeKey, Errno> {
    let (mount_point, layers) = overlay_layers(mountinfo, path).ok_or(Errno::NOENT)?;
    let rel = path[mount_point.len()..].trim_start_matches('/');
    let mut first = None;
    for layer in layers {
        let candidate = format!("{}/{rel}", layer.trim_end_matches('/'));
        let Ok(cst) = rustix::fs::lstat(candidate.as_str()) else { continue };
        if rustix::fs::FileType::from_raw_mode(cst.st_mode) != rustix::fs::FileType::RegularFile {
            continue; // a whiteout (a character device) or a directory: not this file
        }
        let is_overlay = rustix::fs::statfs(candidate.as_str()).is_ok_and(|f| f.f_type as u32 == OVERLAYFS_MAGIC);
        let key = if is_overlay && depth < 2 { real_in_layers(mountinfo, &candidate, ino, depth + 1)? } else { key_of_stat(&cst) };
        if cst.st_ino as u64 == ino {
            return Ok(key);
        }
        first.get_or_insert(key);
    }
    // The overlay maps inode numbers (xino): the topmost layer holding the file.
    first.ok_or(Errno::NOENT)
}

/// The overlay mount holding `path` (the longest mount point above it) and its layers,
/// upper first: (mount point, [upperdir, lowerdir...]).
pub fn overlay_layers(mountinfo: &str, path: &str) -> Option<(String, Vec<String>)> {
    let mut best: Option<(String, Vec<String>)> = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let Some(mount_point) = left.split(' ').nth(4).map(unescape) else { continue };
        let mut right = right.split(' ');
        if right.next() != Some("overlay") {
            continue;
        }
        let options = right.nth(1).unwrap_or("");
        let under = path == mount_point || path.starts_with(&format!("{}/", mount_point.trim_end_matches('/')));
        if !under || best.as_ref().is_some_and(|(m, _)| m.len() > mount_point.len()) {
            continue;
        }
        let mut upper = Vec::new();
        let mut lower = Vec::new();
        for option in split_unescaped(options, ',') {
            if let Some(dir) = option.strip_prefix("upperdir=") {
                upper.push(unescape(dir));
            } else if let Some(dirs) = option.strip_prefix("lowerdir=") {
                lower.extend(split_unescaped(dirs, ':').into_iter().filter(|d| !d.is_empty()).map(|d| unescape(&d)));
            }
        }
        upper.extend(lower);
        best = Some((mount_point, upper));
    }
    best
}

/// `s` split at `sep` where it is not escaped with a backslash (overlayfs escapes
/// commas and colons in its layer paths); the escapes stay for [`unescape`].
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let (mut parts, mut cur, mut escaped) = (Vec::new(), String::new(), false);
    for c in s.chars() {
        if c == sep && !escaped {
            parts.push(core::mem::take(&mut cur));
            continue;
        }
        escaped = c == '\\' && !escaped;
        cur.push(c);
    }
    parts.push(cur);
    parts
}

/// mountinfo's escapes: `\NNN` (octal: space, tab, newline, backslash) and `\c` for
/// another character.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let (mut out, mut i) = (Vec::with_capacity(b.len()), 0);
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') << 6 | (b[i + 2] - b'0') << 3 | (b[i + 3] - b'0'));
            i += 4;
        } else if b[i] == b'\\' && i + 1 < b.len() {
            out.push(b[i + 1]);
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The key of what `stat` returned.
pub fn key_of_stat(st: &rustix::fs::Stat) -> InodeKey {
    #[allow(clippy::useless_conversion)] // u32 on some architectures, u64 on others
    let (dev, ino) = (u64::from(st.st_dev), u64::from(st.st_ino));
    InodeKey { dev: kernel_dev(dev), ino }
}

#[cfg(test)]
#[test]
fn overlay_layers_come_from_mountinfo_upper_first() {
    let mi = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
              40 22 0:40 / /mnt/ovl rw - overlay overlay rw,lowerdir=/rom:/l\\:2,upperdir=/overlay/upper,workdir=/overlay/work\n\
              41 40 0:41 / /mnt/ovl/sub rw - tmpfs tmpfs rw\n\
              42 22 0:42 / /mnt/a\\040b rw - overlay overlay rw,lowerdir=/x,upperdir=/y,workdir=/z";
    let (m, layers) = overlay_layers(mi, "/mnt/ovl/etc/shadow").unwrap();
    assert_eq!((m.as_str(), layers), ("/mnt/ovl", vec!["/overlay/upper".to_owned(), "/rom".into(), "/l:2".into()]));
    assert_eq!(overlay_layers(mi, "/mnt/ovlx/f"), None);
    assert_eq!(overlay_layers(mi, "/mnt/a b/f").unwrap().0, "/mnt/a b");
    assert_eq!(overlay_layers(mi, "/etc/passwd"), None);
}

/// Why a path rule could not become a map entry.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The path could not be resolved (stat failed).
    Resolve(Errno),
}

/// A path rule that cannot be enforced. Display: `deny_open /x: No such file or directory`;
/// the caller prefixes `FILE:LINE: `.
#[cfg(test)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// Config line of the rule.
    pub line: u32,
    /// `deny_open` or `deny_exec`.
    pub key: &'static str,
    /// The path as written in the config.
    pub path: String,
    /// What went wrong.
    pub cause: Cause,
}

#[cfg(test)]
impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.key, self.path)?;
        match self.cause {
            Cause::Resolve(errno) => write!(f, "{errno}"),
        }
    }
}

#[cfg(test)]
impl std::error::Error for RuleError {}

/// Resolves every deny_open and deny_exec rule with `resolve` (`inode_key` outside
/// tests) and merges rules on the same inode into one entry. The rule id of a class is
/// its config line; when one inode is named twice for a class (a hardlink, a symlink),
/// the earlier line wins.
///
/// A path that does not resolve is an error, not a skipped rule: rules are resolved
/// to inodes once, at start, so a file created at that path later would not be
/// covered anyway, and a missing path is most often a typo.
#[cfg(test)] // the agent resolves through targets::check, which judges each file too
pub fn inode_rules(
    policy: &Policy,
    mut resolve: impl FnMut(&str) -> Result<InodeKey, Errno>,
) -> Result<InodeEntries, RuleError> {
    let mut resolved = Vec::with_capacity(policy.open.len() + policy.exec.len());
    // In config order, so the first error reported is the first in the file.
    for (is_open, rule) in path_rules(policy) {
        let key = resolve(policy.path(rule)).map_err(|e| RuleError {
            line: rule.line,
            key: if is_open { "deny_open" } else { "deny_exec" },
            path: policy.path(rule).into(),
            cause: Cause::Resolve(e),
        })?;
        resolved.push(Resolved { key, is_open, line: rule.line, hold: false });
    }
    Ok(entries(resolved))
}

/// Every deny_open and deny_exec rule (true: open), in config order.
pub fn path_rules(policy: &Policy) -> impl Iterator<Item = (bool, &PathRule)> {
    // Both lists are in line order already: merge them.
    let (mut open, mut exec) = (policy.open.iter().peekable(), policy.exec.iter().peekable());
    core::iter::from_fn(move || match (open.peek(), exec.peek()) {
        (Some(o), Some(e)) if e.line < o.line => exec.next().map(|r| (false, r)),
        (Some(_), _) => open.next().map(|r| (true, r)),
        (None, _) => exec.next().map(|r| (false, r)),
    })
}

/// A path rule resolved to the inode it denies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub key: InodeKey,
    /// deny_open (true) or deny_exec.
    pub is_open: bool,
    /// Its config line, the rule id.
    pub line: u32,
    /// Its filesystem numbers inodes in memory (see `targets::numbers_inodes_in_memory`):
    /// the agent holds the file open so that its number stays the rule's.
    pub hold: bool,
}

/// Merges resolved rules on the same inode into one entry (sorting, not a search per
/// rule: 20,000 rules merge in a few milliseconds). The rule id of a class is the
/// earliest config line naming that inode for it; entries come in the order of their
/// first line.
pub fn entries(resolved: Vec<Resolved>) -> InodeEntries {
    let by_key = |i: usize| (resolved[i].key.dev, resolved[i].key.ino, resolved[i].line);
    let order = sorted_indices(resolved.len(), &|a, b| by_key(a).cmp(&by_key(b)));
    let mut out: Vec<(u32, InodeKey, InodeRule)> = Vec::new();
    for r in order.into_iter().map(|i| &resolved[i]) {
        match out.last_mut() {
            Some((_, key, _)) if *key == r.key => {}
            _ => out.push((r.line, r.key, InodeRule::default())),
        }
        let Some((_, _, value)) = out.last_mut() else { continue };
        let id = if r.is_open { &mut value.open_rule } else { &mut value.exec_rule };
        if *id == 0 {
            *id = r.line; // the earliest: lines ascend within an inode's run
        }
    }
    let order = sorted_indices(out.len(), &|a, b| out[a].0.cmp(&out[b].0));
    order.into_iter().map(|i| (out[i].1, out[i].2)).collect()
}

/// The entries of the `deny_paths` map (the path tier): each distinct name once, as a
/// range of one text (a key is 256 bytes: 40,000 of them held as keys would be 10 MB),
/// with its rule ids.
#[derive(Debug, Default)]
pub struct PathNames {
    text: Vec<u8>,
    names: Vec<(u32, u32, InodeRule)>,
}

impl PathNames {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Every name as a `deny_paths` key, with its rules.
    pub fn iter(&self) -> impl Iterator<Item = (PathKey, InodeRule)> + '_ {
        self.names.iter().filter_map(|&(start, len, rule)| {
            Some((PathKey::new(&self.text[start as usize..][..len as usize])?, rule))
        })
    }
}

/// A rule the path tier cannot match: its canonical path does not resolve, or does
/// not fit its keys. Display: `line N: deny_open /x: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    pub line: u32,
    pub key: &'static str,
    pub path: String,
    /// None: the canonical path is longer than the keys hold.
    pub errno: Option<Errno>,
}

impl core::fmt::Display for NameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "line {}: {} {}: ", self.line, self.key, self.path)?;
        match self.errno {
            Some(errno) => write!(f, "{errno}"),
            None => write!(f, "its canonical path is longer than the path tier matches ({} bytes)", abi::PATH_LEN - 1),
        }
    }
}

/// The canonical form of `path`: absolute, no symlink, no `.` or `..` component.
pub fn canonical(path: &str) -> Result<Vec<u8>, Errno> {
    use std::os::unix::ffi::OsStringExt;
    std::fs::canonicalize(path).map(|p| p.into_os_string().into_vec()).map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))
}

/// The names under which the path tier matches the deny_open and deny_exec rules: each
/// path as configured and in its canonical form (`canonicalize`, [`canonical`] outside
/// tests), and the last component of each, which the BPF side looks up for a relative
/// or otherwise non-canonical path (it cannot resolve those). Rules on one name merge
/// as in [`entries`]: per class, the earliest line wins. Made only when the ladder
/// brings the path tier up; by sorting, not a search per name (40,000 names).
pub fn path_names(policy: &Policy, canonicalize: impl Fn(&str) -> Result<Vec<u8>, Errno>) -> Result<PathNames, NameError> {
    // Every candidate name: (start, len) in `text`, the class, the line.
    let mut text = Vec::new();
    let mut found: Vec<(u32, u32, bool, u32)> = Vec::new();
    for (is_open, rule) in path_rules(policy) {
        let configured = policy.path(rule);
        let error = |errno| NameError {
            line: rule.line,
            key: if is_open { "deny_open" } else { "deny_exec" },
            path: configured.into(),
            errno,
        };
        let canon = canonicalize(configured).map_err(|e| error(Some(e)))?;
        if canon.len() >= abi::PATH_LEN {
            return Err(error(None));
        }
        for name in [configured.as_bytes(), canon.as_slice()] {
            let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
            let at = text.len() as u32;
            text.extend_from_slice(name);
            // A configured path too long for a key is matched by its canonical form.
            if name.len() < abi::PATH_LEN {
                found.push((at, name.len() as u32, is_open, rule.line));
            }
            if !base.is_empty() && base != b"." && base != b".." {
                let base_at = at + (name.len() - base.len()) as u32;
                found.push((base_at, base.len() as u32, is_open, rule.line));
            }
        }
    }
    let name = |i: usize| &text[found[i].0 as usize..][..found[i].1 as usize];
    let order = sorted_indices(found.len(), &|a, b| name(a).cmp(name(b)).then(found[a].3.cmp(&found[b].3)));
    let mut names: Vec<(u32, u32, InodeRule)> = Vec::new();
    let mut last: Option<usize> = None;
    for i in order {
        if last.is_none_or(|l| name(l) != name(i)) {
            names.push((found[i].0, found[i].1, InodeRule::default()));
        }
        last = Some(i);
        let Some((_, _, rule)) = names.last_mut() else { continue };
        let id = if found[i].2 { &mut rule.open_rule } else { &mut rule.exec_rule };
        if *id == 0 {
            *id = found[i].3; // the earliest: lines ascend within a name's run
        }
    }
    Ok(PathNames { text, names })
}

/// A `deny_net4` or `deny_net6` entry: the LPM key and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetKey {
    /// Entry of `deny_net4`.
    V4(Net4Key, abi::NetRule),
    /// Entry of `deny_net6`.
    V6(Net6Key, abi::NetRule),
}

/// The LPM trie entry of a deny_connect rule. The key's port (network order, 0 = any
/// port) and its zero pad come before the address, so the prefix length is 32 + the
/// CIDR prefix whether or not the rule has a port; the value is the config line.
pub fn net_keys(rule: &NetRule) -> NetKey {
    let port = rule.port.unwrap_or(0).to_be();
    let value = abi::NetRule { rule: rule.line };
    match rule.net {
        Net::V4 { addr, prefix } => {
            NetKey::V4(Net4Key { prefixlen: 32 + u32::from(prefix), port, _pad: 0, addr }, value)
        }
        Net::V6 { addr, prefix } => {
            NetKey::V6(Net6Key { prefixlen: 32 + u32::from(prefix), port, _pad: 0, addr }, value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::scratch::TempDir;
    use std::os::unix::fs::MetadataExt;

    /// userspace makedev, as glibc and musl define it.
    fn makedev(major: u64, minor: u64) -> u64 {
        ((major & 0xffff_f000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffff_ff00) << 12) | (minor & 0xff)
    }

    #[test]
    fn a_mounts_device_comes_from_its_mountinfo_line() {
        let text = "27 1 0:24 / / rw - ext4 /dev/root rw\n48 27 0:40 /sv /mnt rw,relatime - btrfs /dev/loop0 rw,subvol=/sv\n";
        assert_eq!(mount_dev(text, 48), Some(40));
        assert_eq!(mount_dev(text, 27), Some(24));
        assert_eq!(mount_dev(text, 49), None);
        let text = "31 1 259:3 / / rw - ext4 /dev/nvme0n1p3 rw\n";
        assert_eq!(mount_dev(text, 31), Some(259 << 20 | 3));
    }

    #[test]
    fn dev_encoding() {
        // (st_dev, kernel s_dev) for 8:1, 259:3, 0:44, 0:300, 4095:1048575.
        for (st_dev, s_dev) in
            [(0x0801, 0x0080_0001), (0x1_0303, 0x1030_0003), (0x2c, 0x2c), (0x10_002c, 0x12c), (0, 0)]
        {
            assert_eq!(kernel_dev(st_dev), s_dev, "st_dev {st_dev:#x}");
        }
        assert_eq!(makedev(259, 3), 0x1_0303);
        assert_eq!(makedev(0, 300), 0x10_002c);
        assert_eq!(kernel_dev(makedev(4095, 0xf_ffff)), 0xffff_ffff);
        for (major, minor) in [(8, 1), (259, 3), (0, 44), (300, 70_000), (4095, 0xf_ffff)] {
            assert_eq!(kernel_dev(makedev(major, minor)), (major << 20) | minor, "{major}:{minor}");
        }
        // Out-of-range input is masked, not panicked on.
        assert!(kernel_dev(u64::MAX) <= 0xffff_ffff);
    }

    #[test]
    fn links_resolve_to_the_same_key() {
        let dir = TempDir::new("rules-links");
        let file = dir.path("file");
        std::fs::write(&file, "x").unwrap();
        std::fs::hard_link(&file, dir.path("hardlink")).unwrap();
        std::os::unix::fs::symlink(&file, dir.path("symlink")).unwrap();
        let key = inode_key(&file).unwrap();
        assert_eq!(inode_key(&dir.path("hardlink")).unwrap(), key);
        assert_eq!(inode_key(&dir.path("symlink")).unwrap(), key);
        assert_eq!(
            inode_key(&format!("{}/./../{}/file", dir.0.display(), dir.0.file_name().unwrap().to_str().unwrap()))
                .unwrap(),
            key
        );
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(key, InodeKey { dev: kernel_dev(meta.dev()), ino: meta.ino() });

        std::fs::write(dir.path("other"), "x").unwrap();
        assert_ne!(inode_key(&dir.path("other")).unwrap(), key);
        assert_eq!(inode_key(&dir.path("missing")), Err(Errno::NOENT));
        assert_eq!(inode_key(&format!("{file}/below")), Err(Errno::NOTDIR));
    }

    fn policy(text: &str) -> Box<Policy> {
        config::parse(text).unwrap()
    }

    /// A resolver where paths with the same first letter after '/' are the same inode.
    fn fake(path: &str) -> Result<InodeKey, Errno> {
        match path.as_bytes().get(1) {
            Some(&c) if c != b'x' => Ok(InodeKey { dev: (8 << 20) | 1, ino: u64::from(c) }),
            _ => Err(Errno::NOENT),
        }
    }

    #[test]
    fn rules_on_one_inode_merge() {
        let p = policy(
            "deny_open = /a1\n\
             deny_exec = /b1\n\
             deny_exec = /a2\n\
             deny_open = /a3\n\
             deny_exec = /a4\n\
             deny_open = /c\n",
        );
        let entries = inode_rules(&p, fake).unwrap();
        let key = |c: u8| InodeKey { dev: (8 << 20) | 1, ino: u64::from(c) };
        assert_eq!(
            entries.as_slice(),
            [
                (key(b'a'), InodeRule { open_rule: 1, exec_rule: 3 }),
                (key(b'b'), InodeRule { open_rule: 0, exec_rule: 2 }),
                (key(b'c'), InodeRule { open_rule: 6, exec_rule: 0 }),
            ]
        );
        assert!(inode_rules(&policy(""), fake).unwrap().is_empty());
    }

    #[test]
    fn first_unresolvable_rule_is_the_error() {
        let p = policy("deny_open = /a\n\ndeny_exec = /x-exec\ndeny_open = /x-open\n");
        let e = inode_rules(&p, fake).unwrap_err();
        assert_eq!(
            (e.line, e.key, e.path.as_str(), e.cause),
            (3, "deny_exec", "/x-exec", Cause::Resolve(Errno::NOENT))
        );

        let p = policy("\n\ndeny_open = /nonexistent/enforce-test\n");
        let e = inode_rules(&p, inode_key).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.to_string().starts_with("deny_open /nonexistent/enforce-test: No such file or directory"), "{e}");
    }

    #[test]
    fn real_files_merge_through_links() {
        let dir = TempDir::new("rules-merge");
        let file = dir.path("file");
        std::fs::write(&file, "x").unwrap();
        std::os::unix::fs::symlink(&file, dir.path("symlink")).unwrap();
        let p = policy(&format!("deny_open = {}\ndeny_exec = {file}\ndeny_open = {file}x\n", dir.path("symlink")));
        assert_eq!(inode_rules(&p, inode_key).unwrap_err().line, 3);
        let p = policy(&format!("deny_open = {}\ndeny_exec = {file}\n", dir.path("symlink")));
        let entries = inode_rules(&p, inode_key).unwrap();
        assert_eq!(entries.as_slice(), [(inode_key(&file).unwrap(), InodeRule { open_rule: 1, exec_rule: 2 })]);
    }

    #[test]
    fn the_map_holds_every_distinct_file() {
        let mut text = String::new();
        for i in 0..config::MAX_OPEN_RULES {
            text.push_str(&format!("deny_open = /o{i}\ndeny_exec = /e{i}\n"));
        }
        let p = policy(&text);
        let distinct = |path: &str| -> Result<InodeKey, Errno> {
            let n: u64 = path[2..].parse().unwrap();
            Ok(InodeKey { dev: 1, ino: if path.starts_with("/o") { n } else { 1_000_000 + n } })
        };
        let entries = inode_rules(&p, distinct).unwrap();
        assert_eq!(entries.len(), MAX_INODE_RULES);
        // In config order, each with its own rule.
        assert_eq!(entries[0], (InodeKey { dev: 1, ino: 0 }, InodeRule { open_rule: 1, exec_rule: 0 }));
        assert_eq!(entries[1], (InodeKey { dev: 1, ino: 1_000_000 }, InodeRule { open_rule: 0, exec_rule: 2 }));
        let last = config::MAX_OPEN_RULES as u64 - 1;
        assert_eq!(entries[MAX_INODE_RULES - 1].0, InodeKey { dev: 1, ino: 1_000_000 + last });
    }

    #[test]
    fn path_names_are_configured_canonical_and_last_components() {
        let p = policy("deny_open = /etc/link\ndeny_exec = /opt/tool\ndeny_exec = /etc/link\ndeny_open = /srv/tool\n");
        let canon = |path: &str| -> Result<Vec<u8>, Errno> {
            Ok(match path {
                "/etc/link" => b"/data/target".to_vec(),
                other => other.as_bytes().to_vec(),
            })
        };
        let names = path_names(&p, canon).unwrap();
        let entries: Vec<_> = names.iter().collect();
        let find = |name: &str| entries.iter().find(|(k, _)| *k == PathKey::new(name.as_bytes()).unwrap()).map(|(_, r)| *r);
        assert_eq!(find("/etc/link"), Some(InodeRule { open_rule: 1, exec_rule: 3 }));
        assert_eq!(find("/data/target"), Some(InodeRule { open_rule: 1, exec_rule: 3 }));
        assert_eq!(find("link"), Some(InodeRule { open_rule: 1, exec_rule: 3 }));
        assert_eq!(find("target"), Some(InodeRule { open_rule: 1, exec_rule: 3 }));
        assert_eq!(find("/opt/tool"), Some(InodeRule { open_rule: 0, exec_rule: 2 }));
        assert_eq!(find("/srv/tool"), Some(InodeRule { open_rule: 4, exec_rule: 0 }));
        assert_eq!(find("tool"), Some(InodeRule { open_rule: 4, exec_rule: 2 }), "one last component, two rules");
        assert_eq!((entries.len(), names.len()), (7, 7));
        assert!(entries.iter().all(|(k, _)| k.0.iter().position(|&b| b == 0).is_some()));
        assert_eq!(path_names(&policy(""), canon).unwrap().len(), 0);
    }

    /// 10,000 rules per class: about 40,000 candidate names merged by sorting. A
    /// search per name took minutes; this takes milliseconds (the bound is generous for
    /// a busy machine and a debug build).
    #[test]
    fn path_names_at_capacity_merge_fast_and_keep_the_first_line() {
        let mut text = String::new();
        for i in 0..config::MAX_OPEN_RULES {
            // Every deny_exec names the file its deny_open names: one name, two rules.
            text.push_str(&format!("deny_open = /srv/o{i}/file{i}\ndeny_exec = /srv/o{i}/file{i}\n"));
        }
        let p = policy(&text);
        let same = |path: &str| -> Result<Vec<u8>, Errno> { Ok(path.as_bytes().to_vec()) };
        let started = std::time::Instant::now();
        let names = path_names(&p, same).unwrap();
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
        // Each path and its last component, once each.
        assert_eq!(names.len(), 2 * config::MAX_OPEN_RULES);
        let entries: Vec<_> = names.iter().collect();
        let find = |name: &str| entries.iter().find(|(k, _)| *k == PathKey::new(name.as_bytes()).unwrap()).map(|(_, r)| *r);
        assert_eq!(find("/srv/o0/file0"), Some(InodeRule { open_rule: 1, exec_rule: 2 }));
        assert_eq!(find("file9999"), Some(InodeRule { open_rule: 19999, exec_rule: 20000 }));
        // A name repeated on later lines keeps its first line per class.
        let p = policy("deny_open = /a/x\ndeny_open = /b/x\ndeny_exec = /c/x\ndeny_exec = /a/x\n");
        let entries: Vec<_> = path_names(&p, same).unwrap().iter().collect();
        let x = entries.iter().find(|(k, _)| *k == PathKey::new(b"x").unwrap()).unwrap().1;
        assert_eq!(x, InodeRule { open_rule: 1, exec_rule: 3 });
    }

    #[test]
    fn a_canonical_path_too_long_for_the_path_tier() {
        let p = policy("\ndeny_open = /short\n");
        let long = |_: &str| -> Result<Vec<u8>, Errno> { Ok([b"/".as_slice(), &[b'x'; 300]].concat()) };
        let e = path_names(&p, long).unwrap_err();
        assert_eq!((e.line, e.errno), (2, None));
        assert!(e.to_string().contains("longer than the path tier matches (255 bytes)"), "{e}");
        // Real files: a symlink's rule also names its target.
        let dir = TempDir::new("canon");
        let file = dir.path("file");
        std::fs::write(&file, "x").unwrap();
        std::os::unix::fs::symlink(&file, dir.path("symlink")).unwrap();
        let p = policy(&format!("deny_open = {}\n", dir.path("symlink")));
        let names = path_names(&p, canonical).unwrap();
        let canon = std::fs::canonicalize(&file).unwrap();
        assert!(names.iter().any(|(k, _)| k == PathKey::new(canon.to_str().unwrap().as_bytes()).unwrap()));
        assert_eq!(path_names(&policy("deny_open = /nonexistent/enforce\n"), canonical).unwrap_err().errno, Some(Errno::NOENT));
    }

    fn net_key(value: &str) -> NetKey {
        let p = policy(&format!("# rule on line 2\ndeny_connect = {value}\n"));
        net_keys(&p.connect[0])
    }

    #[test]
    fn ipv4_keys() {
        let NetKey::V4(k, v) = net_key("10.0.0.0/8") else { panic!("not v4") };
        assert_eq!(v, abi::NetRule { rule: 2 });
        assert_eq!(k.to_bytes()[..4], 40u32.to_ne_bytes());
        assert_eq!(k.to_bytes()[4..], [0, 0, 0, 0, 10, 0, 0, 0]);

        let NetKey::V4(k, _) = net_key("192.0.2.10:443") else { panic!("not v4") };
        assert_eq!(k.to_bytes()[..4], 64u32.to_ne_bytes());
        assert_eq!(k.to_bytes()[4..], [0x01, 0xbb, 0, 0, 192, 0, 2, 10], "port 443 big-endian, then pad, then address");

        let NetKey::V4(k, _) = net_key("[::ffff:172.16.0.0/108]:8080") else { panic!("mapped is v4") };
        assert_eq!(k.prefixlen, 32 + 12);
        assert_eq!(k.to_bytes()[4..], [0x1f, 0x90, 0, 0, 172, 16, 0, 0]);

        let NetKey::V4(k, _) = net_key("0.0.0.0/0") else { panic!("not v4") };
        assert_eq!(k.to_bytes(), [32u32.to_ne_bytes().as_slice(), &[0; 8]].concat()[..]);
    }

    #[test]
    fn ipv6_keys() {
        let NetKey::V6(k, v) = net_key("[2001:db8::/32]:443") else { panic!("not v6") };
        assert_eq!(v.rule, 2);
        let b = k.to_bytes();
        assert_eq!(b[..4], 64u32.to_ne_bytes());
        assert_eq!(b[4..8], [0x01, 0xbb, 0, 0]);
        assert_eq!(b[8..], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

        let NetKey::V6(k, _) = net_key("::1") else { panic!("not v6") };
        let b = k.to_bytes();
        assert_eq!(b[..4], 160u32.to_ne_bytes());
        assert_eq!(b[4..8], [0; 4]);
        assert_eq!(b[8..], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    }
}
