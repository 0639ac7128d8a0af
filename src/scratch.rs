//! Unit tests' scratch directories: one per test, named after the test and this
//! process, removed on drop.

use std::path::PathBuf;

/// A fresh, empty directory in the system's temporary directory.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `enforce-NAME.PID`, emptied first (a crashed run may have left it).
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("enforce-{name}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The path of `name` in it, as a string (configs take strings).
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
