//! The agent's own rule following. Rules name files, resolved to inodes; when a denied
//! file is replaced, the rule must reach the new inode. Where a kernel program does it
//! at the rename (the `follow` hook of lsm, fmodret and kprobe), there is no window.
//! Where none does (the tracepoint tier), and for a file replaced by unlink and create
//! (which no hook sees as a replacement), the agent watches the parent directory of
//! every configured path and re-resolves the path when a name in it changes: the new
//! inode is denied from then on, with a window between the change and the update.
//!
//! Without the kernel's follow hook nothing removes the entry of a deleted inode, and
//! the filesystem may give its number to an unrelated new file, which the stale entry
//! would then deny. So there the agent pins every inode it denies by path (an O_PATH
//! descriptor keeps the inode, and its number, alive) and, once the inode has no links
//! left, removes the entry before it lets go of the pin.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::abi::{InodeKey, InodeRule};
use crate::bpf::{self, Map};
use crate::config::{PathRule, Policy};
use crate::ladder::Class;
use crate::maps::Maps;
use crate::rules;

/// How often pinned inodes are checked for having been deleted.
const SWEEP: Duration = Duration::from_secs(1);
/// Pins checked per periodic sweep: with 20,000 rules a whole sweep every second
/// would be 20,000 `fstat`s a second. Checking late is safe: a pinned inode keeps its
/// number until it is swept, so no other file can take it meanwhile.
const SWEEP_BATCH: usize = 1024;
/// Descriptors kept free for everything else when the pins raise the agent's limit.
const SPARE_FDS: u64 = 256;

/// An inode that carries a rule, held open so that its number cannot be reused.
struct Pin {
    key: InodeKey,
    fd: OwnedFd,
}

/// One configured path (16 bytes: a policy may have 20,000 of them).
struct Watched<'p> {
    rule: &'p PathRule,
    /// The watch of its parent directory.
    wd: i32,
    class: Class,
}

/// A rule the agent moved to a new inode; the caller logs it.
pub struct Followed<'p> {
    pub class: Class,
    pub rule: &'p PathRule,
    /// The rule's path.
    pub path: &'p str,
    pub key: InodeKey,
}

/// The watches (and pins) of one policy.
pub struct Watcher<'p> {
    fd: OwnedFd,
    policy: &'p Policy,
    watched: Vec<Watched<'p>>,
    /// When pinning, per watched path: the inode its path named when last resolved,
    /// held open (its key is read back from it when needed).
    pins: Vec<Option<OwnedFd>>,
    /// Inodes replaced at their path but still linked elsewhere: still denied, still
    /// pinned, until they are deleted too.
    retired: Vec<(Class, u32, Pin)>,
    /// No kernel program forgets deleted inodes: the agent pins and sweeps.
    pinning: bool,
    last_sweep: Instant,
    /// Where the next periodic sweep of `watched` starts.
    cursor: usize,
}

impl<'p> Watcher<'p> {
    /// Watches the parent directory of every `deny_open` and `deny_exec` path (a
    /// directory that cannot be watched is logged and skipped); pins their inodes when
    /// `kernel_forgets` is false.
    pub fn new(policy: &'p Policy, maps: &Maps, kernel_forgets: bool) -> Result<Watcher<'p>, Errno> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        let mut w = Watcher {
            fd,
            policy,
            watched: Vec::with_capacity(policy.open.len() + policy.exec.len()),
            pins: Vec::new(),
            retired: Vec::new(),
            pinning: !kernel_forgets,
            last_sweep: Instant::now(),
            cursor: 0,
        };
        let rules = policy.open.iter().map(|r| (Class::Open, r)).chain(policy.exec.iter().map(|r| (Class::Exec, r)));
        // Long lists name many files of one directory in a row: one watch serves them.
        let mut last: Option<(&Path, i32)> = None;
        for (class, rule) in rules {
            let path = policy.path(rule);
            let Some(parent) = Path::new(path).parent() else { continue };
            let wd = match last {
                Some((dir, wd)) if dir == parent => wd,
                _ => {
                    let flags = WatchFlags::CREATE | WatchFlags::MOVED_TO | WatchFlags::DELETE | WatchFlags::ONLYDIR;
                    match inotify::add_watch(&w.fd, parent, flags) {
                        Ok(wd) => wd,
                        Err(e) => {
                            log::warn!("cannot watch {} for replacements of {path}: {e}", parent.display());
                            continue;
                        }
                    }
                }
            };
            last = Some((parent, wd));
            w.watched.push(Watched { rule, wd, class });
        }
        if w.pinning {
            // Never take the descriptors the agent itself needs: pins beyond the room
            // are not made (their rules still hold; see room_for_pins).
            let room = room_for_pins(w.watched.len());
            w.pins.resize_with(w.watched.len(), || None);
            for i in 0..w.watched.len().min(room) {
                if let Err(e) = w.resolve(i, maps) {
                    log::warn!("pinning {}: {e}", policy.path(w.watched[i].rule));
                }
            }
            if room < w.watched.len() {
                log::warn!(
                    "{} of {} rule paths not pinned (no room under the limit on open files): a deleted \
                     file's inode number could be given to a new file while the rule holds it",
                    w.watched.len() - room,
                    w.watched.len()
                );
            }
        }
        Ok(w)
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads the pending directory events and re-resolves every rule whose name
    /// changed; returns what moved. Never blocks.
    pub fn handle(&mut self, maps: &Maps) -> heapless::Vec<Followed<'p>, 16> {
        let mut changed = heapless::Vec::<(i32, heapless::Vec<u8, 256>), 16>::new();
        let mut buf = [core::mem::MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        let mut overflow = false;
        loop {
            match reader.next() {
                Ok(ev) if ev.events().contains(ReadFlags::QUEUE_OVERFLOW) => overflow = true,
                Ok(ev) => {
                    let name = ev.file_name().map(|n| n.to_bytes()).unwrap_or_default();
                    let entry = (ev.wd(), heapless::Vec::from_slice(name).unwrap_or_default());
                    if !changed.contains(&entry) && changed.push(entry).is_err() {
                        overflow = true; // more names than we track: look at every rule
                    }
                }
                Err(Errno::AGAIN) | Err(Errno::INTR) => break,
                Err(e) => {
                    log::warn!("reading directory events: {e}");
                    break;
                }
            }
        }
        let mut out = heapless::Vec::new();
        for i in 0..self.watched.len() {
            let w = &self.watched[i];
            let name = Path::new(self.policy.path(w.rule)).file_name().map(OsStr::as_bytes).unwrap_or_default();
            if !(overflow || changed.iter().any(|(wd, n)| *wd == w.wd && n.as_slice() == name)) {
                continue;
            }
            match self.resolve(i, maps) {
                Ok(Some(key)) => {
                    let w = &self.watched[i];
                    let _ = out.push(Followed { class: w.class, rule: w.rule, path: self.policy.path(w.rule), key });
                }
                Ok(None) => {}
                Err(e) => log::warn!("re-resolving {}: {e}", self.policy.path(self.watched[i].rule)),
            }
        }
        if !changed.is_empty() || overflow {
            self.sweep(maps);
        }
        out
    }

    /// Once a second (and after directory events): drops the entries of pinned inodes
    /// that have been deleted, then their pins.
    pub fn tick(&mut self, maps: &Maps) {
        if self.pinning && self.last_sweep.elapsed() >= SWEEP {
            self.sweep_some(maps, SWEEP_BATCH);
        }
    }

    fn sweep(&mut self, maps: &Maps) {
        self.sweep_some(maps, usize::MAX);
    }

    /// Checks up to `batch` pins of `watched` (from the cursor on, round robin) and
    /// every retired one.
    fn sweep_some(&mut self, maps: &Maps, batch: usize) {
        self.last_sweep = Instant::now();
        if !self.pinning {
            return;
        }
        let Ok(map) = maps.map(c"deny_inodes") else { return };
        let deleted = |pin: &Pin| rustix::fs::fstat(&pin.fd).is_ok_and(|st| st.st_nlink == 0);
        let n = self.watched.len();
        let (start, count) = if batch >= n { (0, n) } else { (self.cursor % n.max(1), batch) };
        self.cursor = (start + count) % n.max(1);
        for i in (start..start + count).map(|i| i % n) {
            let Some(fd) = &self.pins[i] else { continue };
            let Ok(st) = rustix::fs::fstat(fd) else { continue };
            if st.st_nlink == 0 {
                let (w, fd) = (&self.watched[i], self.pins[i].take().unwrap_or_else(|| unreachable!()));
                forget(&map, Pin { key: rules::key_of_stat(&st), fd }, w.class, w.rule.line);
            }
        }
        let mut i = 0;
        while i < self.retired.len() {
            if deleted(&self.retired[i].2) {
                let (class, line, pin) = self.retired.swap_remove(i);
                forget(&map, pin, class, line);
            } else {
                i += 1;
            }
        }
    }

    /// Gives rule `i` to the inode its path names now, if that inode lacks it; returns
    /// the inode when it was a new one.
    fn resolve(&mut self, i: usize, maps: &Maps) -> Result<Option<InodeKey>, Errno> {
        let w = &self.watched[i];
        let fd = match rustix::fs::open(self.policy.path(w.rule), OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None), // removed; a later create comes back here
            Err(e) => return Err(e),
        };
        let key = rules::inode_key_of(&fd)?;
        let pinned = self.pins.get(i).and_then(Option::as_ref);
        if pinned.is_some_and(|p| rules::inode_key_of(p).ok() == Some(key)) {
            return Ok(None);
        }
        let map = maps.map(c"deny_inodes").map_err(|e| e.errno)?;
        maps.mark_inode(key.ino).map_err(|e| e.errno)?; // before its entry: the filter must let it through
        let added = grant(&map, key, w.class, w.rule.line).map_err(|e| e.errno)?;
        if self.pinning {
            let (class, line) = (w.class, w.rule.line);
            if let Some(old) = self.pins[i].replace(fd) {
                // Replaced at its path; deleted (swept) or still linked elsewhere.
                if let Ok(old_key) = rules::inode_key_of(&old) {
                    self.retired.push((class, line, Pin { key: old_key, fd: old }));
                }
            }
        }
        Ok(added.then_some(key))
    }
}

/// Makes room for `pins` pinned inodes under the limit on open descriptors and
/// returns how many fit while SPARE_FDS stay free for the agent's own work (the ring
/// buffer, syslog, canaries): 1024 (a common soft limit) or 4096 (the hard limit
/// init gets) hold fewer than a long deny list has. The hard limit is raised too where
/// the agent may (CAP_SYS_RESOURCE); otherwise the soft one up to it.
fn room_for_pins(pins: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let need = pins as u64 + SPARE_FDS;
    let limit = getrlimit(Resource::Nofile);
    let mut current = limit.current;
    if current.is_some_and(|cur| cur < need) {
        let raised = Rlimit { current: Some(need), maximum: Some(limit.maximum.map_or(need, |max| max.max(need))) };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            current = Some(need);
        } else {
            let capped = limit.maximum.map_or(need, |max| max.min(need));
            if setrlimit(Resource::Nofile, Rlimit { current: Some(capped), maximum: limit.maximum }).is_ok() {
                current = Some(capped);
            }
        }
    }
    let Some(current) = current else { return pins }; // no limit
    let open = std::fs::read_dir("/proc/self/fd").map_or(64, |d| d.count()) as u64;
    usize::try_from(current.saturating_sub(open + SPARE_FDS)).unwrap_or(usize::MAX).min(pins)
}

/// Puts rule `line` of `class` on `key`'s entry; false when it was there already.
fn grant(map: &Map<'_>, key: InodeKey, class: Class, line: u32) -> Result<bool, bpf::Error> {
    let mut raw = [0u8; InodeRule::SIZE];
    let mut value = if map.lookup(&key.to_bytes(), &mut raw)? { InodeRule::from_bytes(raw) } else { InodeRule::default() };
    let slot = if class == Class::Exec { &mut value.exec_rule } else { &mut value.open_rule };
    if *slot != 0 {
        return Ok(false);
    }
    *slot = line;
    map.update(&key.to_bytes(), &value.to_bytes())?;
    Ok(true)
}

/// A pinned inode was deleted: take rule `line` of `class` off its entry (removing the
/// entry when it denies nothing else), and only then let the inode go.
fn forget(map: &Map<'_>, pin: Pin, class: Class, line: u32) {
    let key = pin.key.to_bytes();
    let mut raw = [0u8; InodeRule::SIZE];
    let result = map.lookup(&key, &mut raw).and_then(|found| {
        if !found {
            return Ok(());
        }
        let mut value = InodeRule::from_bytes(raw);
        let slot = if class == Class::Exec { &mut value.exec_rule } else { &mut value.open_rule };
        if *slot == line {
            *slot = 0;
        }
        if value == InodeRule::default() {
            map.delete(&key)
        } else {
            map.update(&key, &value.to_bytes())
        }
    });
    match result {
        Ok(()) => log::debug!("forgot deleted inode {}:{} ino={} (rule {line})", pin.key.dev >> 20, pin.key.dev & 0xf_ffff, pin.key.ino),
        Err(e) => log::warn!("forgetting a deleted inode: {e}"),
    }
    drop(pin);
}
