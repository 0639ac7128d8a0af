//! The ladder as data: the tiers, strongest first, the hooks each rule class needs,
//! and the BPF programs each tier attaches for each hook. The gate walks this table,
//! the posture decides from it, and nothing else names a program.

use core::ffi::CStr;

use crate::abi;

/// The rule classes of the config, in the order of every per-class array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Open = 0,
    Exec = 1,
    Connect = 2,
}

/// Every class, in array order.
pub const CLASSES: [Class; 3] = [Class::Open, Class::Exec, Class::Connect];

impl Class {
    /// Stable name used in reports, blockers and events.
    pub fn name(self) -> &'static str {
        match self {
            Class::Open => "open",
            Class::Exec => "exec",
            Class::Connect => "connect",
        }
    }

    /// What must be enforced for a rule of this class to have no way around it.
    pub fn hooks(self) -> &'static [Hook] {
        match self {
            Class::Open => &[Hook::Open],
            Class::Exec => &[Hook::Exec, Hook::Mmap, Hook::Mprotect],
            Class::Connect => &[Hook::Connect, Hook::Send],
        }
    }
}

/// A point where the kernel is watched. Each has its own canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// A file is opened (open, openat, openat2, creat, open_by_handle_at, io_uring).
    Open = 0,
    /// A program is executed.
    Exec = 1,
    /// A file is mapped executable (the dynamic loader, dlopen).
    Mmap = 2,
    /// A file mapping is made executable.
    Mprotect = 3,
    /// connect(2), also through io_uring.
    Connect = 4,
    /// A send with a destination address (sendto, sendmsg, sendmmsg, TCP Fast Open).
    Send = 5,
    /// A denied file is replaced by rename: the rule moves to the incoming inode; a
    /// denied file that loses a name (unlink, rename away) is reported, so the agent
    /// watches its path until a new file takes it; entries of deleted inodes leave the
    /// map. Not a denial, so no class needs it to be enforced; without it the agent
    /// watches every rule's directory and re-resolves paths itself, with a window.
    Follow = 6,
}

/// Number of hooks: the length of every per-hook array.
pub const HOOK_COUNT: usize = 7;

/// Every hook, in array order.
pub const HOOKS: [Hook; HOOK_COUNT] =
    [Hook::Open, Hook::Exec, Hook::Mmap, Hook::Mprotect, Hook::Connect, Hook::Send, Hook::Follow];

impl Hook {
    /// Stable name used in reports and blockers.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Open => "open",
            Hook::Exec => "exec",
            Hook::Mmap => "mmap",
            Hook::Mprotect => "mprotect",
            Hook::Connect => "connect",
            Hook::Send => "send",
            Hook::Follow => "follow",
        }
    }

    /// The `enum enforce_op` its events carry.
    pub fn op(self) -> u8 {
        match self {
            Hook::Open => abi::OP_OPEN,
            Hook::Exec => abi::OP_EXEC,
            Hook::Mmap => abi::OP_MMAP,
            Hook::Mprotect => abi::OP_MPROTECT,
            Hook::Connect => abi::OP_CONNECT,
            Hook::Send => abi::OP_SEND,
            Hook::Follow => abi::OP_FOLLOW,
        }
    }

    /// Whether rules of `class` need this hook (Follow serves both file classes).
    pub fn serves(self, class: Class) -> bool {
        match self {
            Hook::Follow => matches!(class, Class::Open | Class::Exec),
            _ => class.hooks().contains(&self),
        }
    }
}

/// A rung of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// BPF-LSM programs: the operation fails with EPERM.
    Lsm = 0,
    /// fmod_ret programs on the kernel's security_*() functions: EPERM, without bpf
    /// in the LSM list; needs BPF trampolines.
    Fmodret = 1,
    /// kprobes on the same functions: the offender is signalled.
    Kprobe = 2,
    /// Syscall tracepoints: the offender is signalled after the syscall ran.
    Tracepoint = 3,
    /// Path strings at classic tracepoints, for kernels without BTF (its own object,
    /// bpf/path.bpf.c, with no CO-RE relocation): the offender is signalled; only the
    /// names the rules give (and their canonical forms) are matched.
    Path = 4,
}

/// Number of tiers.
pub const TIER_COUNT: usize = 5;

/// The ladder, strongest first.
pub const LADDER: [Tier; TIER_COUNT] = [Tier::Lsm, Tier::Fmodret, Tier::Kprobe, Tier::Tracepoint, Tier::Path];

impl Tier {
    /// Whether its programs read kernel structures through CO-RE relocations, which
    /// need BTF describing the running kernel: its own (/sys/kernel/btf/vmlinux) or a
    /// file the config names (`btf =`). Without either the object does not load.
    pub fn needs_btf(self) -> bool {
        match self {
            Tier::Lsm | Tier::Fmodret | Tier::Kprobe | Tier::Tracepoint => true,
            Tier::Path => false,
        }
    }

    /// Whether a hook of this tier can work without the kernel's own BTF: none of its
    /// programs attaches by kernel BTF or calls a helper typed by it. A BTF file serves
    /// CO-RE relocation only.
    /// Guards are left out where they cannot run (see [`Program::runs`]).
    pub fn works_without_kernel_btf(self, hook: Hook) -> bool {
        self.spec().programs[hook as usize].iter().all(|p| p.guard || !p.kernel_btf_only)
    }

    /// Whether a checking program of this tier for `hook` calls `bpf_find_vma` (5.17 on).
    pub fn needs_find_vma(self, hook: Hook) -> bool {
        self.spec().programs[hook as usize].iter().any(|p| !p.guard && p.find_vma)
    }

    /// Stable name used in the config (`tiers =`), reports, blockers and events.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Lsm => "lsm",
            Tier::Fmodret => "fmodret",
            Tier::Kprobe => "kprobe",
            Tier::Tracepoint => "tracepoint",
            Tier::Path => "path",
        }
    }

    /// The tier named `name`.
    pub fn from_name(name: &str) -> Option<Tier> {
        LADDER.into_iter().find(|t| t.name() == name)
    }

    /// The `enum enforce_tier` of its events, and the index of its settings.
    pub fn abi(self) -> u8 {
        match self {
            Tier::Lsm => abi::TIER_LSM,
            Tier::Fmodret => abi::TIER_FMODRET,
            Tier::Kprobe => abi::TIER_KPROBE,
            Tier::Tracepoint => abi::TIER_TRACEPOINT,
            Tier::Path => abi::TIER_PATH,
        }
    }

    /// The tier of an event's `tier` byte.
    pub fn from_abi(value: u8) -> Option<Tier> {
        LADDER.into_iter().find(|t| t.abi() == value)
    }

    /// Denies with EPERM before the operation happens (as opposed to signalling the
    /// offender).
    pub fn synchronous(self) -> bool {
        matches!(self, Tier::Lsm | Tier::Fmodret)
    }

    /// This tier's row of [`TABLE`].
    pub fn spec(self) -> &'static TierSpec {
        &TABLE[self as usize]
    }

    /// Whether the tier has programs for `hook`. Every tier sees every hook of every
    /// class but the path tier, which cannot see executable mappings (mmap, mprotect):
    /// a file behind a descriptor has no name it can read. Those are limits of the
    /// tier, named by its `path-matching` blocker, not hooks it fails.
    pub fn sees(self, hook: Hook) -> bool {
        !self.spec().programs[hook as usize].is_empty()
    }

    /// The embedded BPF object holding the tier's programs.
    pub fn image(self) -> crate::bpf::Image {
        match self {
            Tier::Path => crate::bpf::Image::Path,
            _ => crate::bpf::Image::Programs,
        }
    }

    /// Whether the tier matches path strings (`deny_paths`): the maps only it uses are
    /// made, sized and filled when the ladder brings it up, and never otherwise.
    pub fn matches_names(self) -> bool {
        self == Tier::Path
    }
}

/// How a program is attached (libbpf attaches by section name; this says what that
/// needs from the kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// `lsm/HOOK`: BPF-LSM with bpf in the LSM list, BPF trampolines.
    Lsm,
    /// `fmod_ret/FUNC`: BPF trampolines.
    FmodRet,
    /// `fentry/FUNC`: BPF trampolines.
    Fentry,
    /// `kprobe/FUNC`: the kprobe PMU, or kprobe_events in tracefs.
    Kprobe,
    /// `tracepoint/syscalls/...`: CONFIG_FTRACE_SYSCALLS and tracefs. A syscall the
    /// architecture lacks (arm64 has no open or creat) is skipped.
    Syscall,
    /// `tp_btf/...`: a BTF-typed raw tracepoint. In the object for kernels without
    /// their own BTF the same program is a classic tracepoint (tracefs).
    TpBtf,
    /// `tracepoint/CATEGORY/NAME`, not a syscall's: tracefs.
    Tracepoint,
}

/// One attachment of a BPF program: its C function name, how it attaches, and for a
/// syscall tracepoint other than its section's, which one (one program can serve
/// several: the kernel then verifies and holds it once).
#[derive(Debug, Clone, Copy)]
pub struct Program {
    pub name: &'static CStr,
    pub attach: Attach,
    /// `syscalls/TARGET` instead of the program's own section.
    pub target: Option<&'static CStr>,
    /// Whether only the object for kernels with their own BTF has it: it attaches by
    /// the kernel's BTF ids (LSM, fmod_ret, fentry) or calls a helper typed by it
    /// (`bpf_find_vma`), which the verifier refuses on a kernel without BTF, whatever
    /// BTF file relocated it. (The tp_btf exec program is the classic
    /// sched_process_exec tracepoint in the other object.)
    pub kernel_btf_only: bool,
    /// Whether it calls `bpf_find_vma` (5.17 on): an older kernel's verifier refuses it.
    pub find_vma: bool,
    /// Whether it guards a route around the hook's check (a clone sharing memory or
    /// descriptors, a link to a denied file) instead of checking the operation: a hook
    /// whose checking programs all fail to attach has failed, whatever guards attached.
    pub guard: bool,
}

impl Program {
    /// Whether it can load on a kernel with (`kernel_btf`) or without its own BTF, and
    /// with or without `bpf_find_vma`. A checking program that cannot keeps its hook
    /// out of the tier (the posture gate's blockers); a guard that cannot is left out,
    /// and the route it guards is a documented limit there.
    pub fn runs(&self, kernel_btf: bool, find_vma: bool) -> bool {
        (kernel_btf || !self.kernel_btf_only) && (find_vma || !self.find_vma)
    }
}

const fn p(name: &'static CStr, attach: Attach) -> Program {
    Program {
        name,
        attach,
        target: None,
        kernel_btf_only: matches!(attach, Attach::Lsm | Attach::FmodRet | Attach::Fentry),
        find_vma: false,
        guard: false,
    }
}

/// A program guarding a route around the hook's check (see [`Program::guard`]).
const fn g(name: &'static CStr, attach: Attach) -> Program {
    Program { guard: true, ..p(name, attach) }
}

/// A program that calls `bpf_find_vma`, a helper typed by the kernel's BTF (see
/// [`Program::kernel_btf_only`]).
const fn typed(name: &'static CStr, attach: Attach) -> Program {
    Program { name, attach, target: None, kernel_btf_only: true, find_vma: true, guard: false }
}

/// `name` attached to the syscall tracepoint `syscalls/target`.
const fn tp(name: &'static CStr, target: &'static CStr) -> Program {
    Program { name, attach: Attach::Syscall, target: Some(target), kernel_btf_only: false, find_vma: false, guard: false }
}

/// A tier's programs per hook (indexed by `Hook as usize`); empty = this tier has no
/// kernel program for the hook.
pub struct TierSpec {
    #[allow(dead_code)] // names the row; a test checks rows are in ladder order
    pub tier: Tier,
    pub programs: [&'static [Program]; HOOK_COUNT],
}

use Attach::*;

/// The table. Rows in ladder order; columns in hook order.
pub const TABLE: [TierSpec; TIER_COUNT] = [
    TierSpec {
        tier: Tier::Lsm,
        programs: [
            &[p(c"enf_lsm_open", Lsm)],
            &[p(c"enf_lsm_exec", Lsm)],
            &[p(c"enf_lsm_mmap", Lsm)],
            &[p(c"enf_lsm_mprotect", Lsm)],
            &[p(c"enf_lsm_connect", Lsm)],
            &[p(c"enf_lsm_send", Lsm)],
            &[p(c"enf_lsm_rename", Lsm), p(c"enf_lsm_unlink", Lsm), p(c"enf_lsm_free", Lsm)],
        ],
    },
    TierSpec {
        tier: Tier::Fmodret,
        programs: [
            &[p(c"enf_fmr_open", FmodRet)],
            &[p(c"enf_fmr_exec", FmodRet)],
            &[p(c"enf_fmr_mmap", FmodRet)],
            &[p(c"enf_fmr_mprotect", FmodRet)],
            &[p(c"enf_fmr_connect", FmodRet)],
            &[p(c"enf_fmr_send", FmodRet)],
            &[p(c"enf_fmr_rename", Fentry), p(c"enf_fmr_unlink", Fentry), p(c"enf_fmr_free", Fentry)],
        ],
    },
    TierSpec {
        tier: Tier::Kprobe,
        programs: [
            &[p(c"enf_kp_open", Kprobe)],
            &[p(c"enf_kp_exec", Kprobe)],
            &[p(c"enf_kp_mmap", Kprobe)],
            &[p(c"enf_kp_mprotect", Kprobe)],
            &[p(c"enf_kp_connect", Kprobe)],
            &[p(c"enf_kp_send", Kprobe)],
            &[p(c"enf_kp_rename", Kprobe), p(c"enf_kp_unlink", Kprobe), p(c"enf_kp_free", Kprobe)],
        ],
    },
    TierSpec {
        tier: Tier::Tracepoint,
        programs: [
            &[
                p(c"enf_tp_open", Syscall),
                tp(c"enf_tp_open", c"sys_exit_openat"),
                tp(c"enf_tp_open", c"sys_exit_openat2"),
                tp(c"enf_tp_open", c"sys_exit_creat"),
                tp(c"enf_tp_open", c"sys_exit_open_by_handle_at"),
                g(c"enf_tp_clone_files", Syscall),
                g(c"enf_tp_clone3_files", Syscall),
            ],
            &[p(c"enf_tp_exec", TpBtf), Program { guard: true, ..typed(c"enf_tp_exec_interp", TpBtf) }],
            &[
                p(c"enf_tp_mmap", Syscall),
                g(c"enf_tp_clone_vm", Syscall),
                g(c"enf_tp_clone3_vm", Syscall),
                g(c"enf_tp_vforked", Syscall),
                Program { guard: true, ..tp(c"enf_tp_vforked", c"sys_exit_clone") },
                Program { guard: true, ..tp(c"enf_tp_vforked", c"sys_exit_clone3") },
                g(c"enf_tp_shmat", Syscall),
            ],
            // pkey_mprotect(2) takes mprotect's first three arguments.
            &[typed(c"enf_tp_mprotect", Syscall), Program { target: Some(c"sys_enter_pkey_mprotect"), ..typed(c"enf_tp_mprotect", Syscall) }],
            &[p(c"enf_tp_connect", Syscall), p(c"enf_tp_connected", Syscall)],
            &[p(c"enf_tp_sendto", Syscall), p(c"enf_tp_sendmsg", Syscall), p(c"enf_tp_sendmmsg", Syscall)],
            &[],
        ],
    },
    TierSpec {
        tier: Tier::Path,
        programs: [
            &[
                p(c"enf_path_open", Syscall),
                p(c"enf_path_openat", Syscall),
                p(c"enf_path_openat2", Syscall),
                p(c"enf_path_creat", Syscall),
                g(c"enf_path_link_open", Syscall),
                g(c"enf_path_linkat_open", Syscall),
                g(c"enf_path_symlink_open", Syscall),
                g(c"enf_path_symlinkat_open", Syscall),
                g(c"enf_path_rename_open", Syscall),
                g(c"enf_path_renameat_open", Syscall),
                g(c"enf_path_renameat2_open", Syscall),
                g(c"enf_path_clone", Syscall),
                g(c"enf_path_clone3", Syscall),
            ],
            &[
                p(c"enf_path_exec", Tracepoint),
                g(c"enf_path_link_exec", Syscall),
                g(c"enf_path_linkat_exec", Syscall),
                g(c"enf_path_symlink_exec", Syscall),
                g(c"enf_path_symlinkat_exec", Syscall),
                g(c"enf_path_rename_exec", Syscall),
                g(c"enf_path_renameat_exec", Syscall),
                g(c"enf_path_renameat2_exec", Syscall),
            ],
            &[],
            &[],
            &[p(c"enf_path_connect", Syscall)],
            &[p(c"enf_path_sendto", Syscall), p(c"enf_path_sendmsg", Syscall), p(c"enf_path_sendmmsg", Syscall)],
            &[],
        ],
    },
];

/// Every program of the object, for the check that the table and bpf/enforce.bpf.c agree.
#[cfg(test)]
pub fn all_programs() -> impl Iterator<Item = &'static Program> {
    TABLE.iter().flat_map(|row| row.programs.iter().flat_map(|p| p.iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_ladder_order() {
        for (i, t) in LADDER.iter().enumerate() {
            assert_eq!(TABLE[i].tier, *t);
            assert_eq!(*t as usize, i);
            assert_eq!(Tier::from_name(t.name()), Some(*t));
            assert_eq!(Tier::from_abi(t.abi()), Some(*t));
        }
        for (i, h) in HOOKS.iter().enumerate() {
            assert_eq!(*h as usize, i);
        }
    }

    #[test]
    fn every_hook_a_tier_sees_has_a_checking_program() {
        for row in &TABLE {
            for (h, programs) in row.programs.iter().enumerate() {
                if !programs.is_empty() {
                    assert!(programs.iter().any(|p| !p.guard), "{:?} hook {h}: only guards", row.tier);
                }
            }
        }
    }

    #[test]
    fn every_class_hook_has_a_program_in_every_tier() {
        for row in &TABLE {
            for c in CLASSES {
                for &h in c.hooks() {
                    let unseen = row.tier == Tier::Path && matches!(h, Hook::Mmap | Hook::Mprotect);
                    assert_eq!(row.tier.sees(h), !unseen, "{} has no {} program", row.tier.name(), h.name());
                }
                // Every class keeps its main hook in every tier.
                assert!(row.tier.sees(c.hooks()[0]));
            }
        }
    }

    #[test]
    fn what_needs_the_kernels_own_btf() {
        for h in HOOKS {
            assert!(!Tier::Lsm.works_without_kernel_btf(h) || Tier::Lsm.spec().programs[h as usize].is_empty());
            assert!(!Tier::Fmodret.works_without_kernel_btf(h) || Tier::Fmodret.spec().programs[h as usize].is_empty());
            assert!(Tier::Kprobe.works_without_kernel_btf(h), "{}", h.name());
        }
        // The tracepoint tier: exec by the classic sched_process_exec tracepoint;
        // mprotect finds the mapping with bpf_find_vma, typed by the kernel's BTF.
        let tp = |h: Hook| Tier::Tracepoint.works_without_kernel_btf(h);
        assert!(tp(Hook::Open) && tp(Hook::Exec) && tp(Hook::Mmap) && tp(Hook::Connect) && tp(Hook::Send));
        assert!(!tp(Hook::Mprotect));
        // The source agrees: the typed helpers appear only in the typed programs' bodies,
        // and the exec program has a classic variant.
        let source = include_str!("../bpf/enforce.bpf.c");
        assert!(source.contains("SEC(\"tracepoint/sched/sched_process_exec\")\nint enf_tp_exec("));
        assert!(source.contains("SEC(\"tp_btf/sched_process_exec\")\nint BPF_PROG(enf_tp_exec,"));
        let mprotect = source.split("int enf_tp_mprotect(").nth(1).unwrap().split("\n}\n").next().unwrap();
        assert!(mprotect.contains("bpf_find_vma("), "{mprotect}");
    }

    #[test]
    fn every_program_is_in_its_object() {
        for row in &TABLE {
            let obj = crate::bpf::Object::open_image(row.tier.image(), &crate::bpf::BtfChoice::Kernel, |_| false).unwrap();
            for prog in row.programs.iter().flat_map(|p| p.iter()) {
                assert!(obj.program(prog.name).is_ok(), "{:?} is not in the {} tier's object", prog.name, row.tier.name());
            }
        }
        // And every program of the path object is in its row.
        let names = core::cell::RefCell::new(Vec::new());
        crate::bpf::Object::open_image(Tier::Path.image(), &crate::bpf::BtfChoice::Kernel, |n| {
            names.borrow_mut().push(n.to_owned());
            false
        })
        .unwrap();
        let row: Vec<_> = TABLE[Tier::Path as usize].programs.iter().flat_map(|p| p.iter()).map(|p| p.name.to_owned()).collect();
        let mut names = names.into_inner();
        names.sort();
        let mut row_sorted = row.clone();
        row_sorted.sort();
        assert_eq!(names, row_sorted);
    }

    #[test]
    fn program_names_are_unique_and_fit_the_kernel() {
        // A program appears once per attachment: (name, target) pairs are unique.
        let names: Vec<_> = all_programs().map(|p| (p.name.to_str().unwrap(), p.target)).collect();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "{n:?} twice");
            assert!(n.0.starts_with("enf_"), "{n:?}: host tests find ours by the prefix");
        }
    }

    /// The benchmark's floor (bpf/floor.bpf.c) has an empty program on exactly the
    /// hooks each tier's programs attach to, no more, no fewer.
    #[test]
    fn the_floor_has_the_same_hooks_per_tier() {
        let source = include_str!("../bpf/enforce.bpf.c");
        let floor = include_str!("../bpf/floor.bpf.c");
        // SEC("section") followed by the program's definition naming it.
        let section_of = |name: &str| -> String {
            let at = source.find(&format!("({name},")).or_else(|| source.find(&format!("int {name}("))).unwrap();
            let sec = source[..at].rfind("SEC(\"").unwrap() + 5;
            source[sec..][..source[sec..].find('"').unwrap()].to_owned()
        };
        for (row, prefix) in TABLE.iter().zip(["fl_lsm_", "fl_fmr_", "fl_kp_", "fl_tp_"]) {
            let mut ours: Vec<String> = row
                .programs
                .iter()
                .flat_map(|p| p.iter())
                .map(|p| match p.target {
                    Some(t) => format!("tracepoint/syscalls/{}", t.to_str().unwrap()),
                    None => section_of(p.name.to_str().unwrap()),
                })
                .collect();
            let mut theirs: Vec<String> = floor
                .lines()
                .filter_map(|l| l.strip_prefix("EMPTY(\""))
                .filter(|l| l.contains(&format!(", {prefix}")))
                .map(|l| l[..l.find('"').unwrap()].to_owned())
                .collect();
            ours.sort();
            theirs.sort();
            assert_eq!(ours, theirs, "{} tier", row.tier.name());
        }
    }

    #[test]
    fn every_program_is_in_the_bpf_source() {
        let source = include_str!("../bpf/enforce.bpf.c");
        for prog in all_programs().filter(|p| !p.name.to_str().unwrap().starts_with("enf_path_")) {
            let name = prog.name.to_str().unwrap();
            let defined = source.contains(&format!("int {name}(")) || source.contains(&format!("({name},"));
            assert!(defined, "{name} is not in bpf/enforce.bpf.c");
        }
        let maps = source.matches("SEC(\".maps\")").count();
        // Minus the license, the maps, and the variants: the classic enf_tp_exec of the
        // object for kernels without BTF, the 32-bit ARM enf_kp_rename, and
        // enf_tp_sendmmsg_bounded for kernels without bpf_loop (src/tiers.rs).
        assert!(source.contains("int enf_tp_sendmmsg_bounded("));
        let defined = source.matches("SEC(\"").count() - 1 - maps - 3;
        let mut names: Vec<_> = all_programs().filter(|p| !p.name.to_str().unwrap().starts_with("enf_path_")).map(|p| p.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(defined, names.len(), "a program in the source is not in the table");
    }
}
