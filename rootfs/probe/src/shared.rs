//! Children that share their parent's descriptor table (`CLONE_FILES`) or memory
//! (`CLONE_VM`) without being its threads: what a killed child leaves in the shared
//! table or memory, the parent can still use.

use crate::{cstr, errno, finish};
use std::io::{self, Write};
use std::process::exit;
use std::sync::atomic::{AtomicUsize, Ordering};

const STACK: usize = 256 * 1024;

/// Runs `child` in a clone(2) child with `flags` (plus SIGCHLD) and waits for it;
/// returns its wait status.
fn clone_and_wait(flags: i32, child: extern "C" fn(*mut libc::c_void) -> i32, arg: *mut libc::c_void) -> Result<i32, i32> {
    let mut stack = vec![0u8; STACK];
    let top = unsafe { stack.as_mut_ptr().add(STACK) } as *mut libc::c_void;
    let pid = unsafe { libc::clone(child, top, flags | libc::SIGCHLD, arg) };
    if pid < 0 {
        return Err(errno());
    }
    let mut status = 0;
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
    drop(stack);
    Ok(status)
}

fn fate(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        format!("was killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exited {}", libc::WEXITSTATUS(status))
    }
}

extern "C" fn open_child(arg: *mut libc::c_void) -> i32 {
    let path = arg as *const libc::c_char;
    let fd = unsafe { libc::syscall(libc::SYS_openat, libc::AT_FDCWD, path, libc::O_RDONLY) };
    if fd < 0 { 1 } else { 0 }
}

/// `clone-files-open PATH`: a CLONE_FILES child opens PATH; once it is gone, the
/// parent looks in the table they shared for a descriptor of PATH and reads it. Exit
/// 3 when it read the file, 0 when no usable descriptor was left.
pub fn cmd_clone_files_open(path: &str) -> ! {
    let what = format!("clone-files-open {path}");
    let c = cstr(path);
    let status = clone_and_wait(libc::CLONE_FILES, open_child, c.as_ptr() as *mut libc::c_void)
        .unwrap_or_else(|e| finish(&what, Err(e)));
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else { finish(&what, Err(errno())) };
    for fd in fds.flatten() {
        if std::fs::read_link(fd.path()).ok().as_deref() != Some(std::path::Path::new(path)) {
            continue;
        }
        let Ok(n) = fd.file_name().to_string_lossy().parse::<i32>() else { continue };
        let mut buf = [0u8; 64];
        let r = unsafe { libc::pread(n, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if r >= 0 {
            println!("{what}: the child {}; the parent read {r} bytes through descriptor {n}", fate(status));
            let _ = io::stdout().flush();
            exit(3);
        }
    }
    println!("{what}: ok (the child {}; no descriptor of it left)", fate(status));
    exit(0)
}

/// Where the CLONE_VM child mapped the file (0: not yet).
static MAPPED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn map_child(arg: *mut libc::c_void) -> i32 {
    let fd = arg as usize as i32;
    let p = unsafe { libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_EXEC, libc::MAP_PRIVATE, fd, 0) };
    if p == libc::MAP_FAILED {
        return 1;
    }
    MAPPED.store(p as usize, Ordering::SeqCst);
    0
}

/// `clone-vm-exec PATH`: a CLONE_VM child maps PATH executable; once it is gone, the
/// parent finds the mapping in the memory they shared (/proc/self/maps) and calls its
/// first byte, which the file must make a function that returns (x86: `ret`). Exit 3
/// when the call returned (the code ran), 0 when no executable mapping was left.
/// `vfork-map-exec PATH`: the same with CLONE_VM|CLONE_VFORK (the parent waits).
pub fn cmd_clone_vm_exec(path: &str, vfork: bool) -> ! {
    let what = format!("{} {path}", if vfork { "vfork-map-exec" } else { "clone-vm-exec" });
    let fd = unsafe { libc::open(cstr(path).as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        finish(&what, Err(errno()));
    }
    let flags = if vfork { libc::CLONE_VM | libc::CLONE_VFORK } else { libc::CLONE_VM };
    let status = clone_and_wait(flags, map_child, fd as usize as *mut libc::c_void)
        .unwrap_or_else(|e| finish(&what, Err(e)));
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let start = maps.lines().find(|l| l.ends_with(path) && l.split_whitespace().nth(1).is_some_and(|p| p.contains('x')));
    let Some(start) = start.and_then(|l| l.split('-').next()).and_then(|a| usize::from_str_radix(a, 16).ok()) else {
        println!("{what}: ok (the child {}; no executable mapping of it left)", fate(status));
        exit(0)
    };
    let f: extern "C" fn() = unsafe { std::mem::transmute(start) };
    f();
    println!("{what}: the child {}; the parent ran code from its mapping at {start:#x}", fate(status));
    let _ = io::stdout().flush();
    exit(3)
}
