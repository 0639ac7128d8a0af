//! Offenders that repeat: a process opening a file in a tight loop and counting what
//! each open gave (the synchronous tiers answer EPERM), and a supervisor that forks
//! one child per open and counts how each ended (the signal tiers kill the child).
//! Both run until they have made N attempts or receive SIGTERM (or SIGINT), then
//! print one line of totals. They are what the reliability proofs count against the
//! agent's own totals (rootfs/guest/reliability.sh).

use crate::{cstr, errno, usage};
use std::io::{self, Write};
use std::process::exit;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGTERM and SIGINT end the loop after the attempt in progress.
fn stop_on_term() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        unsafe { libc::signal(sig, on_stop as extern "C" fn(libc::c_int) as libc::sighandler_t) };
    }
}

/// The attempt limit: a number, or `-` for no limit (until SIGTERM).
fn limit(n: &str) -> u64 {
    if n == "-" { u64::MAX } else { n.parse().unwrap_or_else(|_| usage()) }
}

fn done(line: String, good: bool) -> ! {
    println!("{line}");
    let _ = io::stdout().flush();
    exit(if good { 0 } else { 3 })
}

/// `open-loop PATH N|-`: open(PATH) + close, as fast as it can. Prints
/// `open-loop PATH: attempts=A eperm=E ok=O other=X (errno N)`; exit 0 when every open
/// was denied with EPERM, 3 when any succeeded or failed otherwise.
pub fn cmd_open_loop(path: &str, n: &str) -> ! {
    let (n, p) = (limit(n), cstr(path));
    stop_on_term();
    let (mut attempts, mut eperm, mut ok, mut other, mut last_other) = (0u64, 0u64, 0u64, 0u64, 0);
    while attempts < n && !STOP.load(Ordering::Relaxed) {
        attempts += 1;
        let fd = unsafe { libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd >= 0 {
            unsafe { libc::close(fd) };
            ok += 1;
        } else {
            match errno() {
                libc::EPERM => eperm += 1,
                e => {
                    other += 1;
                    last_other = e;
                }
            }
        }
    }
    let why = if other > 0 { format!(" (errno {last_other})") } else { String::new() };
    done(format!("open-loop {path}: attempts={attempts} eperm={eperm} ok={ok} other={other}{why}"), ok == 0 && other == 0)
}

/// `kill-loop PATH N|-`: forks a child per attempt that opens PATH once (and exits 3
/// if the open returned to it, 1 on EPERM, 2 on another error), waits for it, and
/// counts how it ended. Prints `kill-loop PATH: attempts=A killed=K opened=O
/// eperm=E other=X`; exit 0 when every child was killed by SIGKILL.
pub fn cmd_kill_loop(path: &str, n: &str) -> ! {
    let (n, p) = (limit(n), cstr(path));
    stop_on_term();
    let (mut attempts, mut killed, mut opened, mut eperm, mut other) = (0u64, 0u64, 0u64, 0u64, 0u64);
    while attempts < n && !STOP.load(Ordering::Relaxed) {
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            done(format!("kill-loop {path}: fork: errno {}", errno()), false);
        }
        if pid == 0 {
            let fd = unsafe { libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            let code = if fd >= 0 { 3 } else if errno() == libc::EPERM { 1 } else { 2 };
            unsafe { libc::_exit(code) };
        }
        attempts += 1;
        let mut status = 0;
        while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
            if errno() != libc::EINTR {
                done(format!("kill-loop {path}: waitpid: errno {}", errno()), false);
            }
        }
        if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL {
            killed += 1;
        } else {
            match libc::WEXITSTATUS(status) {
                3 => opened += 1,
                1 => eperm += 1,
                _ => other += 1,
            }
        }
    }
    done(
        format!("kill-loop {path}: attempts={attempts} killed={killed} opened={opened} eperm={eperm} other={other}"),
        killed == attempts,
    )
}

/// `rss PID`: the resident set size of PID in KiB (VmRSS).
pub fn cmd_rss(pid: &str) -> ! {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_else(|e| {
        println!("rss {pid}: {e}");
        exit(1)
    });
    match status.lines().find_map(|l| l.strip_prefix("VmRSS:")) {
        Some(v) => done(v.trim().trim_end_matches("kB").trim().to_string(), true),
        None => done(format!("rss {pid}: no VmRSS"), false),
    }
}
