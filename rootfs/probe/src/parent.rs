//! `probe stopped-parent AGENT OP ARGS..`: a child whose parent runs the agent's binary.
//!
//! As nobody: a middle process forks a child, then execs AGENT (`--check-config
//! --config /dev/null`) under PTRACE_TRACEME, so it stops before its first instruction
//! and stays a process running the agent's binary for as long as this probe (its
//! tracer) likes. The child waits until its parent's executable is AGENT, then runs
//! `probe OP ARGS..` in its own process (exec keeps its pid and parent): its result
//! line comes back through a pipe. Being a child of the agent's binary must not exempt
//! it: exit 3 "got through: LINE" when the operation succeeded, 0 "ok (LINE)" when it
//! was denied (or "ok (killed)" when it printed nothing).

use std::ffi::CString;
use std::io::Read;
use std::os::fd::FromRawFd;
use std::process::exit;

use crate::{cstr, usage};

const NOBODY: u32 = 65534;

pub fn cmd_stopped_parent(agent: &str, op: &[String]) -> ! {
    if op.is_empty() {
        usage();
    }
    let mut fds = [0i32; 2];
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        println!("stopped-parent: pipe failed");
        exit(1);
    }
    let agent_c = cstr(agent);
    let probe = cstr("/proc/self/exe");
    let mut argv: Vec<CString> = vec![cstr("probe")];
    argv.extend(op.iter().map(|a| cstr(a)));
    let middle = unsafe { libc::fork() };
    if middle == 0 {
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(NOBODY) != 0 || libc::setuid(NOBODY) != 0 {
                libc::_exit(1);
            }
            let child = libc::fork();
            if child == 0 {
                // Until the parent runs the agent's binary; never past the parent's end.
                let parent = libc::getppid();
                let parent_exe = format!("/proc/{parent}/exe");
                while std::fs::read_link(&parent_exe).map(|p| p.as_os_str() != agent).unwrap_or(true) {
                    if libc::getppid() != parent {
                        libc::_exit(1);
                    }
                    libc::usleep(5000);
                }
                libc::dup2(fds[1], 1);
                let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
                ptrs.push(std::ptr::null());
                libc::execv(probe.as_ptr(), ptrs.as_ptr());
                libc::_exit(1);
            }
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            let args = [agent_c.as_ptr(), c"--check-config".as_ptr(), c"--config".as_ptr(), c"/dev/null".as_ptr(), std::ptr::null()];
            libc::execv(agent_c.as_ptr(), args.as_ptr());
            libc::_exit(1);
        }
    }
    unsafe { libc::close(fds[1]) };
    // The child's line, or nothing once it is gone (killed, or done).
    let mut out = String::new();
    let _ = unsafe { std::fs::File::from_raw_fd(fds[0]) }.read_to_string(&mut out);
    unsafe {
        libc::kill(middle, libc::SIGKILL);
        let mut status = 0;
        libc::waitpid(middle, &mut status, 0);
    }
    let line = out.trim();
    if line.ends_with(": ok") {
        println!("stopped-parent {}: got through: {line}", op[0]);
        exit(3);
    }
    println!("stopped-parent {}: ok ({})", op[0], if line.is_empty() { "killed" } else { line });
    exit(0)
}

/// `probe as-nobody CMD ARGS..`: CMD run as nobody (uid and gid 65534, no groups).
pub fn cmd_as_nobody(cmd: &[String]) -> ! {
    if cmd.is_empty() {
        usage();
    }
    let args: Vec<CString> = cmd.iter().map(|a| cstr(a)).collect();
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(NOBODY) != 0 || libc::setuid(NOBODY) != 0 {
            println!("as-nobody: cannot become nobody");
            exit(1);
        }
        libc::execvp(args[0].as_ptr(), ptrs.as_ptr());
    }
    println!("as-nobody: cannot run {}", cmd[0]);
    exit(1)
}
