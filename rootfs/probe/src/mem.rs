//! Code that runs without an execve(2) of its file: executable mappings of a file
//! (what a dynamic loader does with `ld.so PROGRAM`), executable anonymous memory,
//! and an exec of an in-memory copy.

use crate::{cstr, errno, finish, open_ro};
use std::ffi::CString;
use std::io::{self, Write};

fn page() -> usize {
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// The raw syscall: musl's mmap() reports an EPERM of an anonymous mapping as ENOMEM
/// (working around old kernels), which would hide what the agent did.
fn mmap(prot: i32, flags: i32, fd: i32) -> Result<*mut libc::c_void, i32> {
    // Every argument as a full register: variadic ints leave the upper half undefined on arm64.
    let (len, prot, flags, fd) = (page() as libc::c_long, prot as libc::c_long, flags as libc::c_long, fd as libc::c_long);
    // 32-bit ARM has mmap2 (the offset in pages); with offset 0 it is the same call.
    #[cfg(target_pointer_width = "64")]
    let nr = libc::SYS_mmap;
    #[cfg(target_arch = "arm")]
    let nr = libc::SYS_mmap2;
    let p = unsafe { libc::syscall(nr, 0 as libc::c_long, len, prot, flags, fd, 0 as libc::c_long) };
    if p == -1 { Err(errno()) } else { Ok(p as *mut libc::c_void) }
}

fn mprotect(p: *mut libc::c_void, prot: i32) -> Result<(), i32> {
    if unsafe { libc::mprotect(p, page(), prot) } < 0 { Err(errno()) } else { Ok(()) }
}


/// `mmap-exec PATH`: the first page of PATH mapped PROT_READ|PROT_EXEC, MAP_PRIVATE.
/// A file on a noexec mount gives EPERM without any agent.
pub fn cmd_mmap_exec(path: &str) -> ! {
    let res = open_ro(path).and_then(|fd| mmap(libc::PROT_READ | libc::PROT_EXEC, libc::MAP_PRIVATE, fd.0)).map(drop);
    finish(&format!("mmap-exec {path}"), res)
}

/// `mprotect-exec PATH`: the first page mapped PROT_READ, then made executable.
pub fn cmd_mprotect_exec(path: &str) -> ! {
    let res = open_ro(path)
        .and_then(|fd| mmap(libc::PROT_READ, libc::MAP_PRIVATE, fd.0))
        .and_then(|p| mprotect(p, libc::PROT_READ | libc::PROT_EXEC));
    finish(&format!("mprotect-exec {path}"), res)
}

/// `pkey-mprotect-exec PATH`: the same through pkey_mprotect(2) with no key (-1),
/// which any user may call, where the kernel has it.
pub fn cmd_pkey_mprotect_exec(path: &str) -> ! {
    let res = open_ro(path).and_then(|fd| mmap(libc::PROT_READ, libc::MAP_PRIVATE, fd.0)).and_then(|p| {
        let ret = unsafe { libc::syscall(libc::SYS_pkey_mprotect, p, page(), libc::PROT_READ | libc::PROT_EXEC, -1) };
        if ret == 0 { Ok(()) } else { Err(crate::errno()) }
    });
    finish(&format!("pkey-mprotect-exec {path}"), res)
}

/// `shm-attach EXEC|DATA`: a private SysV segment of one page, attached read-write
/// with SHM_EXEC (as executable memory) or without. The segment is removed before it is
/// attached the way asked (Linux attaches a segment marked for removal while another
/// attachment keeps it), so a killed probe leaves none behind.
pub fn cmd_shm_attach(exec: bool) -> ! {
    const SHM_EXEC: i32 = 0o100000;
    let what = if exec { "shm-attach EXEC" } else { "shm-attach DATA" };
    let id = unsafe { libc::shmget(libc::IPC_PRIVATE, page(), libc::IPC_CREAT | 0o600) };
    if id < 0 {
        finish(what, Err(errno()));
    }
    let first = unsafe { libc::shmat(id, std::ptr::null(), 0) };
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    if first as isize == -1 {
        finish(what, Err(errno()));
    }
    let p = unsafe { libc::shmat(id, std::ptr::null(), if exec { SHM_EXEC } else { 0 }) };
    finish(what, if p as isize == -1 { Err(errno()) } else { Ok(()) })
}

/// `patch-interp SRC DST INTERP`: DST is SRC with its PT_INTERP naming INTERP
/// (NUL-padded; it must fit where SRC's name was). 32- and 64-bit little-endian ELF.
pub fn cmd_patch_interp(src: &str, dst: &str, interp: &str) -> ! {
    let fail = |why: &str| -> ! {
        eprintln!("patch-interp {src}: {why}");
        std::process::exit(2)
    };
    let mut elf = std::fs::read(src).unwrap_or_else(|e| fail(&e.to_string()));
    let word = |at: usize, n: usize| -> usize {
        let b = elf.get(at..at + n).unwrap_or_else(|| fail("truncated"));
        b.iter().rev().fold(0, |v, &x| v << 8 | x as usize)
    };
    if elf.get(..4) != Some(b"\x7fELF") || elf.get(5) != Some(&1) {
        fail("not a little-endian ELF file");
    }
    // (phoff, phentsize, phnum, p_offset, p_filesz) offsets and widths by class.
    let (phoff, phent, phnum, off, filesz, w) = match elf[4] {
        1 => (word(28, 4), word(42, 2), word(44, 2), 4, 16, 4),
        2 => (word(32, 8), word(54, 2), word(56, 2), 8, 32, 8),
        _ => fail("unknown ELF class"),
    };
    let interp_at = (0..phnum).map(|i| phoff + i * phent).find(|&ph| word(ph, 4) == 3);
    let ph = interp_at.unwrap_or_else(|| fail("no PT_INTERP"));
    let (at, len) = (word(ph + off, w), word(ph + filesz, w));
    if interp.len() + 1 > len || at + len > elf.len() {
        fail("the new interpreter's name does not fit");
    }
    elf[at..at + len].fill(0);
    elf[at..at + interp.len()].copy_from_slice(interp.as_bytes());
    std::fs::write(dst, &elf).unwrap_or_else(|e| fail(&e.to_string()));
    std::fs::set_permissions(dst, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap_or_else(|e| fail(&e.to_string()));
    std::process::exit(0)
}

const ANON: i32 = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;

/// `anon-exec`: anonymous memory mapped writable and executable at once.
pub fn cmd_anon_exec() -> ! {
    let res = mmap(libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC, ANON, -1).map(drop);
    finish("anon-exec", res)
}

#[cfg(target_arch = "x86_64")]
const RET: &[u8] = &[0xc3];
#[cfg(target_arch = "aarch64")]
const RET: &[u8] = &0xd65f03c0u32.to_le_bytes();
#[cfg(target_arch = "arm")]
const RET: &[u8] = &0xe12fff1eu32.to_le_bytes(); // bx lr (ARM state)

/// Makes freshly written code visible to instruction fetch. x86 keeps the caches
/// coherent; arm64 needs the data cache line cleaned and the instruction cache line
/// invalidated (both allowed at EL0 on Linux).
fn sync_icache(_p: *mut libc::c_void) {
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!("dc cvau, {0}", "dsb ish", "ic ivau, {0}", "dsb ish", "isb", in(reg) _p);
    }
    // 32-bit ARM: the kernel's cacheflush call (__ARM_NR_cacheflush) over the page.
    #[cfg(target_arch = "arm")]
    unsafe {
        let start = _p as libc::c_long;
        libc::syscall(0x0f0002, start, start + page() as libc::c_long, 0 as libc::c_long);
    }
}

/// `wx-mprotect`: JIT-style code: anonymous PROT_READ|PROT_WRITE memory gets a `ret`
/// instruction, becomes PROT_READ|PROT_EXEC, and is called, so `ok` means code
/// written at run time really ran.
pub fn cmd_wx_mprotect() -> ! {
    let res = mmap(libc::PROT_READ | libc::PROT_WRITE, ANON, -1).and_then(|p| {
        unsafe { std::ptr::copy_nonoverlapping(RET.as_ptr(), p as *mut u8, RET.len()) };
        sync_icache(p);
        mprotect(p, libc::PROT_READ | libc::PROT_EXEC)?;
        let f: extern "C" fn() = unsafe { std::mem::transmute(p) };
        f();
        Ok(())
    });
    finish("wx-mprotect", res)
}

/// `memfd-exec PATH [ARGS..]`: PATH copied into a memfd and executed from there with
/// execveat(fd, "", AT_EMPTY_PATH), argv[0] = PATH. No MFD_CLOEXEC: a script's
/// interpreter must still find the fd (/dev/fd/N). Prints only on failure.
pub fn cmd_memfd_exec(path: &str, args: &[String]) -> ! {
    let what = format!("memfd-exec {path}");
    let mut src = std::fs::File::open(path).unwrap_or_else(|e| finish(&what, Err(e.raw_os_error().unwrap_or(libc::EIO))));
    let mfd = unsafe { libc::memfd_create(c"probe-memfd".as_ptr(), 0) };
    if mfd < 0 {
        finish(&what, Err(errno()));
    }
    let mut dst = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(mfd) };
    if let Err(e) = io::copy(&mut src, &mut dst) {
        finish(&what, Err(e.raw_os_error().unwrap_or(libc::EIO)));
    }
    let owned: Vec<CString> = std::iter::once(cstr(path)).chain(args.iter().map(|a| cstr(a))).collect();
    let mut argv: Vec<*const libc::c_char> = owned.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    extern "C" {
        static environ: *const *const libc::c_char;
    }
    let _ = io::stdout().flush();
    unsafe { libc::syscall(libc::SYS_execveat, mfd, c"".as_ptr(), argv.as_ptr(), environ, libc::AT_EMPTY_PATH) };
    finish(&what, Err(errno()))
}
