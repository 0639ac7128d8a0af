//! Host tests of hostile input and failure modes (issue 10): config files as editors
//! and mistakes make them, rules that would brick the device, a PID namespace, a
//! stuck syslog, a looping offender. Like tests/host.rs they need root, fail (never
//! skip) without it, touch only what they create, reap every process they start,
//! and run the agent in a private mount namespace. Every wait has a deadline, so a
//! regression that hangs fails the test instead of hanging it.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_enforce");

/// Exit codes from README.md.
const EXIT_OK: i32 = 0;
const EXIT_REFUSED: i32 = 12;
const EXIT_CONFIG: i32 = 78;

/// The test seam for the syslog socket (README: Events).
const SYSLOG_ENV: &str = "ENFORCE_SYSLOG_SOCKET";

fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "host tests load BPF and need root; they cannot run here (not counted as passed)"
    );
}

/// A temp directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("enforce-rel-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn config(&self, text: &str) -> PathBuf {
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

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    rustix::fs::mknodat(rustix::fs::CWD, path, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o600), 0)
        .unwrap();
}

/// What a finished command left: exit status, stdout, stderr.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to its end, killing it (and failing) if it takes longer than `limit`.
fn run_within(cmd: &mut Command, limit: Duration) -> Ran {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}: killed (stderr: {:?})", err.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// The agent binary in a private mount namespace, with `args` and `env`.
fn enforce_cmd(args: &[&str], env: &[(&str, &Path)]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", BIN]).args(args).envs(env.iter().copied());
    cmd
}

/// Runs the binary to its end, within 20 s.
fn enforce(args: &[&str]) -> Ran {
    run_within(&mut enforce_cmd(args, &[]), Duration::from_secs(20))
}

/// Names of the BPF programs of ours that are loaded right now (bpftool prog show).
fn our_programs() -> Vec<String> {
    let mut tries = 0;
    let out = loop {
        let out = Command::new("bpftool")
            .args(["prog", "show"])
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .expect("bpftool (make deps installs it)");
        tries += 1;
        if out.status.success() || tries == 20 {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(out.status.success(), "bpftool prog show failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(" name ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|n| n.starts_with("enforce_") || n.starts_with("signal_"))
        .map(String::from)
        .collect()
}

fn assert_nothing_left() {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !our_programs().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(our_programs(), Vec::<String>::new(), "programs of ours are still loaded");
}

/// The agent, running in the background; killed and reaped on drop. Its stderr is
/// read by a thread, so every wait can have a deadline.
struct Agent {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: String,
}

impl Agent {
    /// Starts the agent and waits (up to 30 s) for `attached:`.
    fn start(config: &Path, env: &[(&str, &Path)]) -> Agent {
        let mut agent = Agent::spawn(config, env);
        agent.wait_for("attached:", Duration::from_secs(30));
        agent
    }

    fn spawn(config: &Path, env: &[(&str, &Path)]) -> Agent {
        let mut child = enforce_cmd(&["--config", config.to_str().unwrap()], env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the agent");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Agent { child, lines, log: String::new() }
    }

    /// Waits for a stderr line containing `needle`; fails after `limit`.
    fn wait_for(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
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
                    panic!("agent ended before {needle:?}; its log:\n{}", self.log)
                }
            }
        }
    }

    fn signal(&self, sig: rustix::process::Signal) {
        rustix::process::kill_process(rustix::process::Pid::from_child(&self.child), sig).unwrap();
    }

    /// SIGTERM; the exit status, how long the agent took to exit, and its whole log.
    /// Fails if it is not gone within `limit` (it is then killed).
    fn stop_within(mut self, limit: Duration) -> (ExitStatus, Duration, String) {
        let start = Instant::now();
        self.signal(rustix::process::Signal::TERM);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > limit {
                self.drain();
                panic!("the agent did not stop within {limit:?} of SIGTERM; its log:\n{}", self.log);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = start.elapsed();
        self.drain();
        (status, took, std::mem::take(&mut self.log))
    }

    /// Collects what the reader thread has until the pipe closes (at most 5 s).
    fn drain(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.log.push_str(&line);
            self.log.push('\n');
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a test child to its end (30 s at most); its status.
fn run_child(cmd: &mut Command) -> ExitStatus {
    run_within(cmd, Duration::from_secs(30)).status
}

fn assert_killed(what: &str, status: ExitStatus) {
    assert_eq!(status.signal(), Some(9), "{what}: expected SIGKILL, got {status}");
}

// ---------------------------------------------------------------------------------
// Config files as editors write them, and config paths that are not files.

#[test]
fn config_with_bom_and_crlf_is_accepted() {
    let dir = TempDir::new("bom");
    let cfg = dir.config("\u{feff}# written on another system\r\nmode = audit\r\ndeny_connect = 10.0.0.0/8\r\n");
    let ran = enforce(&["--check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(ran.status.code(), Some(EXIT_OK), "{}", ran.stderr);

    let cfg = dir.config("# old Mac line ends\rmode = audit\rdeny_connect = 10.0.0.0/8\r");
    let ran = enforce(&["--check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(ran.status.code(), Some(EXIT_CONFIG), "{}", ran.stderr);
    assert_eq!(
        ran.stderr.trim_end(),
        format!("enforce: {}:1: carriage return (CR) inside a line: save the file with LF or CRLF line ends", cfg.display())
    );
}

#[test]
fn a_fifo_as_config_is_refused_without_blocking() {
    require_root();
    let dir = TempDir::new("fifo");
    let fifo = dir.path("fifo.conf");
    mkfifo(&fifo);
    let want = format!("enforce: {}:0: not a regular file but a FIFO (named pipe): the config must be a regular file", fifo.display());
    for args in [&["--check-config"][..], &["--check"], &[]] {
        let mut all = args.to_vec();
        all.extend(["--config", fifo.to_str().unwrap()]);
        // Nobody ever opens the FIFO for writing: an open that waits for a writer
        // would hang here until the deadline.
        let ran = run_within(&mut enforce_cmd(&all, &[]), Duration::from_secs(10));
        assert_eq!(ran.status.code(), Some(EXIT_CONFIG), "{all:?}: {}", ran.stderr);
        assert_eq!(ran.stderr.trim_end(), want, "{all:?}");
    }
    for dev in ["/dev/null", "/dev/zero"] {
        let ran = enforce(&["--check-config", "--config", dev]);
        assert_eq!(ran.status.code(), Some(EXIT_CONFIG), "{dev}: {}", ran.stderr);
        assert!(ran.stderr.contains(":0: not a regular file but a character device"), "{dev}: {}", ran.stderr);
    }
    assert_nothing_left();
}

#[test]
fn a_fifo_on_reload_keeps_the_policy_and_the_agent_answers() {
    require_root();
    let dir = TempDir::new("fiforeload");
    let secret = dir.path("secret");
    std::fs::write(&secret, "x\n").unwrap();
    let cfg = dir.config(&format!("mode = enforce\nfallback = signal\ndeny_open = {}\n", secret.display()));
    let mut agent = Agent::start(&cfg, &[]);
    // The config path becomes a FIFO nobody writes to.
    mkfifo(&cfg);
    agent.signal(rustix::process::Signal::HUP);
    agent.wait_for(
        &format!("reload failed: {}:0: not a regular file but a FIFO (named pipe)", cfg.display()),
        Duration::from_secs(10),
    );
    assert_killed("the policy holds after the FIFO reload", run_child(Command::new("cat").arg(&secret)));
    let (status, took, log) = agent.stop_within(Duration::from_secs(10));
    assert_eq!(status.code(), Some(EXIT_OK), "{log}");
    assert!(took < Duration::from_secs(3), "stop took {took:?}:\n{log}");
    assert!(log.contains("stopped: denied=1"), "{log}");
    assert_nothing_left();
}
