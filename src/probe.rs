//! Facts about the running kernel that do not need BPF: the active LSM list and the
//! kernel release. (Whether programs load, attach and really run is learned by
//! trying; see `tiers.rs`.)

use std::path::Path;

use rustix::mount::{mount, MountFlags};

/// Where the kernel lists its active LSMs.
pub const LSM_LIST: &str = "/sys/kernel/security/lsm";
/// Test seam: read the LSM list from this file instead (tests point it at fixtures).
pub const LSM_LIST_ENV: &str = "ENFORCE_LSM_LIST";

/// What the LSM list says, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LsmList {
    /// The comma-separated list as the kernel printed it (trimmed).
    Read(heapless::String<256>),
    /// securityfs could not be read or mounted; the reason.
    Unreadable(heapless::String<128>),
}

impl LsmList {
    /// Whether `bpf` is an active LSM. An unreadable list counts as "no".
    pub fn has_bpf(&self) -> bool {
        match self {
            LsmList::Read(list) => list.split(',').any(|l| l.trim() == "bpf"),
            LsmList::Unreadable(_) => false,
        }
    }
}

/// Reads the active LSM list, mounting securityfs first when it is not mounted
/// (minimal init systems often leave it out).
pub fn lsm_list() -> LsmList {
    if let Some(path) = std::env::var_os(LSM_LIST_ENV) {
        return read_list(Path::new(&path));
    }
    let first = read_list(Path::new(LSM_LIST));
    if matches!(first, LsmList::Read(_)) {
        return first;
    }
    match mount("securityfs", "/sys/kernel/security", "securityfs", MountFlags::empty(), None) {
        Ok(()) => {
            log::info!("mounted securityfs on /sys/kernel/security to read the LSM list");
            read_list(Path::new(LSM_LIST))
        }
        Err(e) => unreadable(format_args!("{LSM_LIST}: not readable and securityfs mount failed: {e}")),
    }
}

fn read_list(path: &Path) -> LsmList {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut s = heapless::String::new();
            for c in text.trim().chars() {
                if s.push(c).is_err() {
                    break; // a longer list is truncated; "bpf" is never that far in
                }
            }
            LsmList::Read(s)
        }
        Err(e) => unreadable(format_args!("{}: {e}", path.display())),
    }
}

fn unreadable(why: core::fmt::Arguments<'_>) -> LsmList {
    use core::fmt::Write;
    let mut s = heapless::String::new();
    let _ = s.write_fmt(why); // truncated if longer; still says what failed
    LsmList::Unreadable(s)
}

/// Where libbpf looks for tracepoints first.
const TRACEFS: &str = "/sys/kernel/tracing";

/// Mounts tracefs when it is not mounted, for the signal tier's syscall tracepoints
/// (libbpf resolves `tracepoint/...` through it). A failure is only logged: the
/// attach then fails and the posture says so.
pub fn ensure_tracefs() {
    if Path::new(TRACEFS).join("events").is_dir() {
        return;
    }
    match mount("tracefs", TRACEFS, "tracefs", MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC, None) {
        Ok(()) => log::info!("mounted tracefs on {TRACEFS} for the signal tier"),
        Err(e) => log::warn!("tracefs is not mounted and mounting it on {TRACEFS} failed: {e}"),
    }
}

/// Whether this process may load and attach the programs: CAP_SYS_ADMIN, or CAP_BPF
/// with CAP_PERFMON (tracing and LSM programs need both). Unknown counts as yes: the
/// loads then say what is wrong.
pub fn privileged() -> bool {
    use rustix::thread::CapabilitySet as Cap;
    match rustix::thread::capabilities(None) {
        Ok(caps) => caps.effective.contains(Cap::SYS_ADMIN) || caps.effective.contains(Cap::BPF | Cap::PERFMON),
        Err(e) => {
            log::debug!("reading this process's capabilities: {e}");
            true
        }
    }
}

/// Where the kernel publishes its own BTF (CONFIG_DEBUG_INFO_BTF).
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Whether the running kernel has its own BTF. Without it LSM, fmod_ret, fentry and
/// tp_btf programs cannot attach, and CO-RE relocation needs a BTF file (`btf =`).
pub fn kernel_btf() -> bool {
    Path::new(KERNEL_BTF).exists()
}

/// The kernel release (`uname -r`).
pub fn kernel_release() -> heapless::String<64> {
    let uname = rustix::system::uname();
    let mut s = heapless::String::new();
    for c in uname.release().to_string_lossy().chars() {
        if s.push(c).is_err() {
            break;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_must_be_a_whole_entry() {
        let list = |s: &str| LsmList::Read(heapless::String::try_from(s).unwrap());
        assert!(list("lockdown,capability,landlock,bpf").has_bpf());
        assert!(list("bpf").has_bpf());
        assert!(!list("lockdown,capability").has_bpf());
        assert!(!list("lockdown,bpfish").has_bpf());
        assert!(!LsmList::Unreadable(heapless::String::new()).has_bpf());
    }

    #[test]
    fn reads_a_fixture_file() {
        let dir = std::env::temp_dir().join(format!("enforce-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("lsm");
        std::fs::write(&f, "capability,bpf\n").unwrap();
        let got = read_list(&f);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got, LsmList::Read(heapless::String::try_from("capability,bpf").unwrap()));
        assert!(matches!(read_list(&dir.join("missing")), LsmList::Unreadable(_)));
    }
}
