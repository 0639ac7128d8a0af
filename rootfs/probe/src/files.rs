//! Opens that reach a file some other way than open(2) of its path, or after the
//! file behind the path changed: by file handle, with catchable signals ignored,
//! and right after an atomic replace.

use crate::{cstr, errno, errno_name, finish, open_ro, Fd};
use std::io::{self, Write};
use std::path::Path;
use std::process::exit;
use std::time::{Duration, Instant};

/// One read(2): the descriptor really gives access to the data.
fn read_some(fd: &Fd) -> Result<(), i32> {
    let mut b = [0u8; 4096];
    if unsafe { libc::read(fd.0, b.as_mut_ptr() as *mut libc::c_void, b.len()) } < 0 { Err(errno()) } else { Ok(()) }
}

fn exit_with(line: &str, code: i32) -> ! {
    println!("{line}");
    let _ = io::stdout().flush();
    exit(code)
}

/// `struct file_handle` with room for the largest handle (MAX_HANDLE_SZ, 128).
#[repr(C)]
struct Handle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; 128],
}

/// `open-by-handle PATH`: name_to_handle_at(PATH), then open_by_handle_at on a
/// descriptor of PATH's directory (any file on that mount does), then one read.
/// open_by_handle_at needs CAP_DAC_READ_SEARCH: as non-root it gives EPERM.
pub fn cmd_open_by_handle(path: &str) -> ! {
    let what = format!("open-by-handle {path}");
    let mut h = Handle { handle_bytes: 128, handle_type: 0, f_handle: [0; 128] };
    let mut mount_id = 0;
    let hp = &mut h as *mut Handle as *mut libc::file_handle;
    if unsafe { libc::name_to_handle_at(libc::AT_FDCWD, cstr(path).as_ptr(), hp, &mut mount_id, 0) } < 0 {
        finish(&format!("{what} (name_to_handle_at)"), Err(errno()));
    }
    let dir = match Path::new(path).parent().and_then(|d| d.to_str()) {
        Some("") | None => ".",
        Some(d) => d,
    };
    let mfd = unsafe { libc::open(cstr(dir).as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if mfd < 0 {
        finish(&format!("{what} (open {dir})"), Err(errno()));
    }
    let mfd = Fd(mfd);
    let fd = unsafe { libc::open_by_handle_at(mfd.0, hp, libc::O_RDONLY | libc::O_CLOEXEC) };
    let res = if fd < 0 { Err(errno()) } else { read_some(&Fd(fd)) };
    finish(&what, res)
}

/// `ignore-term open PATH`: every catchable signal the agent's `signal` key offers
/// (TERM, INT, HUP, QUIT, USR1, USR2, ABRT) ignored, then PATH opened and read. The
/// result line is the plain `open PATH: ...`: if it says ok where PATH is denied,
/// the signal did not stop the process. Only KILL cannot be ignored.
pub fn cmd_ignore_term_open(path: &str) -> ! {
    let catchable = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGABRT];
    for sig in catchable {
        if unsafe { libc::signal(sig, libc::SIG_IGN) } == libc::SIG_ERR {
            finish("ignore-term", Err(errno()));
        }
    }
    finish(&format!("open {path}"), open_ro(path).and_then(|fd| read_some(&fd)))
}

/// Creates `path` (`flags` add O_TRUNC or O_EXCL) holding `body`. Errors name the step.
fn write_new(path: &str, flags: i32, body: &str) -> Result<(), String> {
    let step = |s: String, e: i32| format!("{s}: {}", errno_name(e));
    let fd = unsafe { libc::open(cstr(path).as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC | flags, 0o644) };
    if fd < 0 {
        return Err(step(format!("create {path}"), errno()));
    }
    let fd = Fd(fd);
    if unsafe { libc::write(fd.0, body.as_ptr() as *const libc::c_void, body.len()) } != body.len() as isize {
        return Err(step(format!("write {path}"), errno()));
    }
    Ok(())
}

/// Writes a new file `TARGET.tmp.<tag>` next to TARGET and renames it over TARGET,
/// as passwd(1) and package managers replace a file. Errors name the step.
fn replace(target: &str, tag: &str) -> Result<(), String> {
    let tmp = format!("{target}.tmp.{tag}");
    write_new(&tmp, libc::O_TRUNC, &format!("replacement {tag}\n"))?;
    if unsafe { libc::rename(cstr(&tmp).as_ptr(), cstr(target).as_ptr()) } < 0 {
        return Err(format!("rename {tmp}: {}", errno_name(errno())));
    }
    Ok(())
}

/// Opens `target` every millisecond until it is denied or `ms` ms have passed: how
/// long a new file there stayed open to everyone. Exit 1 with `WHAT: denied after X
/// ms`, 3 with `WHAT: still openable after MS ms`.
fn open_until_denied(what: &str, target: &str, ms: u64) -> ! {
    let start = Instant::now();
    loop {
        match open_ro(target) {
            Ok(_) => {}
            Err(libc::EPERM) => exit_with(&format!("{what}: denied after {} ms", start.elapsed().as_millis()), 1),
            Err(e) => finish(what, Err(e)),
        }
        if start.elapsed() >= Duration::from_millis(ms) {
            exit_with(&format!("{what}: still openable after {ms} ms"), 3);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `rename-replace TARGET N`: N times, replace TARGET by a rename and open it at once
/// (same thread, right after rename returns): the new file must already be denied.
/// Exit 3 at the first open that succeeds, 1 with `EPERM x N` when all were denied.
pub fn cmd_rename_replace(target: &str, n: &str) -> ! {
    let n: u32 = n.parse().unwrap_or_else(|_| crate::usage());
    for i in 1..=n {
        if let Err(e) = replace(target, &i.to_string()) {
            exit_with(&format!("rename-replace {e}"), 1);
        }
        match open_ro(target) {
            Ok(_) => exit_with(&format!("rename-replace: opened the replacement after rename #{i}"), 3),
            Err(libc::EPERM) => {}
            Err(e) => finish("rename-replace", Err(e)),
        }
    }
    exit_with(&format!("rename-replace: EPERM x {n}"), 1)
}

/// `lose-name-wait unlink|rename TARGET MS`: TARGET loses its name (unlinked, or
/// renamed to TARGET.away), a new file is created at TARGET, and TARGET is opened every
/// millisecond until it is denied or MS ms have passed: how long the new file stayed
/// open to everyone. Exit 1 with `denied after X ms`, 3 with `still openable after MS ms`.
pub fn cmd_lose_name_wait(how: &str, target: &str, ms: &str) -> ! {
    let ms: u64 = ms.parse().unwrap_or_else(|_| crate::usage());
    let c = cstr(target);
    let gone = match how {
        "unlink" => unsafe { libc::unlink(c.as_ptr()) },
        "rename" => unsafe { libc::rename(c.as_ptr(), cstr(&format!("{target}.away")).as_ptr()) },
        _ => crate::usage(),
    };
    if gone < 0 {
        exit_with(&format!("lose-name-wait: {how} {target}: {}", errno_name(errno())), 1);
    }
    if let Err(e) = write_new(target, libc::O_EXCL, "new file\n") {
        exit_with(&format!("lose-name-wait: {e}"), 1);
    }
    open_until_denied("lose-name-wait", target, ms)
}

/// `opath-unlink-reopen TARGET MS`: an O_PATH descriptor of TARGET (no open the rules
/// see), TARGET unlinked, MS ms of waiting, then TARGET read again through
/// /proc/self/fd/N. Prints `reopened: ok` (exit 0) or the errno (exit 1).
pub fn cmd_opath_unlink_reopen(target: &str, ms: &str) -> ! {
    let ms: u64 = ms.parse().unwrap_or_else(|_| crate::usage());
    let c = cstr(target);
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        exit_with(&format!("opath-unlink-reopen: O_PATH {target}: {}", errno_name(errno())), 1);
    }
    if unsafe { libc::unlink(c.as_ptr()) } < 0 {
        exit_with(&format!("opath-unlink-reopen: unlink {target}: {}", errno_name(errno())), 1);
    }
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let res = std::fs::read(format!("/proc/self/fd/{fd}")).map(drop).map_err(|e| e.raw_os_error().unwrap_or(0));
    crate::finish("reopened", res)
}

/// `opath-in-flight-reopen TARGET MS`: as `opath-unlink-reopen`, but while the file
/// is unlinked and MS ms pass its only descriptor is in flight in a Unix socket (sent
/// to ourselves with SCM_RIGHTS, closed here), then received and read.
pub fn cmd_opath_in_flight_reopen(target: &str, ms: &str) -> ! {
    use std::os::unix::net::UnixDatagram;
    let ms: u64 = ms.parse().unwrap_or_else(|_| crate::usage());
    let c = cstr(target);
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        exit_with(&format!("opath-in-flight-reopen: O_PATH {target}: {}", errno_name(errno())), 1);
    }
    let (a, b) = UnixDatagram::pair().unwrap_or_else(|e| exit_with(&format!("opath-in-flight-reopen: socketpair: {e}"), 1));
    send_fd(std::os::fd::AsRawFd::as_raw_fd(&a), fd);
    unsafe { libc::close(fd) };
    if unsafe { libc::unlink(c.as_ptr()) } < 0 {
        exit_with(&format!("opath-in-flight-reopen: unlink {target}: {}", errno_name(errno())), 1);
    }
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let got = recv_fd(std::os::fd::AsRawFd::as_raw_fd(&b));
    let res = std::fs::read(format!("/proc/self/fd/{got}")).map(drop).map_err(|e| e.raw_os_error().unwrap_or(0));
    crate::finish("reopened", res)
}

/// A message of one byte (`byte`) with room for one descriptor (`space`), as
/// sendmsg and recvmsg take it; `control` bytes of `space` are in use.
fn fd_msg(byte: &mut [u8; 1], iov: &mut libc::iovec, space: &mut [u8; 64], control: usize) -> libc::msghdr {
    *iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = space.as_mut_ptr().cast();
    msg.msg_controllen = control as _;
    msg
}

fn send_fd(sock: i32, fd: i32) {
    let (mut byte, mut space) = ([0u8], [0u8; 64]);
    let mut iov = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
    let msg = fd_msg(&mut byte, &mut iov, &mut space, unsafe { libc::CMSG_SPACE(4) } as usize);
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>(), fd);
        if libc::sendmsg(sock, &msg, 0) < 0 {
            exit_with(&format!("opath-in-flight-reopen: sendmsg: {}", errno_name(errno())), 1);
        }
    }
}

fn recv_fd(sock: i32) -> i32 {
    let (mut byte, mut space) = ([0u8], [0u8; 64]);
    let mut iov = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
    let mut msg = fd_msg(&mut byte, &mut iov, &mut space, 64);
    unsafe {
        if libc::recvmsg(sock, &mut msg, 0) < 0 {
            exit_with(&format!("opath-in-flight-reopen: recvmsg: {}", errno_name(errno())), 1);
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            exit_with("opath-in-flight-reopen: no descriptor received", 1);
        }
        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>())
    }
}

/// `rename-replace-wait TARGET MS`: one replacement, then open TARGET every
/// millisecond until it is denied or MS ms have passed: how long the new file stayed
/// open to everyone (an agent that re-resolves the path after an inotify event
/// closes the window late; one that follows the rename in the kernel never opens it).
/// Exit 1 with `denied after X ms`, 3 with `still openable after MS ms`.
pub fn cmd_rename_replace_wait(target: &str, ms: &str) -> ! {
    let ms: u64 = ms.parse().unwrap_or_else(|_| crate::usage());
    if let Err(e) = replace(target, "wait") {
        exit_with(&format!("rename-replace-wait {e}"), 1);
    }
    open_until_denied("rename-replace-wait", target, ms)
}
