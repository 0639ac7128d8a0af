//! The bricking guard's facts: the files a device needs to boot and to be repaired,
//! as inodes. A `deny_open` or `deny_exec` rule on one of them is refused (see
//! `targets::check_with`) unless `allow_dangerous_rules = yes`:
//!
//! - PID 1's executable (`/proc/1/exe`), and every file PID 1 runs code from (its
//!   dynamic loader and shared libraries: the executable mappings of `/proc/1/maps`);
//! - the dynamic loader named by PID 1's ELF `PT_INTERP`;
//! - the agent's own binary (`/proc/self/exe`): denying it stops the next start, and
//!   the canary, which re-executes it;
//! - `/bin/sh` and the dynamic loader named by its `PT_INTERP`: init scripts, and
//!   whoever has to repair the device, run through them.
//!
//! A fact that cannot be read (`/proc/1/exe` of a PID 1 that is not dumpable, a
//! `/proc` that is not mounted) is a gap: the caller warns that rules on that file are
//! not checked, and goes on. A file that does not exist (no `/bin/sh`, a static
//! binary without a loader) is not a gap: there is nothing to protect.

use core::fmt;
use std::io::Read;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::abi::InodeKey;
use crate::rules;

/// Why a file is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    Pid1Exe,
    SelfExe,
    Shell,
    Pid1Loader,
    ShellLoader,
    Pid1Code,
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            What::Pid1Exe => "PID 1's executable (init)",
            What::SelfExe => "the agent's own binary",
            What::Shell => "/bin/sh",
            What::Pid1Loader => "the dynamic loader PID 1 uses",
            What::ShellLoader => "the dynamic loader of /bin/sh",
            What::Pid1Code => "a file PID 1 runs code from (its dynamic loader or a shared library)",
        })
    }
}

/// A protected inode and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protected {
    pub key: InodeKey,
    /// The device of its filesystem as `allow_exec_from` names filesystems (the
    /// superblock's: on btrfs not the key's, which is the subvolume's).
    pub fsdev: u64,
    pub what: What,
}

/// What the guard found on this machine.
#[derive(Debug, Default)]
pub struct Facts {
    /// Protected inodes; when one inode is protected for several reasons, the first
    /// listed (in [`What`]'s order) is the one named.
    pub protected: Vec<Protected>,
    /// Facts that could not be read, e.g. `/proc/1/exe: Permission denied`.
    pub gaps: Vec<String>,
}

/// The largest head of an executable read to find its `PT_INTERP`.
const ELF_HEAD: u64 = 64 * 1024;

impl Facts {
    /// Reads the facts of this machine now.
    pub fn read() -> Facts {
        let mut f = Facts::default();
        f.stat("/proc/1/exe", What::Pid1Exe);
        f.stat("/proc/self/exe", What::SelfExe);
        f.stat("/bin/sh", What::Shell);
        f.interp("/proc/1/exe", What::Pid1Loader);
        f.interp("/bin/sh", What::ShellLoader);
        match std::fs::read_to_string("/proc/1/maps") {
            Ok(maps) => {
                for m in code_mappings(&maps) {
                    let dev = (m.major << 20) | m.minor; // maps shows the superblock's device
                    f.protect(InodeKey { dev, ino: m.ino }, dev, What::Pid1Code);
                    // The same file as a path resolves to it (stacked filesystems such
                    // as overlayfs may show another device in maps).
                    if m.path.starts_with('/') && !m.path.ends_with(" (deleted)") {
                        if let (Ok(key), Ok(fsdev)) = (rules::inode_key(m.path), rules::filesystem_dev(m.path)) {
                            f.protect(key, fsdev, What::Pid1Code);
                        }
                    }
                }
            }
            Err(e) => f.gap(format!("/proc/1/maps: {e}")),
        }
        f
    }

    fn protect(&mut self, key: InodeKey, fsdev: u64, what: What) {
        if !self.protected.iter().any(|p| p.key == key) {
            self.protected.push(Protected { key, fsdev, what });
        }
    }

    fn gap(&mut self, gap: String) {
        if !self.gaps.contains(&gap) {
            self.gaps.push(gap);
        }
    }

    fn stat(&mut self, path: &str, what: What) {
        match rules::inode_key(path).and_then(|key| Ok((key, rules::filesystem_dev(path)?))) {
            Ok((key, fsdev)) => self.protect(key, fsdev, what),
            Err(Errno::NOENT) => {}
            Err(e) => self.gap(format!("{path}: {e}")),
        }
    }

    /// Protects the loader named by `exe`'s PT_INTERP, if it has one.
    fn interp(&mut self, exe: &str, what: What) {
        match read_head(exe) {
            Ok(head) => {
                if let Some(loader) = elf_interp(&head) {
                    self.stat(loader, what);
                }
            }
            Err(Errno::NOENT) => {}
            Err(e) => self.gap(format!("{exe}: {e}")),
        }
    }
}

/// The first ELF_HEAD bytes of the regular file at `path`, opened without blocking.
fn read_head(path: &str) -> Result<Vec<u8>, Errno> {
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())?;
    if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != FileType::RegularFile {
        return Ok(Vec::new());
    }
    let mut head = Vec::new();
    std::fs::File::from(fd)
        .take(ELF_HEAD)
        .read_to_end(&mut head)
        .map_err(|e| Errno::from_raw_os_error(e.raw_os_error().unwrap_or(Errno::IO.raw_os_error())))?;
    Ok(head)
}

/// The program interpreter (dynamic loader) an ELF file names in its `PT_INTERP`
/// header, if the header and the path lie within `elf`. 32- and 64-bit, either byte
/// order; anything malformed is None.
pub fn elf_interp(elf: &[u8]) -> Option<&str> {
    const PT_INTERP: u32 = 3;
    if elf.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = match elf.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let big = match elf.get(5)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let uint = |at: usize, len: usize| -> Option<u64> {
        let b = elf.get(at..at.checked_add(len)?)?;
        Some(b.iter().enumerate().fold(0u64, |v, (i, &byte)| {
            let shift = if big { 8 * (len - 1 - i) } else { 8 * i };
            v | (u64::from(byte) << shift)
        }))
    };
    let (phoff, phentsize, phnum) = if wide {
        (uint(0x20, 8)?, uint(0x36, 2)?, uint(0x38, 2)?)
    } else {
        (uint(0x1c, 4)?, uint(0x2a, 2)?, uint(0x2c, 2)?)
    };
    for i in 0..phnum {
        let ph = usize::try_from(phoff.checked_add(i.checked_mul(phentsize)?)?).ok()?;
        if uint(ph, 4)? != u64::from(PT_INTERP) {
            continue;
        }
        let (offset, size) = if wide { (uint(ph + 8, 8)?, uint(ph + 0x20, 8)?) } else { (uint(ph + 4, 4)?, uint(ph + 0x10, 4)?) };
        let start = usize::try_from(offset).ok()?;
        let bytes = elf.get(start..start.checked_add(usize::try_from(size).ok()?)?)?;
        let path = bytes.split(|&b| b == 0).next()?;
        return core::str::from_utf8(path).ok().filter(|p| p.starts_with('/'));
    }
    None
}

/// One executable, file-backed mapping of a `/proc/PID/maps`.
#[derive(Debug, PartialEq, Eq)]
pub struct Mapping<'a> {
    pub major: u64,
    pub minor: u64,
    pub ino: u64,
    pub path: &'a str,
}

/// The executable file mappings (`r-xp … dev inode path`) of a maps text.
pub fn code_mappings(maps: &str) -> impl Iterator<Item = Mapping<'_>> {
    maps.lines().filter_map(|line| {
        let mut rest = line;
        let mut field = || -> Option<&str> {
            let t = rest.trim_start_matches(' ');
            let end = t.find(' ').unwrap_or(t.len());
            let (f, r) = t.split_at(end);
            rest = r;
            (!f.is_empty()).then_some(f)
        };
        let (_range, perms, _offset, dev, ino) = (field()?, field()?, field()?, field()?, field()?);
        if perms.as_bytes().get(2) != Some(&b'x') {
            return None;
        }
        let (major, minor) = dev.split_once(':')?;
        let (major, minor) = (u64::from_str_radix(major, 16).ok()?, u64::from_str_radix(minor, 16).ok()?);
        let ino: u64 = ino.parse().ok()?;
        let path = rest.trim_start_matches(' ');
        (ino != 0 && !path.is_empty()).then_some(Mapping { major, minor, ino, path })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF image with one PT_LOAD and one PT_INTERP program header.
    fn elf(wide: bool, big: bool, interp: &[u8]) -> Vec<u8> {
        let put = |v: &mut Vec<u8>, at: usize, len: usize, value: u64| {
            for i in 0..len {
                let shift = if big { 8 * (len - 1 - i) } else { 8 * i };
                v[at + i] = (value >> shift) as u8;
            }
        };
        let (ehsize, phentsize) = if wide { (64, 56) } else { (52, 32) };
        let mut v = vec![0u8; ehsize + 2 * phentsize];
        v[..4].copy_from_slice(b"\x7fELF");
        v[4] = if wide { 2 } else { 1 };
        v[5] = if big { 2 } else { 1 };
        let data = v.len() as u64;
        if wide {
            put(&mut v, 0x20, 8, ehsize as u64);
            put(&mut v, 0x36, 2, phentsize as u64);
            put(&mut v, 0x38, 2, 2);
        } else {
            put(&mut v, 0x1c, 4, ehsize as u64);
            put(&mut v, 0x2a, 2, phentsize as u64);
            put(&mut v, 0x2c, 2, 2);
        }
        let ph = ehsize + phentsize; // the second header is PT_INTERP
        put(&mut v, ehsize, 4, 1);
        put(&mut v, ph, 4, 3);
        if wide {
            put(&mut v, ph + 8, 8, data);
            put(&mut v, ph + 0x20, 8, interp.len() as u64);
        } else {
            put(&mut v, ph + 4, 4, data);
            put(&mut v, ph + 0x10, 4, interp.len() as u64);
        }
        v.extend_from_slice(interp);
        v
    }

    #[test]
    fn interp_of_every_elf_flavour() {
        for wide in [false, true] {
            for big in [false, true] {
                let image = elf(wide, big, b"/lib/ld-musl-aarch64.so.1\0");
                assert_eq!(elf_interp(&image), Some("/lib/ld-musl-aarch64.so.1"), "wide={wide} big={big}");
            }
        }
    }

    #[test]
    fn malformed_elf_is_none_and_never_panics() {
        let good = elf(true, false, b"/lib64/ld-linux-x86-64.so.2\0");
        assert_eq!(elf_interp(&good), Some("/lib64/ld-linux-x86-64.so.2"));
        assert_eq!(elf_interp(b""), None);
        assert_eq!(elf_interp(b"#!/bin/sh\n"), None);
        assert_eq!(elf_interp(&elf(true, false, b"relative\0")), None);
        // Every truncation, and every single-byte corruption, of a good image.
        for n in 0..good.len() {
            let _ = elf_interp(&good[..n]);
            for value in [0u8, 1, 2, 3, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[n] = value;
                let _ = elf_interp(&bad);
            }
        }
        // Offsets and counts at their largest.
        let mut huge = good.clone();
        huge[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        huge[0x38..0x3a].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(elf_interp(&huge), None);
    }

    #[test]
    fn interp_of_this_machines_shell() {
        // /bin/sh on the build host is dynamically linked (Debian's dash).
        let head = read_head("/bin/sh").unwrap();
        let loader = elf_interp(&head).expect("/bin/sh names a loader");
        assert!(std::path::Path::new(loader).exists(), "{loader}");
        // This binary is static: no loader.
        assert_eq!(elf_interp(&read_head("/proc/self/exe").unwrap()), None);
    }

    #[test]
    fn maps_code_mappings() {
        let maps = "\
55d0c0a00000-55d0c0a28000 r--p 00000000 fd:01 1835082                    /usr/lib/systemd/systemd
55d0c0a28000-55d0c0b00000 r-xp 00028000 fd:01 1835082                    /usr/lib/systemd/systemd
7f0000000000-7f0000001000 r-xp 00000000 103:02 42                         /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000002000-7f0000003000 r-xp 00000000 00:1a 77                          /opt/with space/lib.so
7f0000004000-7f0000005000 r-xp 00000000 00:00 0 
7f0000006000-7f0000007000 rw-p 00000000 00:00 0                          [heap]
7ffd00000000-7ffd00001000 r-xp 00000000 00:00 0                          [vdso]
7f0000008000-7f0000009000 r-xp 00000000 08:01 99                         /old/lib.so (deleted)
garbage
7f00-7f01 r-xp 0 zz:01 1 /bad/dev
";
        let got: Vec<_> = code_mappings(maps).collect();
        assert_eq!(
            got,
            [
                Mapping { major: 0xfd, minor: 1, ino: 1_835_082, path: "/usr/lib/systemd/systemd" },
                Mapping { major: 0x103, minor: 2, ino: 42, path: "/usr/lib/x86_64-linux-gnu/libc.so.6" },
                Mapping { major: 0, minor: 0x1a, ino: 77, path: "/opt/with space/lib.so" },
                Mapping { major: 8, minor: 1, ino: 99, path: "/old/lib.so (deleted)" },
            ]
        );
    }

    #[test]
    fn this_machines_facts() {
        let f = Facts::read();
        let me = rules::inode_key("/proc/self/exe").unwrap();
        assert!(f.protected.iter().any(|p| p.key == me && p.what == What::SelfExe), "{f:?}");
        let sh = rules::inode_key("/bin/sh").unwrap();
        assert!(f.protected.iter().any(|p| p.key == sh), "{f:?}");
        let loader = elf_interp(&read_head("/bin/sh").unwrap()).unwrap().to_owned();
        let loader = rules::inode_key(&loader).unwrap();
        assert!(f.protected.iter().any(|p| p.key == loader), "{f:?}");
    }
}
