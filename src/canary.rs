//! The live canaries: the only proof that an attached hook acts.
//!
//! For each hook the agent makes an object no one else can reach — a memfd, a port it
//! holds on loopback, a fresh directory with a random name — gives it the canary rule
//! in the shared maps, and a child process does the hook's operation on it: this
//! binary re-executed (argv `[CHILD_ARGV0, HOOK, TARGET]`, see [`started_by_gate`]: no
//! option of the command line reaches this mode), or for exec the memfd itself, a
//! tiny static program. A synchronous tier must fail the operation with EPERM, a signal
//! tier must kill the child with the configured signal, and in both cases the tier
//! must have reported it on the ring buffer, so the proof names the hook and the tier
//! that acted. The child is named in the `canary_tasks` map of every gate on the
//! machine before it acts and removed before it is reaped, so no other policy acts on
//! it and its pid is never reused while named. Follow needs no child: a rename over
//! the canary file must move its rule to the incoming inode and drop the replaced
//! one, and unlinking the file must be reported. The path tier knows files by name:
//! its file canaries name the memfd as `/proc/AGENT/fd/N` (what the child opens or
//! executes), and a second child must also be killed for `link`ing that name. Objects,
//! rules and children are cleaned up whatever happens.

use core::cell::RefCell;
use std::fs::File;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::io::Errno;

use crate::abi::{self, InodeKey, InodeRule, Net4Key, NetRule, PathKey};
use crate::bpf::{self, RingBuffer};
use crate::events::{self, Action, Reason};
use crate::ladder::{Hook, Tier};
use crate::map_names::MapName;
use crate::maps::Maps;
use crate::posture::Step;
use crate::rules;

/// The argv[0] the gate gives a canary child; with [`started_by_gate`] it turns the
/// binary into one.
pub const CHILD_ARGV0: &str = "enforce-canary-child";
/// How long a canary child may take (TCG guests are slow) before it is killed.
const CHILD_TIMEOUT: Duration = Duration::from_secs(20);
/// A child's exit code: 0 when the operation succeeded, CHILD_ERRNO + errno when it failed.
const CHILD_ERRNO: i32 = 100;

/// How a canary child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The operation succeeded: the hook did not act.
    Done,
    /// The operation failed with this errno (EPERM is the synchronous tiers' answer).
    Failed(i32),
    /// Killed by this signal (the signal tiers' answer).
    Killed(i32),
    /// Anything else (an unexpected exit code, a timeout).
    Other,
}

impl Outcome {
    fn of(status: ExitStatus) -> Outcome {
        match (status.code(), status.signal()) {
            (Some(0), _) => Outcome::Done,
            (Some(c), _) if c > CHILD_ERRNO => Outcome::Failed(c - CHILD_ERRNO),
            (_, Some(sig)) => Outcome::Killed(sig),
            _ => Outcome::Other,
        }
    }
}

/// Whether `outcome` is what `tier` must do to the child, as a Step (the errno says
/// what happened instead: the operation's own error, or 0).
fn judge(tier: Tier, signal: u8, outcome: Outcome, reported: bool) -> Step {
    let acted = match outcome {
        Outcome::Failed(e) if tier.synchronous() => e == Errno::PERM.raw_os_error(),
        Outcome::Killed(sig) if !tier.synchronous() => sig == i32::from(signal),
        _ => false,
    };
    match (acted, outcome) {
        (true, _) if reported => Step::Ok,
        (_, Outcome::Failed(e)) if e != Errno::PERM.raw_os_error() => Step::Failed(e),
        _ => Step::Failed(0),
    }
}

/// What a file canary exercises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proof {
    /// A deny rule on the canary file.
    Rule,
    /// The allow list: the canary file lies on no allowed filesystem (a memfd).
    AllowList,
    /// allow_anon_exec = no: anonymous memory made executable (no file at all).
    AnonExec,
}

impl Proof {
    fn reason(self) -> Reason {
        match self {
            Proof::Rule => Reason::Rule,
            Proof::AllowList => Reason::Untrusted,
            Proof::AnonExec => Reason::Anon,
        }
    }
}

/// Proves `hook` in `tier`, whose programs are attached and whose settings make them
/// act on the canary rule. `signal` is what a signal tier must kill the child with.
/// Exec, mmap and mprotect are also proven against the exec policy the maps carry: the
/// allow list, and the denial of anonymous executable memory.
pub fn prove(maps: &Maps, tier: Tier, hook: Hook, signal: u8) -> Step {
    let (allow_list, deny_anon) = maps.exec_policy();
    let mut proofs = heapless::Vec::<Proof, 3>::new();
    let _ = proofs.push(Proof::Rule);
    if allow_list && matches!(hook, Hook::Exec | Hook::Mmap | Hook::Mprotect) {
        let _ = proofs.push(Proof::AllowList);
    }
    if deny_anon && matches!(hook, Hook::Mmap | Hook::Mprotect) {
        let _ = proofs.push(Proof::AnonExec);
    }
    for proof in proofs {
        if tier == Tier::Path && proof != Proof::Rule {
            // It knows files by name only: it cannot tell which filesystem one is on.
            log::warn!("the path tier cannot enforce the exec policy ({proof:?}): it matches names");
            return Step::Failed(0);
        }
        let started = Instant::now();
        let result = match (hook, proof) {
            (Hook::Open | Hook::Exec | Hook::Mmap | Hook::Mprotect, Proof::Rule | Proof::AllowList) => {
                file_canary(maps, tier, hook, signal, proof)
            }
            (_, Proof::AnonExec) => anon_canary(maps, tier, hook, signal),
            (Hook::Connect | Hook::Send, _) => net_canary(maps, tier, hook, signal),
            (Hook::Follow, _) => follow_canary(maps, tier),
        };
        log::debug!("{} tier, {} canary ({proof:?}): {:?} in {:?}", tier.name(), hook.name(), result, started.elapsed());
        let step = result.unwrap_or_else(|e| {
            log::warn!("{} tier, {} canary: {e}", tier.name(), hook.name());
            Step::Failed(e.raw_os_error())
        });
        if step != Step::Ok {
            if proof != Proof::Rule {
                log::warn!("{} tier, {} canary of the exec policy ({proof:?}): {step:?}", tier.name(), hook.name());
            }
            return step;
        }
    }
    Step::Ok
}

/// Canary events (rule = the canary rule) seen on the ring buffer.
type Seen = heapless::Vec<(Tier, Hook, Action, Reason), 16>;

/// Runs `f`, then collects the canary events the tiers reported meanwhile.
fn watching<T>(maps: &Maps, f: impl FnOnce() -> T) -> Result<(T, Seen), Errno> {
    let seen = RefCell::new(Seen::new());
    let events = maps.events().map_err(|e| e.errno)?;
    let mut rb = RingBuffer::new(&events, |record| {
        if let Ok(ev) = events::decode(record) {
            if ev.rule == abi::RULE_CANARY {
                let _ = seen.borrow_mut().push((ev.tier, ev.op, ev.action, ev.reason));
            }
        }
    })
    .map_err(|e| e.errno)?;
    let _ = rb.consume(); // what earlier canaries left
    seen.borrow_mut().clear();
    let value = f();
    rb.consume()?;
    drop(rb);
    Ok((value, seen.into_inner()))
}

fn reported(seen: &Seen, tier: Tier, hook: Hook, reason: Reason) -> bool {
    seen.iter().any(|&(t, op, _, r)| t == tier && op == hook && r == reason)
}

/// A tiny static program that exits 0 (one PT_LOAD, three instructions): what the
/// exec canary runs, and the other file canaries map. ELF64 on 64-bit targets,
/// ELF32 on 32-bit ARM.
fn exit0_elf() -> heapless::Vec<u8, 160> {
    #[cfg(target_arch = "x86_64")]
    const MACHINE: u16 = 62;
    #[cfg(target_arch = "x86_64")]
    const CODE: &[u8] = &[0x31, 0xff, 0xb8, 0x3c, 0, 0, 0, 0x0f, 0x05]; // xor edi,edi; mov eax,60; syscall
    #[cfg(target_arch = "aarch64")]
    const MACHINE: u16 = 183;
    #[cfg(target_arch = "aarch64")]
    const CODE: &[u8] = &[0, 0, 0x80, 0xd2, 0xa8, 0x0b, 0x80, 0xd2, 1, 0, 0, 0xd4]; // mov x0,0; mov x8,93; svc 0
    #[cfg(target_arch = "arm")]
    const MACHINE: u16 = 40;
    #[cfg(target_arch = "arm")]
    const CODE: &[u8] = &[0, 0, 0xa0, 0xe3, 1, 0x70, 0xa0, 0xe3, 0, 0, 0, 0xef]; // mov r0,#0; mov r7,#1; svc 0
    const BASE: u64 = 0x40_0000;
    #[cfg(target_pointer_width = "64")]
    const HEADERS: u64 = 64 + 56;
    #[cfg(target_pointer_width = "32")]
    const HEADERS: u64 = 52 + 32;
    let len = HEADERS + CODE.len() as u64;
    let mut b = heapless::Vec::new();
    let mut put = |bytes: &[u8]| {
        let _ = b.extend_from_slice(bytes); // at most 120 + code bytes: fits
    };
    #[cfg(target_pointer_width = "64")]
    {
        put(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        put(&2u16.to_le_bytes()); // ET_EXEC
        put(&MACHINE.to_le_bytes());
        put(&1u32.to_le_bytes());
        put(&(BASE + HEADERS).to_le_bytes()); // entry
        put(&64u64.to_le_bytes()); // phoff
        put(&0u64.to_le_bytes()); // shoff
        put(&0u32.to_le_bytes()); // flags
        for v in [64u16, 56, 1, 0, 0, 0] {
            put(&v.to_le_bytes()); // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
        }
        put(&1u32.to_le_bytes()); // PT_LOAD
        put(&5u32.to_le_bytes()); // R+X
        for v in [0, BASE, BASE, len, len, 0x1_0000] {
            put(&v.to_le_bytes()); // offset, vaddr, paddr, filesz, memsz, align (64K pages too)
        }
    }
    #[cfg(target_pointer_width = "32")]
    {
        let w = |v: u64| (v as u32).to_le_bytes();
        put(&[0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        put(&2u16.to_le_bytes()); // ET_EXEC
        put(&MACHINE.to_le_bytes());
        put(&1u32.to_le_bytes());
        put(&w(BASE + HEADERS)); // entry (ARM state: even)
        put(&52u32.to_le_bytes()); // phoff
        put(&0u32.to_le_bytes()); // shoff
        put(&0x0500_0000u32.to_le_bytes()); // flags: EABI version 5 (an EABI kernel refuses OABI)
        for v in [52u16, 32, 1, 0, 0, 0] {
            put(&v.to_le_bytes()); // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
        }
        put(&1u32.to_le_bytes()); // PT_LOAD
        for v in [0, BASE, BASE, len, len] {
            put(&w(v)); // offset, vaddr, paddr, filesz, memsz
        }
        put(&5u32.to_le_bytes()); // R+X
        put(&0x1_0000u32.to_le_bytes()); // align
    }
    put(CODE);
    b
}

/// A memfd holding the exit-0 program: an inode only the agent (and the children it
/// hands the path to) can reach. Close-on-exec: children open it through /proc.
fn canary_memfd() -> Result<OwnedFd, Errno> {
    let fd = rustix::fs::memfd_create("enforce-canary", rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut file = File::from(fd);
    file.write_all(&exit0_elf()).map_err(io_errno)?;
    Ok(file.into())
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_io_error(&e).unwrap_or(Errno::IO)
}

/// The path through which a child reaches one of the agent's descriptors.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd()))
}

/// A map entry that is removed when dropped.
struct Entry<'m> {
    map: bpf::Map<'m>,
    key: heapless::Vec<u8, { abi::PATH_LEN }>,
}

impl<'m> Entry<'m> {
    fn insert(map: bpf::Map<'m>, key: &[u8], value: &[u8]) -> Result<Entry<'m>, Errno> {
        map.update(key, value).map_err(|e| e.errno)?;
        let mut k = heapless::Vec::new();
        let _ = k.extend_from_slice(key); // keys are at most PATH_LEN bytes
        Ok(Entry { map, key: k })
    }
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        match self.map.delete(&self.key) {
            Ok(()) | Err(bpf::Error { errno: Errno::NOENT, .. }) => {}
            Err(e) => log::warn!("canary: {e}"),
        }
    }
}

fn file_canary(maps: &Maps, tier: Tier, hook: Hook, signal: u8, proof: Proof) -> Result<Step, Errno> {
    use std::os::unix::ffi::OsStrExt;
    let memfd = canary_memfd()?;
    let path = fd_path(&memfd);
    let rule = match (hook, proof) {
        (Hook::Open, _) => InodeRule { open_rule: abi::RULE_CANARY, exec_rule: 0 },
        (_, Proof::AllowList) => InodeRule { open_rule: 0, exec_rule: abi::RULE_ALLOW_CANARY },
        _ => InodeRule { open_rule: 0, exec_rule: abi::RULE_CANARY },
    };
    let _entry = if tier.matches_names() {
        // The path tier knows the canary by its name: /proc/AGENT/fd/N, which only the
        // agent and its children can open or execute.
        let key = PathKey::new(path.as_os_str().as_bytes()).ok_or(Errno::NAMETOOLONG)?;
        Entry::insert(maps.map(MapName::DenyPaths).map_err(|e| e.errno)?, &key.to_bytes(), &rule.to_bytes())?
    } else {
        let key = rules::inode_key_of(&memfd)?;
        maps.mark_inode(key.ino).map_err(|e| e.errno)?;
        Entry::insert(maps.map(MapName::DenyInodes).map_err(|e| e.errno)?, &key.to_bytes(), &rule.to_bytes())?
    };
    let (outcome, seen) = watching(maps, || run_child(maps, hook.name(), path.as_os_str(), None))?;
    let step = judge(tier, signal, outcome?, reported(&seen, tier, hook, proof.reason()));
    if tier != Tier::Path || step != Step::Ok {
        return Ok(step);
    }
    // The path tier's hook also guards the file's other names: a hardlink to it (the
    // same programs cover symlink and rename), which must be killed too.
    let (outcome, seen) = watching(maps, || run_child(maps, "link", path.as_os_str(), None))?;
    Ok(judge(tier, signal, outcome?, reported(&seen, tier, hook, proof.reason())))
}

/// allow_anon_exec = no: a child makes anonymous memory executable. It has no inode to
/// carry a canary rule, so the tier's settings name the child, once it runs and before
/// it acts.
fn anon_canary(maps: &Maps, tier: Tier, hook: Hook, signal: u8) -> Result<Step, Errno> {
    let op = if hook == Hook::Mmap { "anon-mmap" } else { "anon-mprotect" };
    let (outcome, seen) = watching(maps, || {
        run_child(maps, op, "-".as_ref(), Some(&|pid| maps.set_canary_child(tier, pid).map_err(|e| e.errno)))
    })?;
    maps.set_canary_child(tier, 0).map_err(|e| e.errno)?;
    Ok(judge(tier, signal, outcome?, reported(&seen, tier, hook, Reason::Anon)))
}

fn net_canary(maps: &Maps, tier: Tier, hook: Hook, signal: u8) -> Result<Step, Errno> {
    // Holding the UDP port keeps anyone else from using it while it is denied (for TCP
    // nothing on loopback connects to a port it has not been told about).
    let holder = UdpSocket::bind(("127.0.0.1", 0)).map_err(io_errno)?;
    let port = holder.local_addr().map_err(io_errno)?.port();
    let key = Net4Key { prefixlen: 64, port: port.to_be(), _pad: 0, addr: [127, 0, 0, 1] };
    let value = NetRule { rule: abi::RULE_CANARY };
    maps.mark_net4_port(key.addr).map_err(|e| e.errno)?;
    let _entry = Entry::insert(maps.map(MapName::DenyNet4).map_err(|e| e.errno)?, &key.to_bytes(), &value.to_bytes())?;
    let target = format!("127.0.0.1:{port}");
    let (outcome, seen) = watching(maps, || run_child(maps, hook.name(), target.as_ref(), None))?;
    drop(holder);
    Ok(judge(tier, signal, outcome?, reported(&seen, tier, hook, Reason::Rule)))
}

/// What the agent does with a child's pid before the child may act.
type Ready<'a> = &'a dyn Fn(u32) -> Result<(), Errno>;

/// A canary child named in `canary_tasks`: in this gate's map and in every other one
/// on the machine (another agent's, the generation a reload replaces, a pinned set), so
/// that only this gate's canary rules act on it. Dropped, it is removed from them all:
/// that must happen before the child is reaped, while its pid is still its own.
struct Named<'m> {
    own: bpf::Map<'m>,
    others: Vec<bpf::FdMap>,
    key: [u8; 4],
}

/// `canary_tasks`: a host tgid, and a value nothing reads.
const CANARY_TASKS: bpf::MapShape = bpf::MapShape { map_type: bpf::MAP_HASH, key_size: 4, value_size: 4 };

impl<'m> Named<'m> {
    fn new(maps: &'m Maps, pid: u32) -> Result<Named<'m>, Errno> {
        let key = pid.to_ne_bytes();
        let value = 1u32.to_ne_bytes();
        let own = maps.map(MapName::CanaryTasks).map_err(|e| e.errno)?;
        own.update(&key, &value).map_err(|e| e.errno)?;
        let mut others = bpf::maps_named(MapName::CanaryTasks.name(), CANARY_TASKS).unwrap_or_else(|e| {
            log::debug!("canary: other gates' canary_tasks not reached: {e}");
            Vec::new()
        });
        // Another gate's map that cannot take the child (full, or gone) is left out: at
        // worst that gate acts on the child too, which makes this proof fail, not pass.
        others.retain(|m| m.update(&key, &value).map_err(|e| log::debug!("canary: {e}")).is_ok());
        Ok(Named { own, others, key })
    }
}

impl Drop for Named<'_> {
    fn drop(&mut self) {
        let gone = |r: Result<(), bpf::Error>| match r {
            Ok(()) | Err(bpf::Error { errno: Errno::NOENT, .. }) => {}
            Err(e) => log::warn!("canary: {e}"),
        };
        gone(self.own.delete(&self.key));
        for m in &self.others {
            gone(m.delete(&self.key));
        }
    }
}

/// Spawns this binary as the canary child for `op` and waits for it. The child waits
/// for a byte on its stdin, sent once it is named in `canary_tasks` and `ready` (if
/// any) has seen its pid.
fn run_child(maps: &Maps, op: &str, target: &std::ffi::OsStr, ready: Option<Ready<'_>>) -> Result<Outcome, Errno> {
    let mut child = Command::new("/proc/self/exe");
    std::os::unix::process::CommandExt::arg0(&mut child, CHILD_ARGV0);
    let mut child = child
        .arg(op)
        .arg(target)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io_errno)?;
    let pid = child.id();
    let named = Named::new(maps, pid);
    let go = named.as_ref().map_err(|e| *e).and_then(|_| {
        ready.map_or(Ok(()), |ready| ready(pid))?;
        child.stdin.take().ok_or(Errno::PIPE)?.write_all(b"g").map_err(io_errno)
    });
    if let Err(e) = go {
        let _ = child.kill();
        exited(pid, false);
        drop(named);
        let _ = child.wait();
        return Err(e);
    }
    let finished = wait(&mut child, pid);
    drop(named);
    let status = child.wait().map_err(io_errno)?;
    Ok(if finished { Outcome::of(status) } else { Outcome::Other })
}

/// Whether child `pid` has exited, without reaping it; `poll`: do not block.
fn exited(pid: u32, poll: bool) -> bool {
    use rustix::process::{waitid, Pid, WaitId, WaitIdOptions};
    let Some(pid) = Pid::from_raw(pid as i32) else { return true };
    let mut options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
    if poll {
        options |= WaitIdOptions::NOHANG;
    }
    !matches!(waitid(WaitId::Pid(pid), options), Ok(None))
}

/// Waits until the child has exited (false: it was killed after CHILD_TIMEOUT); leaves
/// it to be reaped (see [`Named`]).
fn wait(child: &mut Child, pid: u32) -> bool {
    let deadline = Instant::now() + CHILD_TIMEOUT;
    while !exited(pid, true) {
        if Instant::now() >= deadline {
            let _ = child.kill();
            exited(pid, false);
            log::warn!("a canary child did not finish within {CHILD_TIMEOUT:?}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// Whether this process is a canary child its gate started: argv[0] is CHILD_ARGV0
/// (which anyone can set), its stdin is a pipe (the gate's go-ahead), and its parent
/// runs this same binary as root. A user cannot have a root agent as parent: the
/// agent starts no other children, and a process whose parent dies goes to init. So
/// a user who sets argv[0] gets the command line's usage error, not this mode (which
/// would exempt nothing anyway: the gate names its children by pid).
pub fn started_by_gate(argv0: &std::ffi::OsStr) -> bool {
    use rustix::fs::{fstat, stat, FileType};
    if argv0 != CHILD_ARGV0 {
        return false;
    }
    let Some(parent) = rustix::process::getppid() else { return false };
    let proc_dir = format!("/proc/{}", parent.as_raw_nonzero());
    let stdin_is_pipe =
        fstat(std::io::stdin()).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Fifo);
    let same_binary = match (stat("/proc/self/exe"), stat(format!("{proc_dir}/exe").as_str())) {
        (Ok(me), Ok(it)) => (me.st_dev, me.st_ino) == (it.st_dev, it.st_ino),
        _ => false,
    };
    stdin_is_pipe && same_binary && stat(proc_dir.as_str()).is_ok_and(|st| st.st_uid == 0)
}

/// The canary child: do `op`'s operation on `target`, say how it went in the exit code.
/// It acts only once the gate has named it as its canary (a byte on stdin).
pub fn child_main(op: &str, target: &std::ffi::OsStr) -> i32 {
    let mut go = [0u8];
    match std::io::Read::read_exact(&mut std::io::stdin(), &mut go) {
        Ok(()) => operate(op, target),
        Err(e) => CHILD_ERRNO + io_errno(e).raw_os_error().min(150),
    }
}

/// The canary child's operation `op` on `target`, its outcome as an exit code.
fn operate(op: &str, target: &std::ffi::OsStr) -> i32 {
    let hook = op;
    let result = match op {
        "open" => File::open(target).map(drop).map_err(io_errno),
        // A new name for the file, next to it: in /proc/PID/fd/ it can never be made.
        "link" => {
            let mut new = target.to_os_string();
            new.push(".link");
            rustix::fs::link(target, new.as_os_str())
        }
        // Replaces this process (same pid): a synchronous tier fails the exec itself.
        "exec" => Err(io_errno(std::os::unix::process::CommandExt::exec(&mut Command::new(target)))),
        "mmap" => File::open(target).map_err(io_errno).and_then(|f| bpf::map_executable(Some(f.as_fd()))),
        "mprotect" => File::open(target).map_err(io_errno).and_then(|f| bpf::protect_executable(Some(f.as_fd()))),
        "anon-mmap" => bpf::map_executable(None),
        "anon-mprotect" => bpf::protect_executable(None),
        "connect" | "send" => match target.to_str().and_then(|t| t.parse::<SocketAddr>().ok()) {
            Some(addr) if hook == "connect" => TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map(drop).map_err(io_errno),
            Some(addr) => UdpSocket::bind(("127.0.0.1", 0)).and_then(|s| s.send_to(b"canary", addr)).map(drop).map_err(io_errno),
            None => Err(Errno::INVAL),
        },
        _ => Err(Errno::INVAL),
    };
    match result {
        Ok(()) => 0,
        Err(e) => CHILD_ERRNO + e.raw_os_error().min(150),
    }
}

/// A private directory for the follow canary, removed with what is in it on drop. Its
/// name is random and it is created with O_EXCL semantics, so nothing prepared in
/// advance can stand in for it; a read-only or missing place is skipped.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create() -> Result<PrivateDir, Errno> {
        let mut last = Errno::NOENT;
        let tmp = std::env::var_os("TMPDIR").map(PathBuf::from);
        let bases = [Some(PathBuf::from("/run")), Some(PathBuf::from("/dev/shm")), Some(PathBuf::from("/tmp")), tmp];
        for base in bases.iter().flatten() {
            for _ in 0..8 {
                let mut r = [0u8; 8];
                rustix::rand::getrandom(&mut r, rustix::rand::GetRandomFlags::empty())?;
                let dir = base.join(format!(".enforce-canary-{:016x}", u64::from_ne_bytes(r)));
                match rustix::fs::mkdir(&dir, rustix::fs::Mode::RWXU) {
                    Ok(()) => return Ok(PrivateDir(dir)),
                    Err(Errno::EXIST) => continue,
                    Err(e) => {
                        last = e;
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    /// Creates `name` in the directory (never through a link) and returns its inode.
    fn file(&self, name: &str) -> Result<InodeKey, Errno> {
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::open(self.0.join(name), OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::RUSR)?;
        rules::inode_key_of(&fd)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        for name in ["a", "b"] {
            let _ = std::fs::remove_file(self.0.join(name));
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn follow_canary(maps: &Maps, tier: Tier) -> Result<Step, Errno> {
    let dir = PrivateDir::create()?;
    let (target, incoming) = (dir.file("a")?, dir.file("b")?);
    let map = || maps.map(MapName::DenyInodes).map_err(|e| e.errno);
    let rule = InodeRule { open_rule: abi::RULE_CANARY, exec_rule: 0 };
    maps.mark_inode(target.ino).map_err(|e| e.errno)?;
    let _target_entry = Entry::insert(map()?, &target.to_bytes(), &rule.to_bytes())?;
    let _incoming_entry = Entry { map: map()?, key: heapless::Vec::from_slice(&incoming.to_bytes()).unwrap_or_default() };
    let (renamed, seen) = watching(maps, || rustix::fs::rename(dir.0.join("b"), dir.0.join("a")))?;
    renamed?;
    let mut value = [0u8; InodeRule::SIZE];
    let followed = map()?.lookup(&incoming.to_bytes(), &mut value).map_err(|e| e.errno)? && value == rule.to_bytes();
    // The replaced inode is freed as the rename drops it; its entry must go with it.
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut forgotten = false;
    while !forgotten && Instant::now() < deadline {
        forgotten = !map()?.lookup(&target.to_bytes(), &mut value).map_err(|e| e.errno)?;
        if !forgotten {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // The denied file now at "a" loses its name: reported, so that the agent would
    // watch the path for a new file.
    let (unlinked, seen_unlink) = watching(maps, || rustix::fs::unlink(dir.0.join("a")))?;
    unlinked?;
    let reported_as = |seen: &Seen, action: Action| seen.iter().any(|&(t, op, a, _)| t == tier && op == Hook::Follow && a == action);
    let (moved, lost) = (reported_as(&seen, Action::Followed), reported_as(&seen_unlink, Action::Unlinked));
    if !followed || !forgotten || !moved || !lost {
        log::warn!(
            "{} tier, follow canary: rule followed: {followed}, reported: {moved}; replaced inode forgotten: \
             {forgotten}; lost name reported: {lost}",
            tier.name()
        );
        return Ok(Step::Failed(0));
    }
    Ok(Step::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KILL: u8 = 9;

    #[test]
    fn synchronous_tiers_pass_only_on_eperm_they_reported() {
        for tier in [Tier::Lsm, Tier::Fmodret] {
            assert_eq!(judge(tier, KILL, Outcome::Failed(1), true), Step::Ok);
            assert_eq!(judge(tier, KILL, Outcome::Failed(1), false), Step::Failed(0), "EPERM from elsewhere");
            assert_eq!(judge(tier, KILL, Outcome::Done, true), Step::Failed(0));
            assert_eq!(judge(tier, KILL, Outcome::Failed(13), true), Step::Failed(13));
            assert_eq!(judge(tier, KILL, Outcome::Killed(9), true), Step::Failed(0));
            assert_eq!(judge(tier, KILL, Outcome::Other, true), Step::Failed(0));
        }
    }

    #[test]
    fn signal_tiers_pass_only_on_the_configured_signal() {
        for tier in [Tier::Kprobe, Tier::Tracepoint, Tier::Path] {
            assert_eq!(judge(tier, KILL, Outcome::Killed(9), true), Step::Ok);
            assert_eq!(judge(tier, KILL, Outcome::Killed(9), false), Step::Failed(0));
            assert_eq!(judge(tier, 15, Outcome::Killed(15), true), Step::Ok);
            assert_eq!(judge(tier, KILL, Outcome::Killed(15), true), Step::Failed(0));
            assert_eq!(judge(tier, KILL, Outcome::Failed(1), true), Step::Failed(0), "EPERM is not a kill");
            assert_eq!(judge(tier, KILL, Outcome::Done, true), Step::Failed(0));
        }
    }

    #[test]
    fn exit_codes_carry_the_errno() {
        assert_eq!(Outcome::of(ExitStatus::from_raw(0)), Outcome::Done);
        assert_eq!(Outcome::of(ExitStatus::from_raw((CHILD_ERRNO + 1) << 8)), Outcome::Failed(1));
        assert_eq!(Outcome::of(ExitStatus::from_raw(9)), Outcome::Killed(9));
        assert_eq!(Outcome::of(ExitStatus::from_raw(3 << 8)), Outcome::Other);
    }

    #[test]
    fn child_reports_errors_as_exit_codes() {
        assert_eq!(operate("open", "/proc/self/status".as_ref()), 0);
        assert_eq!(operate("open", "/nonexistent/enforce".as_ref()), CHILD_ERRNO + 2);
        assert_eq!(operate("connect", "not an address".as_ref()), CHILD_ERRNO + 22);
        assert_eq!(operate("bogus", "x".as_ref()), CHILD_ERRNO + 22);
        // The path tier's link canary never makes a name: /proc/PID/fd/ takes none.
        let memfd = canary_memfd().unwrap();
        assert_ne!(operate("link", fd_path(&memfd).as_os_str()), 0);
        assert!(!std::path::Path::new(&format!("{}.link", fd_path(&memfd).display())).exists());
    }

    #[test]
    fn the_exit0_program_runs() {
        let memfd = canary_memfd().unwrap();
        let status = Command::new(fd_path(&memfd)).status().unwrap();
        assert_eq!(status.code(), Some(0), "{status}");
        assert_eq!(operate("mmap", fd_path(&memfd).as_os_str()), 0);
        assert_eq!(operate("mprotect", fd_path(&memfd).as_os_str()), 0);
    }

    #[test]
    fn private_dirs_are_fresh_and_removed() {
        let (a, b) = (PrivateDir::create().unwrap(), PrivateDir::create().unwrap());
        assert_ne!(a.0, b.0);
        a.file("a").unwrap();
        assert_eq!(a.file("a"), Err(Errno::EXIST), "never reuses a file");
        let path = a.0.clone();
        drop(a);
        assert!(!path.exists());
    }
}
