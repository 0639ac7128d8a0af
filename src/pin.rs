//! Enforcement that outlives the agent (`pin = DIR`): the links, and the maps, of the
//! generation in force are pinned in a bpf filesystem, so that if the agent is killed
//! or crashes its programs stay attached and keep enforcing.
//!
//! ```text
//! DIR/                  created 0700 by the agent, in a bpf filesystem (the agent mounts
//!                       one on /sys/fs/bpf when DIR is directly below it and none is there)
//!   handover            the hand-over map (handover.rs), shared by every generation
//!   gen-N/              one attached generation, N its number
//!     link-TIER-HOOK-K  its links: a link holds its program, the program its maps
//!     map-NAME          its maps: events and counters for an agent that adopts it
//! ```
//!
//! (A bpf filesystem refuses names with a dot: the kernel reserves them.)
//!
//! While the agent runs exactly one generation is pinned, except during a reload: the
//! new generation is pinned before it takes over, and the old one is unpinned as it is
//! retired. An agent that starts and finds generations pinned adopts them: it names
//! itself in the pinned hand-over map, runs its own gate (whose generation shares that
//! map), pins its generation, takes over, and retires the pinned ones as a reload
//! retires the generation it replaces — unpin the links (which detaches them), drain
//! the events they left, read their counters, unpin the maps. SIGTERM retires the
//! agent's own generation the same way and removes DIR: nothing remains.

use std::path::{Path, PathBuf};

use rustix::fs::{Mode, StatFs};
use rustix::io::Errno;

use crate::bpf::{self, FdMap, MapShape};
use crate::gate::Enforcement;
use crate::handover::Handover;
use crate::map_names::MapName;

/// `f_type` of a bpf filesystem.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
/// Where bpf filesystems are mounted by convention; the only place the agent mounts one.
const SYS_FS_BPF: &str = "/sys/fs/bpf";
/// Where `--check` looks when the config has no `pin` key.
pub const DEFAULT_DIR: &str = "/sys/fs/bpf/enforce";

/// The hand-over map's pin in DIR.
const HANDOVER_PIN: &str = "handover";
const GEN_PREFIX: &str = "gen-";

/// What the pinned maps an adopting agent reads must be.
pub const EVENTS: MapShape = MapShape { map_type: bpf::MAP_RINGBUF, key_size: 0, value_size: 0 };
pub const COUNTERS: MapShape = MapShape { map_type: bpf::MAP_PERCPU_ARRAY, key_size: 4, value_size: 8 };

fn errno_text(e: Errno) -> String {
    format!("{e} (errno {})", e.raw_os_error())
}

fn on_bpffs(path: &Path) -> Result<bool, Errno> {
    let st: StatFs = rustix::fs::statfs(path)?;
    Ok(st.f_type as i64 == BPF_FS_MAGIC)
}

/// The pin directory of a running agent.
pub struct PinDir {
    path: PathBuf,
}

/// One pinned generation.
pub struct Pinned {
    pub path: PathBuf,
    pub generation: u32,
}

impl PinDir {
    /// Makes `dir` ready: its parent must be a bpf filesystem (one is mounted on
    /// /sys/fs/bpf when that is the parent and none is there); `dir` is created (0700)
    /// unless it exists as a directory. The error says why, for a `FILE:LINE:` line.
    pub fn prepare(dir: &str) -> Result<PinDir, String> {
        let path = PathBuf::from(dir);
        let parent = path.parent().unwrap_or(Path::new("/"));
        match on_bpffs(parent) {
            Ok(true) => {}
            Ok(false) | Err(_) if parent == Path::new(SYS_FS_BPF) => {
                rustix::mount::mount("bpf", SYS_FS_BPF, "bpf", rustix::mount::MountFlags::empty(), c"mode=0700")
                    .map_err(|e| format!("cannot mount a bpf filesystem on {SYS_FS_BPF}: {}", errno_text(e)))?;
                log::info!("mounted a bpf filesystem on {SYS_FS_BPF}");
            }
            Ok(false) => return Err(format!("{} is not a bpf filesystem (mount one there, or pin under {SYS_FS_BPF})", parent.display())),
            Err(e) => return Err(format!("{}: {}", parent.display(), errno_text(e))),
        }
        match rustix::fs::mkdir(&path, Mode::RWXU) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(format!("cannot create it: {}", errno_text(e))),
        }
        let st = rustix::fs::lstat(&path).map_err(|e| errno_text(e))?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
            return Err("it exists and is not a directory".into());
        }
        Ok(PinDir { path })
    }

    /// The generations pinned here, oldest first.
    pub fn generations(&self) -> Vec<Pinned> {
        generations(&self.path)
    }

    /// The pinned hand-over map, adopted (None when there is none: nothing to adopt).
    pub fn adopt_handover(&self) -> Result<Option<Handover>, String> {
        let path = self.path.join(HANDOVER_PIN);
        if !path.exists() {
            return Ok(None);
        }
        Handover::adopt(&path).map(Some).map_err(|e| {
            format!("{} holds a pinned set this agent cannot adopt ({e}): remove it (rm -r {}) to start", path.display(), self.path.display())
        })
    }

    /// Pins the agent's hand-over map (once: an adopted one is pinned already).
    pub fn pin_handover(&self, h: &Handover) -> Result<(), bpf::Error> {
        let path = self.path.join(HANDOVER_PIN);
        if path.exists() {
            return Ok(());
        }
        bpf::pin(h.map().fd(), &path)
    }

    /// Pins generation `enf`: its links and its maps (the shared hand-over map is
    /// pinned once, at DIR/handover). On failure what was pinned is removed again.
    pub fn pin(&self, enf: &Enforcement) -> Result<Pinned, String> {
        let pinned = Pinned { path: self.path.join(format!("{GEN_PREFIX}{}", enf.generation)), generation: enf.generation };
        rustix::fs::mkdir(&pinned.path, Mode::RWXU).map_err(|e| format!("{}: {}", pinned.path.display(), errno_text(e)))?;
        let pin_all = || -> Result<(), String> {
            let at = |name: String| pinned.path.join(name);
            for active in &enf.tiers {
                let mut k = 0;
                let mut last = None;
                for (hook, link) in active.links() {
                    k = if last == Some(hook) { k + 1 } else { 0 };
                    last = Some(hook);
                    let path = at(format!("link-{}-{}-{k}", active.tier.name(), hook.name()));
                    bpf::pin(link.fd(), &path).map_err(|e| format!("{}: {e}", path.display()))?;
                }
            }
            for (name, fd) in enf.maps.owner().maps() {
                if name == MapName::Handover.as_str() || name.starts_with('.') || name.contains('/') {
                    continue;
                }
                let path = at(format!("map-{name}"));
                bpf::pin(fd, &path).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            Ok(())
        };
        if let Err(e) = pin_all() {
            pinned.discard();
            return Err(e);
        }
        Ok(pinned)
    }

    /// Removes the hand-over pin and DIR (at stop, once no generation is pinned).
    pub fn remove(self) {
        let _ = std::fs::remove_file(self.path.join(HANDOVER_PIN));
        if let Err(e) = std::fs::remove_dir(&self.path) {
            log::warn!("cannot remove {}: {e}", self.path.display());
        }
    }
}

fn generations(dir: &Path) -> Vec<Pinned> {
    let mut found: Vec<Pinned> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let generation = name.to_str()?.strip_prefix(GEN_PREFIX)?.parse().ok()?;
            Some(Pinned { path: e.path(), generation })
        })
        .collect();
    found.sort_by_key(|p| p.generation);
    found
}

impl Pinned {
    fn entries(&self, prefix: &str) -> Vec<PathBuf> {
        std::fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(prefix)))
            .map(|e| e.path())
            .collect()
    }

    /// Removes the link pins: a link nothing else holds detaches at once.
    pub fn unpin_links(&self) {
        for path in self.entries("link-") {
            if let Err(e) = std::fs::remove_file(&path) {
                log::warn!("cannot unpin {}: {e}", path.display());
            }
        }
    }

    /// Opens one of its pinned maps.
    pub fn map(&self, name: MapName, shape: MapShape) -> Result<FdMap, bpf::Error> {
        FdMap::open(&self.path.join(format!("map-{}", name.as_str())), shape)
    }

    /// Unpins everything of a generation that will not run: the links first (what
    /// nothing else holds detaches at once), then the maps and the directory.
    pub fn discard(self) {
        self.unpin_links();
        self.remove();
    }

    /// Removes the map pins and the directory (after [`Pinned::unpin_links`]).
    pub fn remove(self) {
        for path in self.entries("") {
            if let Err(e) = std::fs::remove_file(&path) {
                log::warn!("cannot unpin {}: {e}", path.display());
            }
        }
        if let Err(e) = std::fs::remove_dir(&self.path) {
            log::warn!("cannot remove {}: {e}", self.path.display());
        }
    }

    /// `gen-N:links=L:maps=M`.
    fn describe(&self) -> String {
        format!("{GEN_PREFIX}{}:links={}:maps={}", self.generation, self.entries("link-").len(), self.entries("map-").len())
    }
}

/// What `--check` reports as `pinned`: the generations pinned in `dir` (the config's
/// `pin`, or DEFAULT_DIR), `gen-N:links=L:maps=M` comma-separated, or `none`. Looks
/// only; mounts nothing.
pub fn describe(dir: Option<&str>) -> String {
    let path = Path::new(dir.unwrap_or(DEFAULT_DIR));
    if !path.parent().is_some_and(|p| on_bpffs(p).unwrap_or(false)) {
        return "none".into();
    }
    let found: Vec<String> = generations(path).iter().map(Pinned::describe).collect();
    if found.is_empty() {
        "none".into()
    } else {
        found.join(",")
    }
}
