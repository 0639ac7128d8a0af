//! What the host test files share: the binary, its exit codes, the root check, a
//! scratch directory and a running agent. Each test file uses what it needs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_enforce");

/// The attack helper (rootfs/probe, built by `make probe`, which `make host-test` runs).
pub const PROBE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rootfs/probe/target/x86_64-unknown-linux-musl/release/probe");

/// `PROBE` with `args`; fails when it has not been built.
pub fn probe(args: &[&str]) -> std::process::Command {
    assert!(Path::new(PROBE).exists(), "{PROBE} is missing: run `make probe`");
    let mut cmd = Command::new(PROBE);
    cmd.args(args);
    cmd
}

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

/// How long an agent gets to say what a test waits for.
pub const AGENT_WAIT: Duration = Duration::from_secs(30);

/// A running agent. Its stderr comes line by line from a reader thread, so that a
/// wait can time out; it is killed and reaped on drop.
pub struct Agent {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// What it has written to stderr so far.
    pub log: String,
}

impl Agent {
    /// `BIN --config CONFIG`, in a private mount namespace (the tracefs it mounts stays
    /// there), once it says `attached:`.
    pub fn start(config: &Path) -> Agent {
        Agent::start_with(config, &[])
    }

    /// The same with more arguments.
    pub fn start_with(config: &Path, args: &[&str]) -> Agent {
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", BIN, "--config"]).arg(config).args(args);
        let mut agent = Agent::spawn(cmd);
        agent.wait_for("attached:");
        agent
    }

    /// Starts `cmd` (the agent, however it is wrapped) and waits for nothing.
    pub fn spawn(mut cmd: Command) -> Agent {
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start the agent");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Agent { child, lines, log: String::new() }
    }

    /// Waits up to AGENT_WAIT for a stderr line containing `needle`, and returns it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        self.wait_for_within(needle, AGENT_WAIT)
    }

    /// Waits up to `limit` for a stderr line containing `needle`, and returns it; fails
    /// with the log so far.
    pub fn wait_for_within(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.log.push_str(&line);
                    self.log.push('\n');
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("no {needle:?} from the agent within {limit:?}; its log:\n{}", self.log)
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("the agent ended before {needle:?}; its log:\n{}", self.log)
                }
            }
        }
    }

    /// The next stderr line within `limit`, if one comes (kept in the log too).
    pub fn next_line(&mut self, limit: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(limit).ok()?;
        self.log.push_str(&line);
        self.log.push('\n');
        Some(line)
    }

    pub fn signal(&self, sig: rustix::process::Signal) {
        rustix::process::kill_process(rustix::process::Pid::from_child(&self.child), sig).unwrap();
    }

    /// Collects what the reader thread has until the pipe closes (at most 5 s).
    pub fn drain(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.log.push_str(&line);
            self.log.push('\n');
        }
    }

    /// SIGTERM, then the exit status and the whole log.
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.signal(rustix::process::Signal::TERM);
        let status = self.child.wait().unwrap();
        self.drain();
        (status, std::mem::take(&mut self.log))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
