//! The agent must run in the initial PID namespace. Its BPF programs see host PIDs
//! (`bpf_get_current_pid_tgid`), while the agent exempts itself by the PID it has;
//! in a child PID namespace that is a namespace-local number, which may be the host
//! PID of another process: that process would be exempt, and the agent would not.
//! So the agent (and `--check`, which attaches the same programs) refuses to run
//! there, before loading anything, with exit 12 (REFUSED).

use rustix::io::Errno;

/// The inode of the initial PID namespace (`PROC_PID_INIT_INO` in the kernel's
/// `include/linux/proc_ns.h`, fixed since Linux 3.8).
pub const INITIAL_PID_NS_INO: u64 = 0xefff_fffc;

/// The namespace file of the agent's PID namespace.
const NS_PID: &str = "/proc/self/ns/pid";

/// Decides from what `/proc` says: `ns_ino` is the inode of `/proc/self/ns/pid` (or
/// why it could not be read), `proc_mounted` whether `/proc/self` exists. A kernel
/// without PID namespaces (`CONFIG_PID_NS=n`) has no `ns/pid` entry and only the
/// initial namespace. Err: the reason, for `refused: …`.
pub fn judge(ns_ino: Result<u64, Errno>, proc_mounted: bool) -> Result<(), String> {
    match ns_ino {
        Ok(INITIAL_PID_NS_INO) => Ok(()),
        Ok(ino) => Err(format!(
            "not in the initial PID namespace ({NS_PID} is pid:[{ino}], the initial one pid:[{INITIAL_PID_NS_INO}]): \
             the BPF programs see host PIDs, so the agent could not exempt itself and might exempt another \
             process; run it in the host PID namespace"
        )),
        Err(Errno::NOENT) if proc_mounted => Ok(()),
        Err(e) => Err(format!(
            "not in the initial PID namespace, or cannot tell ({NS_PID}: {e}): mount /proc, and run the agent in \
             the host PID namespace"
        )),
    }
}

/// Whether this process may attach the programs: Ok in the initial PID namespace.
pub fn check() -> Result<(), String> {
    #[allow(clippy::useless_conversion)] // u64 on some architectures, u32 on others
    let ino = rustix::fs::stat(NS_PID).map(|st| u64::from(st.st_ino));
    judge(ino, std::path::Path::new("/proc/self").exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_initial_namespace_passes() {
        assert_eq!(judge(Ok(INITIAL_PID_NS_INO), true), Ok(()));
        assert_eq!(judge(Ok(4_026_531_836), true), Ok(()), "the same number in decimal");
        let e = judge(Ok(4_026_532_451), true).unwrap_err();
        assert!(e.starts_with("not in the initial PID namespace (/proc/self/ns/pid is pid:[4026532451], the initial one pid:[4026531836])"), "{e}");
        // A kernel without PID namespaces: no ns/pid entry, /proc mounted.
        assert_eq!(judge(Err(Errno::NOENT), true), Ok(()));
        // No /proc: cannot tell.
        let e = judge(Err(Errno::NOENT), false).unwrap_err();
        assert!(e.contains("cannot tell (/proc/self/ns/pid: No such file or directory"), "{e}");
        assert!(judge(Err(Errno::ACCESS), true).unwrap_err().contains("cannot tell"));
    }

    #[test]
    fn the_build_host_runs_tests_in_the_initial_namespace() {
        // The unit tests run where the host tests load BPF: the initial namespace.
        assert_eq!(check(), Ok(()));
    }
}
