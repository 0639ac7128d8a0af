//! The live canary: the only proof that an attached tier acts. A file in a private
//! directory is denied with the canary rule (denied in every mode), a child process
//! (this binary, re-executed) opens it, and the outcome must be EPERM (LSM tier) or
//! the child's death by the configured signal (signal tier). The file, the directory
//! and the map entry are removed whatever happens; the child is always reaped.

use std::fmt;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};

use crate::abi;
use crate::bpf;
use crate::posture::TierKind;
use crate::rules;
use crate::tiers::Active;

/// The hidden option that turns the binary into the canary child.
pub const CHILD_ARG: &str = "--canary-open";
/// The same, as lexopt names a long option.
pub const CHILD_ARG_LONG: &str = "canary-open";
/// The child's exit code when the open failed with EPERM.
const EXIT_DENIED: i32 = 13;
/// The child's exit code when the open failed otherwise.
const EXIT_OTHER: i32 = 14;

/// Why the canary did not pass.
#[derive(Debug)]
pub enum Error {
    Setup(io::Error),
    Map(bpf::Error),
    /// The child opened the denied file: the hook does not run.
    Opened,
    /// The child ended some other way than the tier should make it.
    Unexpected(ExitStatus),
}

impl Error {
    /// An errno for the blocker (0 when the failure is not an errno).
    pub fn errno(&self) -> i32 {
        match self {
            Error::Setup(e) => e.raw_os_error().unwrap_or(0),
            Error::Map(e) => e.errno.raw_os_error(),
            Error::Opened | Error::Unexpected(_) => 0,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Setup(e) => write!(f, "canary setup: {e}"),
            Error::Map(e) => write!(f, "canary: {e}"),
            Error::Opened => f.write_str("the canary file opened although it is denied"),
            Error::Unexpected(s) => write!(f, "the canary child ended with {s}"),
        }
    }
}

/// A private directory holding the canary file; removed on drop.
struct CanaryDir {
    dir: PathBuf,
    file: PathBuf,
}

impl CanaryDir {
    fn create() -> io::Result<CanaryDir> {
        let base = if std::path::Path::new("/run").is_dir() { PathBuf::from("/run") } else { std::env::temp_dir() };
        let dir = base.join(format!("enforce-canary.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir); // left over by a killed agent with our pid
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let guard = CanaryDir { file: dir.join("canary"), dir };
        std::fs::write(&guard.file, b"enforce canary\n")?;
        Ok(guard)
    }
}

impl Drop for CanaryDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Runs the canary against an attached tier. `signal` is the signal the signal tier
/// must kill the child with.
pub fn run(active: &Active, signal: Option<i32>) -> Result<(), Error> {
    let dir = CanaryDir::create().map_err(Error::Setup)?;
    let key = rules::inode_key(dir.file.to_str().unwrap_or("")).map_err(|e| Error::Setup(io::Error::from_raw_os_error(e.raw_os_error())))?;
    let map = active.obj.map(c"deny_inodes").map_err(Error::Map)?;
    let entry = abi::InodeRule { open_rule: abi::RULE_CANARY, exec_rule: 0 };
    map.update(&key.to_bytes(), &entry.to_bytes()).map_err(Error::Map)?;
    let status = Command::new("/proc/self/exe")
        .arg(CHILD_ARG)
        .arg(&dir.file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status(); // spawns and reaps
    if let Err(e) = map.delete(&key.to_bytes()) {
        log::warn!("canary: {e}");
    }
    drop(dir);
    let status = status.map_err(Error::Setup)?;
    judge(active.kind, status, signal)
}

fn judge(kind: TierKind, status: ExitStatus, signal: Option<i32>) -> Result<(), Error> {
    match (kind, status.code(), status.signal()) {
        (TierKind::Lsm, Some(EXIT_DENIED), _) => Ok(()),
        (TierKind::Signal, _, Some(sig)) if Some(sig) == signal => Ok(()),
        (_, Some(0), _) => Err(Error::Opened),
        _ => Err(Error::Unexpected(status)),
    }
}

/// The canary child: open `path`, and say how it went in the exit code.
pub fn child_main(path: &std::ffi::OsStr) -> i32 {
    match std::fs::File::open(path) {
        Ok(_) => 0,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) => EXIT_DENIED,
        Err(_) => EXIT_OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsm_passes_only_on_eperm() {
        assert!(judge(TierKind::Lsm, ExitStatus::from_raw(EXIT_DENIED << 8), None).is_ok());
        assert!(matches!(judge(TierKind::Lsm, ExitStatus::from_raw(0), None), Err(Error::Opened)));
        assert!(matches!(judge(TierKind::Lsm, ExitStatus::from_raw(EXIT_OTHER << 8), None), Err(Error::Unexpected(_))));
        assert!(judge(TierKind::Lsm, ExitStatus::from_raw(9), None).is_err());
    }

    #[test]
    fn signal_passes_only_on_the_configured_signal() {
        assert!(judge(TierKind::Signal, ExitStatus::from_raw(9), Some(9)).is_ok());
        assert!(judge(TierKind::Signal, ExitStatus::from_raw(15), Some(9)).is_err());
        assert!(judge(TierKind::Signal, ExitStatus::from_raw(EXIT_DENIED << 8), Some(9)).is_err());
        assert!(matches!(judge(TierKind::Signal, ExitStatus::from_raw(0), Some(9)), Err(Error::Opened)));
    }

    #[test]
    fn child_reports_open_results() {
        assert_eq!(child_main(std::ffi::OsStr::new("/proc/self/status")), 0);
        assert_eq!(child_main(std::ffi::OsStr::new("/nonexistent/enforce")), EXIT_OTHER);
    }
}
