//! The agent's own rule following. Rules name files, resolved to inodes; when a denied
//! file is replaced, the rule must reach the new inode. Where a kernel program does it
//! at the rename (the `follow` hook of lsm, fmodret and kprobe), there is no window.
//! A file replaced by unlink and create no hook sees as a replacement: the agent
//! re-resolves the path, with a window between the change and the update.
//!
//! Where the kernel's follow hook runs, it also reports every name a denied file loses
//! (unlink, rename away), and only then does the agent watch the path's directory,
//! until the path names another file. A directory watch is not free: while any inode
//! of a filesystem is watched, every open and close on it takes fsnotify's slow path
//! (about 3 % of an open+close, measured). Without the hook (the tracepoint tier) the
//! agent watches the parent directory of every configured path, all the time.
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
use crate::guard::{self, Protected};
use crate::ladder::Class;
use crate::map_names::MapName;
use crate::maps::Maps;
use crate::rules;
use crate::targets;

/// How often pinned inodes are checked for having been deleted.
const SWEEP: Duration = Duration::from_secs(1);
/// Pins checked per periodic sweep: with 20,000 rules a whole sweep every second
/// would be 20,000 `fstat`s a second. Checking late is safe: a pinned inode keeps its
/// number until it is swept, so no other file can take it meanwhile.
const SWEEP_BATCH: usize = 1024;
/// After reports of lost names were lost: when to look at every path again (the
/// hooks report before a name goes; by then it is gone).
const LOOK_AGAIN: Duration = Duration::from_secs(1);
/// How often a deleted inode that another process holds is looked at again.
const HELD_LOOK_AGAIN: Duration = Duration::from_secs(10);
/// Descriptors kept free for everything else when the pins raise the agent's limit.
const SPARE_FDS: u64 = 256;

/// An inode that carries a rule, held open so that its number cannot be reused.
struct Pin {
    key: InodeKey,
    fd: OwnedFd,
}

/// One configured path (24 bytes: a policy may have 20,000 of them).
struct Watched<'p> {
    rule: &'p PathRule,
    /// The watch of its parent directory; NO_WATCH while the path is not watched.
    wd: i32,
    /// Where the path leads through a symlink to another directory: the watch of that
    /// directory (a file renamed over the target there changes what the path names).
    /// Kept while every directory is watched (no kernel following).
    target_wd: i32,
    class: Class,
}

/// `Watched::wd` of a path whose directory is not watched.
const NO_WATCH: i32 = -1;

/// A rule the agent moved to a new inode; the caller logs it.
pub struct Followed<'p> {
    pub class: Class,
    pub rule: &'p PathRule,
    /// The rule's path.
    pub path: &'p str,
    pub key: InodeKey,
}

/// What a path named when it was re-resolved.
#[derive(Clone, Copy)]
struct Resolved {
    /// Its inode; None when nothing has the name.
    now: Option<InodeKey>,
    /// Whether that inode got the rule just now.
    added: bool,
}

/// The watches (and pins) of one policy.
pub struct Watcher<'p> {
    fd: OwnedFd,
    policy: &'p Policy,
    watched: Vec<Watched<'p>>,
    /// When pinning, per watched path: the inode its path named when last resolved,
    /// held open (its key is read back from it when needed).
    pins: Vec<Option<OwnedFd>>,
    /// The bricking guard's files, read when a rule first follows (most watchers never
    /// do): no rule follows onto one (unless `allow_dangerous_rules`), as none may
    /// name one at start.
    protected: std::cell::OnceCell<Vec<Protected>>,
    /// The inodes a path was refused on (rule index, inode), each warned about once.
    refused: Vec<(usize, InodeKey)>,
    /// Inodes replaced at their path but still linked elsewhere: still denied, still
    /// pinned, until they are deleted too.
    retired: Vec<(Class, u32, Pin)>,
    /// No kernel program follows replacements or forgets deleted inodes: the agent
    /// watches every directory from the start, pins and sweeps. Otherwise it watches
    /// only the paths in `waiting`.
    pinning: bool,
    /// Without pinning: the paths (indexes of `watched`) whose file lost its name, and
    /// the inode that lost it (None: the path named nothing when looked at). Each is
    /// watched until it names another inode. The hooks report before the name goes, so
    /// a path that still names the reported inode waits too.
    waiting: Vec<(usize, Option<InodeKey>)>,
    /// When to look at every path again after reports were lost.
    look_again_at: Option<Instant>,
    last_sweep: Instant,
    /// While a deleted inode with a rule is held by another process: when to look at
    /// the deleted ones again (see `sweep_some`).
    held_look_at: Option<Instant>,
    /// Where the next periodic sweep of `watched` starts.
    cursor: usize,
}

impl<'p> Watcher<'p> {
    /// Lists every `deny_open` and `deny_exec` path. When the kernel does not follow
    /// (`kernel_follows` false), watches the parent directory of each (a directory that
    /// cannot be watched is logged and skipped) and pins their inodes; otherwise
    /// watches nothing until a file loses its name ([`Watcher::lost_names`]), but looks
    /// at every path once, at the first [`Watcher::tick`].
    pub fn new(policy: &'p Policy, maps: &Maps, kernel_follows: bool) -> Result<Watcher<'p>, Errno> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        let mut w = Watcher {
            fd,
            policy,
            watched: Vec::with_capacity(policy.open.len() + policy.exec.len()),
            pins: Vec::new(),
            protected: std::cell::OnceCell::new(),
            refused: Vec::new(),
            retired: Vec::new(),
            pinning: !kernel_follows,
            waiting: Vec::new(),
            // Once at the start (the first tick): a file may have lost its name since
            // the rules were resolved, or while a reload was tried and failed (the
            // watcher of the policy kept is a new one).
            look_again_at: kernel_follows.then(Instant::now),
            last_sweep: Instant::now(),
            held_look_at: None,
            cursor: 0,
        };
        let rules = policy.open.iter().map(|r| (Class::Open, r)).chain(policy.exec.iter().map(|r| (Class::Exec, r)));
        // Long lists name many files of one directory in a row: one watch serves them.
        let mut last: Option<(&Path, i32)> = None;
        for (class, rule) in rules {
            let path = policy.path(rule);
            let Some(parent) = Path::new(path).parent() else { continue };
            let wd = match last {
                _ if kernel_follows => NO_WATCH,
                Some((dir, wd)) if dir == parent => wd,
                _ => match w.add_watch(parent) {
                    Ok(wd) => wd,
                    Err(e) => {
                        log::warn!("cannot watch {} for replacements of {path}: {e}", parent.display());
                        continue;
                    }
                },
            };
            last = Some((parent, wd));
            let target_wd = if kernel_follows { NO_WATCH } else { w.watch_target_dir(path, parent) };
            w.watched.push(Watched { rule, wd, target_wd, class });
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

    /// Watches the directory `path` leads to through symlinks, when that is not
    /// `parent` (its own); NO_WATCH otherwise or when it cannot.
    fn watch_target_dir(&self, path: &str, parent: &Path) -> i32 {
        let Ok(target) = std::fs::canonicalize(path) else { return NO_WATCH };
        match target.parent() {
            Some(dir) if dir != parent && std::fs::canonicalize(parent).ok().as_deref() != Some(dir) => {
                self.add_watch(dir).unwrap_or_else(|e| {
                    log::warn!("cannot watch {} for replacements of {path} (its target): {e}", dir.display());
                    NO_WATCH
                })
            }
            _ => NO_WATCH,
        }
    }

    fn add_watch(&self, dir: &Path) -> Result<i32, Errno> {
        let flags = WatchFlags::CREATE | WatchFlags::MOVED_TO | WatchFlags::DELETE | WatchFlags::ONLYDIR;
        inotify::add_watch(&self.fd, dir, flags)
    }

    /// The kernel reported that denied files lost names: `gone` are their inodes, and
    /// `lost` says that reports were lost (the ring buffer was full, or another
    /// generation acted). Re-resolves every path not watched yet: one that names a new
    /// file gets the rule at once (returned); one that names nothing or a `gone` inode
    /// (the name is about to go) is watched until it names another inode. With
    /// reports lost, only the paths that name nothing are watched, and every path is
    /// looked at again a second later, when the names those reports were about are
    /// gone. Never blocks.
    pub fn lost_names(&mut self, gone: &[InodeKey], lost: bool, maps: &Maps) -> heapless::Vec<Followed<'p>, 16> {
        let mut out = heapless::Vec::new();
        if self.pinning {
            return out; // every directory is watched already
        }
        log::debug!("re-resolving the rule paths: {} reported lost name(s){}", gone.len(), if lost { ", and reports lost" } else { "" });
        if lost {
            self.look_again_at = Some(Instant::now() + LOOK_AGAIN);
        }
        for i in 0..self.watched.len() {
            if self.watched[i].wd != NO_WATCH {
                continue;
            }
            let unlinking = match self.recheck(i, maps, &mut out) {
                Ok(Resolved { now: None, .. }) => None,
                // Still denied and reported: its name is about to go.
                Ok(Resolved { now: Some(key), added: false }) if gone.contains(&key) => Some(key),
                Ok(_) => continue,
                Err(e) => {
                    log::warn!("re-resolving {}: {e}", self.policy.path(self.watched[i].rule));
                    continue;
                }
            };
            let parent = Path::new(self.policy.path(self.watched[i].rule)).parent().unwrap_or(Path::new("/"));
            match self.add_watch(parent) {
                Ok(wd) => self.watched[i].wd = wd,
                Err(e) => {
                    log::warn!("cannot watch {} for a new {}: {e}", parent.display(), self.policy.path(self.watched[i].rule));
                    continue;
                }
            }
            self.waiting.push((i, unlinking));
            // A file made before the watch: look once more.
            if let Err(e) = self.recheck(i, maps, &mut out) {
                log::warn!("re-resolving {}: {e}", self.policy.path(self.watched[i].rule));
            }
        }
        out
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
            let in_own_dir = w.wd != NO_WATCH && changed.iter().any(|(wd, n)| *wd == w.wd && n.as_slice() == name);
            let in_target_dir = w.target_wd != NO_WATCH && changed.iter().any(|(wd, _)| *wd == w.target_wd);
            if !(in_own_dir || in_target_dir || (overflow && w.wd != NO_WATCH)) {
                continue;
            }
            if let Err(e) = self.recheck(i, maps, &mut out) {
                log::warn!("re-resolving {}: {e}", self.policy.path(self.watched[i].rule));
            }
        }
        if !changed.is_empty() || overflow {
            self.sweep(maps);
        }
        out
    }

    /// Re-resolves path `i`, adds what moved to `out`, and ends its wait once it names
    /// a new file: one that just got the rule, or an inode other than the one that
    /// lost the name (a new file may get a deleted one's number). Returns what it names.
    fn recheck(&mut self, i: usize, maps: &Maps, out: &mut heapless::Vec<Followed<'p>, 16>) -> Result<Resolved, Errno> {
        let resolved = self.resolve(i, maps)?;
        let Resolved { now, added } = resolved;
        let w = &self.watched[i];
        if let (true, Some(key)) = (added, now) {
            let _ = out.push(Followed { class: w.class, rule: w.rule, path: self.policy.path(w.rule), key });
        }
        if let Some(at) = self.waiting.iter().position(|&(j, gone)| j == i && now.is_some() && (added || now != gone)) {
            self.waiting.swap_remove(at);
            self.unwatch(i);
        }
        Ok(resolved)
    }

    /// Stops watching path `i`'s directory, unless another waiting path shares it.
    fn unwatch(&mut self, i: usize) {
        let wd = core::mem::replace(&mut self.watched[i].wd, NO_WATCH);
        if wd != NO_WATCH && !self.watched.iter().any(|w| w.wd == wd || w.target_wd == wd) {
            if let Err(e) = inotify::remove_watch(&self.fd, wd) {
                log::debug!("removing the watch of {}: {e}", self.policy.path(self.watched[i].rule));
            }
        }
    }

    /// When [`Watcher::tick`] has something to do next that no event announces (a
    /// second look, the first one at once): the caller waits no longer than that.
    pub fn due(&self) -> Option<Instant> {
        self.look_again_at
    }

    /// Called after every wait. Once a second (and after directory events): drops the
    /// entries of pinned inodes that have been deleted, then their pins. A second look
    /// after lost reports (their names are gone by then); returns what moved.
    pub fn tick(&mut self, maps: &Maps) -> heapless::Vec<Followed<'p>, 16> {
        if self.pinning && self.last_sweep.elapsed() >= SWEEP {
            self.sweep_some(maps, SWEEP_BATCH);
        }
        match self.look_again_at {
            Some(at) if Instant::now() >= at => {
                self.look_again_at = None;
                self.lost_names(&[], false, maps)
            }
            _ => heapless::Vec::new(),
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
        let Ok(map) = maps.map(MapName::DenyInodes) else { return };
        // A deleted inode another process still holds (a descriptor, even O_PATH, or a
        // mapping) can be opened again through /proc/PID/fd: it keeps its rule, and is
        // looked at again a while later (a look reads every process's descriptors).
        let now = Instant::now();
        let may_forget = self.held_look_at.is_none_or(|at| now >= at);
        let mut held = false;
        let mut gone = |st: &rustix::fs::Stat| {
            if !may_forget {
                return false;
            }
            let elsewhere = held_elsewhere(st);
            held |= elsewhere;
            !elsewhere
        };
        let n = self.watched.len();
        let (start, count) = if batch >= n { (0, n) } else { (self.cursor % n.max(1), batch) };
        self.cursor = (start + count) % n.max(1);
        for i in (start..start + count).map(|i| i % n) {
            let Some(fd) = &self.pins[i] else { continue };
            let Ok(st) = rustix::fs::fstat(fd) else { continue };
            if st.st_nlink == 0 && gone(&st) {
                let (w, fd) = (&self.watched[i], self.pins[i].take().unwrap_or_else(|| unreachable!()));
                forget(&map, Pin { key: rules::key_of_stat(&st), fd }, w.class, w.rule.line);
            }
        }
        let mut i = 0;
        while i < self.retired.len() {
            if rustix::fs::fstat(&self.retired[i].2.fd).is_ok_and(|st| st.st_nlink == 0 && gone(&st)) {
                let (class, line, pin) = self.retired.swap_remove(i);
                forget(&map, pin, class, line);
            } else {
                i += 1;
            }
        }
        if held {
            self.held_look_at = Some(now + HELD_LOOK_AGAIN);
        } else if may_forget {
            self.held_look_at = None;
        }
    }

    /// Gives rule `i` to the inode its path names now, if that inode lacks it and the
    /// start-up checks would accept a rule on it; a refused inode counts as nothing
    /// at the path (it stays watched, for a file that can take the rule).
    fn resolve(&mut self, i: usize, maps: &Maps) -> Result<Resolved, Errno> {
        let w = &self.watched[i];
        let path = self.policy.path(w.rule);
        let fd = match rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(Resolved { now: None, added: false }), // a later create comes back here
            Err(e) => return Err(e),
        };
        let target = targets::target_of_fd(&fd)?;
        let key = target.key;
        let map = maps.map(MapName::DenyInodes).map_err(|e| e.errno)?;
        // An inode that has the rule already was judged when it got it.
        let has_it = holds(&map, key, w.class).map_err(|e| e.errno)?;
        if let Err(reason) = if has_it { Ok(()) } else { self.admissible(w.class, &target) } {
            if !self.refused.contains(&(i, key)) {
                self.refused.push((i, key));
                let name = if w.class == Class::Exec { "deny_exec" } else { "deny_open" };
                log::warn!("follow refused: line {}: {name} {path} now names {reason}; the rule stays where it was", w.rule.line);
            }
            return Ok(Resolved { now: None, added: false });
        }
        if !self.pinning {
            // Nothing to keep open: the kernel forgets deleted inodes.
            if has_it {
                return Ok(Resolved { now: Some(key), added: false });
            }
            maps.mark_inode(key.ino).map_err(|e| e.errno)?; // before its entry: the filter must let it through
            let added = grant(&map, key, w.class, w.rule.line).map_err(|e| e.errno)?;
            return Ok(Resolved { now: Some(key), added });
        }
        let pinned = self.pins.get(i).and_then(Option::as_ref);
        if pinned.is_some_and(|p| rules::inode_key_of(p).ok() == Some(key)) {
            return Ok(Resolved { now: Some(key), added: false });
        }
        maps.mark_inode(key.ino).map_err(|e| e.errno)?; // before its entry: the filter must let it through
        let added = grant(&map, key, w.class, w.rule.line).map_err(|e| e.errno)?;
        let (class, line) = (w.class, w.rule.line);
        if let Some(old) = self.pins[i].replace(fd) {
            // Replaced at its path; deleted (swept) or still linked elsewhere.
            if let Ok(old_key) = rules::inode_key_of(&old) {
                self.retired.push((class, line, Pin { key: old_key, fd: old }));
            }
        }
        Ok(Resolved { now: Some(key), added })
    }

    /// Why a rule of `class` may not follow onto `t` (what `targets::check_with` says at
    /// start), if it may not.
    fn admissible(&self, class: Class, t: &targets::Target) -> Result<(), String> {
        targets::judge(class == Class::Exec, t)?;
        match self.protected.get_or_init(|| guard::Facts::read().protected).iter().find(|p| p.key == t.key) {
            Some(p) if !self.policy.allow_dangerous_rules => Err(format!("{}: denying it can leave the device unable to boot or be repaired", p.what)),
            _ => Ok(()),
        }
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

/// Whether `key`'s entry denies `class` (by any rule).
fn holds(map: &Map<'_>, key: InodeKey, class: Class) -> Result<bool, bpf::Error> {
    let mut raw = [0u8; InodeRule::SIZE];
    if !map.lookup(&key.to_bytes(), &mut raw)? {
        return Ok(false);
    }
    let value = InodeRule::from_bytes(raw);
    Ok(if class == Class::Exec { value.exec_rule != 0 } else { value.open_rule != 0 })
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

/// Whether a process other than this one holds the inode `st` describes: a descriptor
/// (any kind, O_PATH too) in /proc/PID/fd, or a mapping of a deleted file in
/// /proc/PID/maps (by inode number: a false match keeps a rule a while longer). A
/// descriptor in flight in a socket is in no table: not seen (README: limits).
fn held_elsewhere(st: &rustix::fs::Stat) -> bool {
    let me = std::process::id().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else { return true };
    let ino = st.st_ino.to_string();
    for p in procs.flatten() {
        let pid = p.file_name();
        let Some(pid) = pid.to_str().filter(|s| s.bytes().all(|b| b.is_ascii_digit()) && *s != me) else { continue };
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for fd in fds.flatten() {
                let same = rustix::fs::stat(fd.path().as_path()).is_ok_and(|o| o.st_dev == st.st_dev && o.st_ino == st.st_ino);
                if same {
                    return true;
                }
            }
        }
        if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            if maps.lines().any(|l| l.ends_with(" (deleted)") && l.split_whitespace().nth(4) == Some(ino.as_str())) {
                return true;
            }
        }
    }
    false
}

/// The agent's half of following, on this machine's kernel: real maps and inotify,
/// with the kernel's reports of lost names stood in for by direct calls (the hooks
/// that make them are proven in the VM, rootfs/guest/run.sh). Needs root (BPF maps).
#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    use crate::abi::InodeRule;
    use crate::maps::Rules;
    use crate::scratch::TempDir;

    /// The directory watches the watcher holds, as the kernel lists them.
    fn watches(w: &Watcher<'_>) -> usize {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", w.fd.as_raw_fd())).unwrap();
        info.lines().filter(|l| l.starts_with("inotify wd:")).count()
    }

    fn denied(maps: &Maps, path: &str) -> bool {
        holds(&maps.map(MapName::DenyInodes).unwrap(), rules::inode_key(path).unwrap(), Class::Open).unwrap()
    }

    /// Replaces `path` by unlink and create. The old file stays open (returned), so the
    /// new one cannot get its inode number: no kernel program forgets the old entry here.
    fn recreate(path: &str) -> std::fs::File {
        let old = std::fs::File::open(path).unwrap();
        std::fs::remove_file(path).unwrap();
        std::fs::write(path, "new\n").unwrap();
        old
    }

    /// A new file made at the waiting `path`: the watch reports it, it gets the rule,
    /// and the watch goes.
    fn made_and_followed(w: &mut Watcher<'_>, maps: &Maps, path: &str) {
        std::fs::write(path, "new\n").unwrap();
        assert_eq!(w.handle(maps).len(), 1);
        assert!(denied(maps, path));
        assert_eq!(watches(w), 0);
    }

    /// A policy denying `a` and `b` of `dir`, and maps holding both.
    fn setup(dir: &TempDir) -> (Box<Policy>, Maps) {
        let (a, b) = (dir.path("a"), dir.path("b"));
        std::fs::write(&a, "a\n").unwrap();
        std::fs::write(&b, "b\n").unwrap();
        let policy = crate::config::parse(&format!("deny_open = {a}\ndeny_open = {b}\n")).unwrap();
        let rule = |line| InodeRule { open_rule: line, exec_rule: 0 };
        let inodes = vec![(rules::inode_key(&a).unwrap(), rule(1)), (rules::inode_key(&b).unwrap(), rule(2))];
        let rules = Rules { inodes: &inodes, net: &[], ringbuf_size: 4096, exec_allow: &Default::default(), deny_anon_exec: false };
        let maps = Maps::create(&rules, &crate::bpf::BtfChoice::Kernel, None, 1).unwrap();
        (policy, maps)
    }

    #[test]
    fn with_the_kernel_following_a_directory_is_watched_only_while_a_path_waits() {
        let dir = TempDir::new("follow-lazy");
        let (a, b) = (dir.path("a"), dir.path("b"));
        let (policy, maps) = setup(&dir);
        let mut w = Watcher::new(&policy, &maps, true).unwrap();
        assert_eq!(watches(&w), 0, "nothing watched before a name is lost");
        let key_a = rules::inode_key(&a).unwrap();

        // Reported before the name goes: the path still names the reported inode.
        assert!(w.lost_names(&[key_a], false, &maps).is_empty());
        assert_eq!(watches(&w), 1, "watched until the path names another file");
        assert_eq!(w.handle(&maps).len(), 0, "no event yet");
        assert_eq!(watches(&w), 1);
        let _old = recreate(&a);
        let moved = w.handle(&maps);
        assert_eq!(moved.len(), 1);
        assert_eq!((moved[0].path, moved[0].key), (a.as_str(), rules::inode_key(&a).unwrap()));
        assert!(denied(&maps, &a), "the new file has the rule");
        assert_eq!(watches(&w), 0, "the watch went with the wait");

        // A report about some other inode leaves paths that name denied files alone.
        assert!(w.lost_names(&[InodeKey { dev: 0, ino: 1 }], false, &maps).is_empty());
        assert_eq!(watches(&w), 0);

        // Unlinked and made again before the agent looked: the rule at once, no watch.
        let old = rules::inode_key(&a).unwrap();
        let _older = recreate(&a);
        let moved = w.lost_names(&[old], false, &maps);
        assert_eq!(moved.len(), 1);
        assert!(denied(&maps, &a));
        assert_eq!(watches(&w), 0);

        // Reports were lost: a path that names nothing is watched, the others not.
        let _old_b = std::fs::File::open(&b).unwrap();
        std::fs::remove_file(&b).unwrap();
        assert!(w.lost_names(&[], true, &maps).is_empty());
        assert_eq!(watches(&w), 1);
        made_and_followed(&mut w, &maps, &b);
    }

    #[test]
    fn with_the_kernel_following_the_first_tick_looks_at_every_path() {
        let dir = TempDir::new("follow-first-tick");
        let b = dir.path("b");
        let (policy, maps) = setup(&dir);
        let mut w = Watcher::new(&policy, &maps, true).unwrap();
        assert!(w.due().is_some_and(|at| at <= Instant::now()), "the first look is due at once");
        let _old_b = std::fs::File::open(&b).unwrap(); // (see recreate)
        std::fs::remove_file(&b).unwrap(); // before the watcher looked, unreported
        assert!(w.tick(&maps).is_empty());
        assert_eq!(watches(&w), 1, "the path that names nothing is watched");
        assert!(w.tick(&maps).is_empty());
        assert_eq!(w.due(), None, "nothing more to look at");
        made_and_followed(&mut w, &maps, &b);
    }

    #[test]
    fn without_the_kernel_following_every_directory_is_watched_all_along() {
        let dir = TempDir::new("follow-eager");
        let a = dir.path("a");
        let (policy, maps) = setup(&dir);
        let mut w = Watcher::new(&policy, &maps, false).unwrap();
        assert_eq!(w.due(), None, "no look to make: every directory is watched");
        assert_eq!(watches(&w), 1, "one watch for the directory of both rules");
        assert!(w.lost_names(&[rules::inode_key(&a).unwrap()], true, &maps).is_empty(), "no reports to act on");
        let _old = recreate(&a);
        let moved = w.handle(&maps);
        assert_eq!(moved.len(), 1);
        assert!(denied(&maps, &a));
        assert_eq!(watches(&w), 1, "still watched");
    }
}
