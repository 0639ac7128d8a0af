//! What the host test files share: the binary, its exit codes, the root check and a
//! scratch directory. Each test file uses what it needs.
#![allow(dead_code)]

use std::path::PathBuf;

pub const BIN: &str = env!("CARGO_BIN_EXE_enforce");

/// Exit codes from README.md.
pub const EXIT_OK: i32 = 0;
pub const EXIT_ENFORCE_SIGNAL: i32 = 10;
pub const EXIT_AUDIT_ONLY: i32 = 11;
pub const EXIT_REFUSED: i32 = 12;
pub const EXIT_USAGE: i32 = 64;
pub const EXIT_CONFIG: i32 = 78;

pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "host tests load BPF and need root; they cannot run here (not counted as passed)"
    );
}

/// A temp directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("enforce-host-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `enforce.conf` (replacing the file, so an agent re-reading it on SIGHUP
    /// never sees half of it).
    pub fn config(&self, text: &str) -> PathBuf {
        let p = self.path("enforce.conf");
        let _ = std::fs::remove_file(&p);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
