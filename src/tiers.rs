//! Bringing one tier up for some hooks: open the embedded object with only that
//! tier's programs for those hooks, point it at the shared maps, load it, and attach
//! hook by hook. Every step is a fact for the posture gate; whatever fails is torn down
//! by `Drop`. Proving the hooks is the canary's job, and deciding the gate's.

use crate::bpf::{self, BtfChoice, Link, Object};
use crate::ladder::{Attach, Hook, Tier, HOOK_COUNT};
use crate::map_names::MapName;
use crate::maps::Maps;
use crate::posture::Step;
use crate::probe;

/// A loaded tier and the links of the hooks it has attached. Field order matters:
/// links detach before the object closes.
pub struct Active {
    pub tier: Tier,
    links: [Vec<Link>; HOOK_COUNT],
    _obj: Object,
}

impl Active {
    /// Detaches one hook's programs.
    pub fn detach(&mut self, hook: Hook) {
        self.links[hook as usize].clear();
    }

    /// Detaches every program.
    pub fn detach_all(&mut self) {
        for l in &mut self.links {
            l.clear();
        }
    }

    /// Every attached link, with its hook (to pin them).
    pub fn links(&self) -> impl Iterator<Item = (Hook, &Link)> {
        crate::ladder::HOOKS.into_iter().flat_map(move |h| self.links[h as usize].iter().map(move |l| (h, l)))
    }

    /// Whether any hook is still attached.
    pub fn is_attached(&self) -> bool {
        self.links.iter().any(|l| !l.is_empty())
    }
}

/// What bringing a tier up did.
pub struct BroughtUp {
    pub load: Step,
    /// Per hook; NotTried for hooks that were not asked for.
    pub attach: [Step; HOOK_COUNT],
    /// The tier, when it loaded and at least one hook attached.
    pub active: Option<Active>,
    /// Whether the kernel's JIT compiled every loaded program (None: not loaded, or
    /// it could not be asked). 32-bit ARM's does not compile programs with
    /// BPF-to-BPF calls: they run in the interpreter.
    pub jited: Option<bool>,
}

fn errno_of(e: &bpf::Error) -> i32 {
    e.errno.raw_os_error()
}

/// Brings `tier` up for `hooks`, using the shared `maps`, relocated against `btf`.
pub fn bring_up(tier: Tier, hooks: &[Hook], maps: &Maps, btf: &BtfChoice) -> BroughtUp {
    let spec = tier.spec();
    let mut out = BroughtUp { load: Step::NotTried, attach: [Step::NotTried; HOOK_COUNT], active: None, jited: None };
    let wanted: heapless::Vec<Hook, HOOK_COUNT> =
        hooks.iter().copied().filter(|&h| !spec.programs[h as usize].is_empty()).collect();
    if wanted.is_empty() {
        return out;
    }
    let attaches = |a: Attach| wanted.iter().any(|&h| spec.programs[h as usize].iter().any(|p| p.attach == a));
    if attaches(Attach::Syscall) || attaches(Attach::Kprobe) || attaches(Attach::Tracepoint) || attaches(Attach::TpBtf) {
        // Tracepoints (tp_btf's exec program is a classic one without kernel BTF), and
        // kprobes where there is no kprobe PMU, go through tracefs.
        probe::ensure_tracefs();
    }
    let keep = |name: &core::ffi::CStr| {
        wanted.iter().any(|&h| spec.programs[h as usize].iter().any(|p| runs_here(p, btf) && variant(p.name) == name))
    };
    let started = std::time::Instant::now();
    let obj = Object::open_image(tier.image(), btf, keep).and_then(|mut obj| {
        obj.reuse_maps(maps.owner_for(tier.image()))?;
        // The connect stash the programs use (HAVE_TASK_STORAGE in bpf/enforce.bpf.c).
        obj.skip_map(if stash_in_task_storage(btf) { MapName::ConnectFdsHash } else { MapName::ConnectFds }.name())?;
        obj.load()?;
        Ok(obj)
    });
    let obj = match obj {
        Ok(obj) => obj,
        Err(e) => {
            log::debug!("{} tier: {e}", tier.name());
            out.load = Step::Failed(errno_of(&e));
            return out;
        }
    };
    out.load = Step::Ok;
    let loaded = started.elapsed();
    let jited: Result<Vec<bool>, _> = wanted
        .iter()
        .flat_map(|&h| spec.programs[h as usize].iter())
        .filter(|p| runs_here(p, btf))
        .map(|p| obj.program(variant(p.name)).and_then(|prog| prog.jited()))
        .collect();
    out.jited = jited.map(|all| all.iter().all(|&j| j)).map_err(|e| log::debug!("{e}")).ok();
    let mut links: [Vec<Link>; HOOK_COUNT] = Default::default();
    for &h in &wanted {
        let (step, hook_links) = attach_hook(&obj, spec.programs[h as usize], btf);
        out.attach[h as usize] = step;
        links[h as usize] = hook_links;
    }
    // Where the start goes (`-v`; the bench reads these).
    log::debug!("{} tier: opened and loaded in {:?}, attached in {:?}", tier.name(), loaded, started.elapsed() - loaded);
    if links.iter().any(|l| !l.is_empty()) {
        out.active = Some(Active { tier, links, _obj: obj });
    }
    out
}

/// Whether `p` loads on this kernel, relocated against `btf` (a guard that does not is
/// left out: [`crate::ladder::Program::runs`]).
fn runs_here(p: &crate::ladder::Program, btf: &BtfChoice) -> bool {
    static HAS_FIND_VMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    p.runs(!btf.is_file(), !p.find_vma || *HAS_FIND_VMA.get_or_init(bpf::kernel_has_find_vma))
}

/// The program loaded for the table's `name` on this kernel: without bpf_loop (before
/// 5.17) the sendmmsg walk by a bounded loop.
fn variant(name: &'static core::ffi::CStr) -> &'static core::ffi::CStr {
    static HAS_LOOP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if name == c"enf_tp_sendmmsg" && !*HAS_LOOP.get_or_init(bpf::kernel_has_bpf_loop) {
        c"enf_tp_sendmmsg_bounded"
    } else {
        name
    }
}

/// Whether the programs keep a connect in flight in task storage: the build for
/// kernels with their own BTF does where the kernel has it (probed once); the build
/// for kernels without (loaded with a BTF file) never does.
fn stash_in_task_storage(btf: &BtfChoice) -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    !btf.is_file() && *HAS.get_or_init(bpf::kernel_has_task_storage)
}

/// Attaches every program of one hook, all or nothing. A syscall tracepoint the
/// kernel lacks (ENOENT: a syscall this architecture does not have) is skipped; any
/// other failure fails the hook (detaching what it had attached), and so does
/// attaching none of its checking programs (only guards of routes around them).
fn attach_hook(obj: &Object, programs: &[crate::ladder::Program], btf: &BtfChoice) -> (Step, Vec<Link>) {
    let mut links = Vec::new();
    let mut missing = 0;
    let mut checking = 0;
    for p in programs.iter().filter(|p| runs_here(p, btf)) {
        let attached = obj.program(variant(p.name)).and_then(|prog| match p.target {
            Some(target) => prog.attach_tracepoint(c"syscalls", target),
            None => prog.attach(),
        });
        match attached {
            Ok(link) => {
                checking += usize::from(!p.guard);
                links.push(link)
            }
            Err(e) if e.errno == rustix::io::Errno::NOENT && p.attach == Attach::Syscall => {
                log::debug!("{e}: skipped");
                missing = errno_of(&e);
            }
            Err(e) => {
                log::debug!("{e}");
                return (Step::Failed(errno_of(&e)), Vec::new());
            }
        }
    }
    if checking == 0 {
        (Step::Failed(missing), Vec::new())
    } else {
        (Step::Ok, links)
    }
}
