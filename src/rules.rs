//! Policy → kernel map entries: deny_open / deny_exec paths → `deny_inodes` entries
//! (and, for the path tier, `deny_paths` entries), deny_connect rules → `deny_net4` /
//! `deny_net6` LPM keys.

use core::fmt;

use rustix::io::Errno;

use crate::abi::{self, InodeKey, InodeRule, Net4Key, Net6Key, PathKey};
use crate::config::{Net, NetRule, PathRule, Policy, MAX_EXEC_RULES, MAX_OPEN_RULES};

/// Most distinct inodes the rules can name.
pub const MAX_INODE_RULES: usize = MAX_OPEN_RULES + MAX_EXEC_RULES;

/// The entries of the `deny_inodes` map, one per distinct inode.
pub type InodeEntries = heapless::Vec<(InodeKey, InodeRule), MAX_INODE_RULES>;

/// Converts userspace's `st_dev` (glibc/musl `makedev` encoding) to the kernel's
/// `inode->i_sb->s_dev` encoding, `(major << 20) | minor`, which the BPF side reads.
pub fn kernel_dev(st_dev: u64) -> u64 {
    let major = ((st_dev >> 8) & 0xfff) | ((st_dev >> 32) & !0xfff);
    let minor = (st_dev & 0xff) | ((st_dev >> 12) & !0xff);
    // The kernel's dev_t has 12 major and 20 minor bits; st_dev never holds more.
    ((major & 0xfff) << 20) | (minor & 0xf_ffff)
}

/// The inode `path` names now. Follows symlinks: a symlink in the config denies its target.
pub fn inode_key(path: &str) -> Result<InodeKey, Errno> {
    Ok(key_of_stat(&rustix::fs::stat(path)?))
}

/// The inode behind an open descriptor.
pub fn inode_key_of(fd: impl std::os::fd::AsFd) -> Result<InodeKey, Errno> {
    Ok(key_of_stat(&rustix::fs::fstat(fd)?))
}

fn key_of_stat(st: &rustix::fs::Stat) -> InodeKey {
    #[allow(clippy::useless_conversion)] // u32 on some architectures, u64 on others
    let (dev, ino) = (u64::from(st.st_dev), u64::from(st.st_ino));
    InodeKey { dev: kernel_dev(dev), ino }
}

/// Why a path rule could not become a map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The path could not be resolved (stat failed).
    Resolve(Errno),
    /// More distinct inodes than the map holds (cannot happen with the config's limits).
    Full,
    /// Its canonical path is longer than the path tier's keys (it may use that tier).
    CanonicalTooLong,
}

/// A path rule that cannot be enforced. Display: `deny_open /x: No such file or directory`;
/// the caller prefixes `FILE:LINE: `.
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

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.key, self.path)?;
        match self.cause {
            Cause::Resolve(errno) => write!(f, "{errno}"),
            Cause::Full => write!(f, "more than {MAX_INODE_RULES} distinct files"),
            Cause::CanonicalTooLong => write!(
                f,
                "its canonical path is longer than the path tier matches ({} bytes); name the file by a shorter path or leave the path tier out (tiers =)",
                abi::PATH_LEN - 1
            ),
        }
    }
}

impl std::error::Error for RuleError {}

/// Resolves every deny_open and deny_exec rule with `resolve` (`inode_key` outside
/// tests) and merges rules on the same inode into one entry. The rule id of a class is
/// its config line; when one inode is named twice for a class (a hardlink, a symlink),
/// the earlier line wins.
///
/// A path that does not resolve is an error, not a skipped rule: rules are resolved
/// to inodes once, at start, so a file created at that path later would not be
/// covered anyway, and a missing path is most often a typo.
pub fn inode_rules(
    policy: &Policy,
    resolve: impl Fn(&str) -> Result<InodeKey, Errno>,
) -> Result<InodeEntries, RuleError> {
    // In config order, so the first error reported is the first in the file.
    let mut rules: heapless::Vec<(bool, &PathRule), { MAX_OPEN_RULES + MAX_EXEC_RULES }> = heapless::Vec::new();
    for (is_open, rule) in policy.open.iter().map(|r| (true, r)).chain(policy.exec.iter().map(|r| (false, r))) {
        // Cannot fail: the capacity is the sum of both lists' capacities.
        let _ = rules.push((is_open, rule));
    }
    rules.sort_unstable_by_key(|(_, r)| r.line);

    let mut entries = InodeEntries::new();
    for (is_open, rule) in rules {
        let error = |cause| RuleError {
            line: rule.line,
            key: if is_open { "deny_open" } else { "deny_exec" },
            path: rule.path.as_str().into(),
            cause,
        };
        let key = resolve(&rule.path).map_err(|e| error(Cause::Resolve(e)))?;
        let set = |value: &mut InodeRule| {
            let id = if is_open { &mut value.open_rule } else { &mut value.exec_rule };
            if *id == 0 {
                *id = rule.line;
            }
        };
        if let Some((_, value)) = entries.iter_mut().find(|(k, _)| *k == key) {
            set(value);
        } else {
            let mut value = InodeRule::default();
            set(&mut value);
            entries.push((key, value)).map_err(|_| error(Cause::Full))?;
        }
    }
    Ok(entries)
}

/// The entries of the `deny_paths` map (the path tier): path strings → rule ids.
pub type PathEntries = Vec<(PathKey, InodeRule)>;

/// The canonical form of `path`: absolute, no symlink, no `.` or `..` component.
pub fn canonical(path: &str) -> Result<Vec<u8>, Errno> {
    use std::os::unix::ffi::OsStringExt;
    std::fs::canonicalize(path).map(|p| p.into_os_string().into_vec()).map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))
}

/// The names under which the path tier matches the deny_open and deny_exec rules: each
/// path as configured and in its canonical form (`canonicalize`, [`canonical`] outside
/// tests), and the last component of each, which the BPF side looks up for a relative
/// or otherwise non-canonical path (it cannot resolve those). Rules on one name merge
/// as in [`inode_rules`]: per class, the earlier line wins. `path_tier`: whether the
/// config lets the gate use the path tier; only then is a canonical path too long for
/// its keys an error.
pub fn path_rules(
    policy: &Policy,
    path_tier: bool,
    canonicalize: impl Fn(&str) -> Result<Vec<u8>, Errno>,
) -> Result<PathEntries, RuleError> {
    let mut rules: Vec<(bool, &PathRule)> =
        policy.open.iter().map(|r| (true, r)).chain(policy.exec.iter().map(|r| (false, r))).collect();
    rules.sort_unstable_by_key(|(_, r)| r.line);
    let mut entries = PathEntries::new();
    let mut add = |name: &[u8], is_open: bool, line: u32| {
        let Some(key) = PathKey::new(name) else { return };
        let index = match entries.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                entries.push((key, InodeRule::default()));
                entries.len() - 1
            }
        };
        let id = if is_open { &mut entries[index].1.open_rule } else { &mut entries[index].1.exec_rule };
        if *id == 0 {
            *id = line;
        }
    };
    for (is_open, rule) in rules {
        let error = |cause| RuleError {
            line: rule.line,
            key: if is_open { "deny_open" } else { "deny_exec" },
            path: rule.path.as_str().into(),
            cause,
        };
        let configured = rule.path.as_bytes();
        let canon = canonicalize(&rule.path).map_err(|e| error(Cause::Resolve(e)))?;
        if canon.len() >= abi::PATH_LEN && path_tier {
            return Err(error(Cause::CanonicalTooLong));
        }
        for name in [configured, canon.as_slice()] {
            add(name, is_open, rule.line);
            let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
            if !base.is_empty() && base != b"." && base != b".." {
                add(base, is_open, rule.line);
            }
        }
    }
    Ok(entries)
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
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    /// A scratch directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("enforce-rules-{name}.{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn path(&self, name: &str) -> String {
            self.0.join(name).to_str().unwrap().to_owned()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// userspace makedev, as glibc and musl define it.
    fn makedev(major: u64, minor: u64) -> u64 {
        ((major & 0xffff_f000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffff_ff00) << 12) | (minor & 0xff)
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
        let dir = TempDir::new("links");
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
        let dir = TempDir::new("merge");
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
            Ok(InodeKey { dev: 1, ino: if path.starts_with("/o") { n } else { 1000 + n } })
        };
        assert_eq!(inode_rules(&p, distinct).unwrap().len(), MAX_INODE_RULES);
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
        let entries = path_rules(&p, true, canon).unwrap();
        let find = |name: &str| entries.iter().find(|(k, _)| *k == PathKey::new(name.as_bytes()).unwrap()).map(|(_, r)| *r);
        assert_eq!(find("/etc/link"), Some(InodeRule { open_rule: 1, exec_rule: 3 }));
        assert_eq!(find("/data/target"), Some(InodeRule { open_rule: 1, exec_rule: 3 }));
        assert_eq!(find("link"), Some(InodeRule { open_rule: 1, exec_rule: 3 }));
        assert_eq!(find("target"), Some(InodeRule { open_rule: 1, exec_rule: 3 }));
        assert_eq!(find("/opt/tool"), Some(InodeRule { open_rule: 0, exec_rule: 2 }));
        assert_eq!(find("/srv/tool"), Some(InodeRule { open_rule: 4, exec_rule: 0 }));
        assert_eq!(find("tool"), Some(InodeRule { open_rule: 4, exec_rule: 2 }), "one last component, two rules");
        assert_eq!(entries.len(), 7);
        assert!(entries.iter().all(|(k, _)| k.0.iter().position(|&b| b == 0).is_some()));
    }

    #[test]
    fn a_canonical_path_too_long_for_the_path_tier() {
        let p = policy("\ndeny_open = /short\n");
        let long = |_: &str| -> Result<Vec<u8>, Errno> { Ok([b"/".as_slice(), &[b'x'; 300]].concat()) };
        let e = path_rules(&p, true, long).unwrap_err();
        assert_eq!((e.line, e.cause), (2, Cause::CanonicalTooLong));
        assert!(e.to_string().contains("longer than the path tier matches (255 bytes)"), "{e}");
        // Without the path tier the rule stands (the other tiers match inodes).
        assert!(path_rules(&p, false, long).is_ok());
        // Real files: a symlink's rule also names its target.
        let dir = TempDir::new("canon");
        let file = dir.path("file");
        std::fs::write(&file, "x").unwrap();
        std::os::unix::fs::symlink(&file, dir.path("symlink")).unwrap();
        let p = policy(&format!("deny_open = {}\n", dir.path("symlink")));
        let entries = path_rules(&p, true, canonical).unwrap();
        let canon = std::fs::canonicalize(&file).unwrap();
        assert!(entries.iter().any(|(k, _)| *k == PathKey::new(canon.to_str().unwrap().as_bytes()).unwrap()));
        assert_eq!(path_rules(&policy("deny_open = /nonexistent/enforce\n"), true, canonical).unwrap_err().cause, Cause::Resolve(Errno::NOENT));
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
