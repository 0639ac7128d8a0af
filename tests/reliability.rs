//! Host tests of hostile input and failure modes (issue 10): config files as editors
//! and mistakes make them, rules that would brick the device, a PID namespace, a
//! stuck syslog, a looping offender. Like tests/host.rs they need root, fail (never
//! skip) without it, touch only what they create, reap every process they start,
//! and run the agent in a private mount namespace. Every wait has a deadline, so a
//! regression that hangs fails the test instead of hanging it.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The test seam for the syslog socket (README: Events).
const SYSLOG_ENV: &str = "ENFORCE_SYSLOG_SOCKET";

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

/// IDs of every BPF program loaded right now (bpftool prog show).
fn loaded_programs() -> Vec<u32> {
    // bpftool fails when a program goes away between listing and opening it: retry.
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
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.split(':').next()?.parse().ok()).collect()
}

/// IDs of the BPF programs process `pid` holds (program and link descriptors name
/// them in their fdinfo). Other agents may run on this machine (other worktrees'
/// tests): a test checks only the programs its own agent loaded.
fn programs_of(pid: u32) -> Vec<u32> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).into_iter().flatten().flatten() {
        let info = std::fs::read_to_string(entry.path()).unwrap_or_default();
        ids.extend(info.lines().filter_map(|l| l.strip_prefix("prog_id:")).filter_map(|v| v.trim().parse::<u32>().ok()));
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Waits (5 s at most) until none of `ids` is loaded any more.
fn assert_gone(ids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let left = loop {
        let loaded = loaded_programs();
        let left: Vec<u32> = ids.iter().copied().filter(|id| loaded.contains(id)).collect();
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(left.is_empty(), "programs the agent loaded are still loaded: {left:?}");
}

/// The agent (tests/common), and the IDs of the programs it held (at start and at
/// stop), which must all be gone after it stops.
struct Tracked {
    agent: Agent,
    programs: Vec<u32>,
}

impl core::ops::Deref for Tracked {
    type Target = Agent;
    fn deref(&self) -> &Agent {
        &self.agent
    }
}

impl core::ops::DerefMut for Tracked {
    fn deref_mut(&mut self) -> &mut Agent {
        &mut self.agent
    }
}

impl Tracked {
    /// Starts the agent and waits (up to 30 s) for `attached:`.
    fn start(config: &Path, env: &[(&str, &Path)]) -> Tracked {
        Tracked::start_cmd(enforce_cmd(&["--config", config.to_str().unwrap()], env))
    }

    /// Starts `cmd` (the agent, however it is wrapped) and waits for `attached:`.
    fn start_cmd(cmd: Command) -> Tracked {
        let mut agent = Agent::spawn(cmd);
        agent.wait_for("attached:");
        let programs = programs_of(agent.child.id());
        assert!(!programs.is_empty(), "an attached agent holds programs:\n{}", agent.log);
        Tracked { agent, programs }
    }

    /// SIGTERM; the exit status, how long the agent took to exit, and its whole log.
    /// Fails if it is not gone within `limit` (it is then killed), or if a program it
    /// held is still loaded afterwards.
    fn stop_within(mut self, limit: Duration) -> (ExitStatus, Duration, String) {
        self.programs.extend(programs_of(self.agent.child.id()));
        let start = Instant::now();
        self.signal(rustix::process::Signal::TERM);
        let status = loop {
            if let Some(status) = self.agent.child.try_wait().unwrap() {
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
        assert_gone(&self.programs);
        (status, took, std::mem::take(&mut self.agent.log))
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
    let dir = TempDir::new("rel-bom");
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
    let dir = TempDir::new("rel-fifo");
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
}

#[test]
fn a_fifo_on_reload_keeps_the_policy_and_the_agent_answers() {
    require_root();
    let dir = TempDir::new("rel-fiforeload");
    let secret = dir.path("secret");
    std::fs::write(&secret, "x\n").unwrap();
    let cfg = dir.config(&format!("mode = enforce\nfallback = signal\ndeny_open = {}\n", secret.display()));
    let mut agent = Tracked::start(&cfg, &[]);
    // The config path becomes a FIFO nobody writes to.
    mkfifo(&cfg);
    agent.signal(rustix::process::Signal::HUP);
    agent.wait_for_within(
        &format!("reload failed: {}:0: not a regular file but a FIFO (named pipe)", cfg.display()),
        Duration::from_secs(10),
    );
    assert_killed("the policy holds after the FIFO reload", run_child(Command::new("cat").arg(&secret)));
    let (status, took, log) = agent.stop_within(Duration::from_secs(10));
    assert_eq!(status.code(), Some(EXIT_OK), "{log}");
    assert!(took < Duration::from_secs(3), "stop took {took:?}:\n{log}");
    assert!(log.contains("stopped: denied=1"), "{log}");
}

// ---------------------------------------------------------------------------------
// Rules whose target cannot mean what the user thinks, and rules that would brick.

/// `--check-config` of a config holding `rule` on line 2: (exit code, stderr).
fn check_rule(dir: &TempDir, rule: &str) -> (Option<i32>, String, PathBuf) {
    let cfg = dir.config(&format!("# line 1\n{rule}\n"));
    let ran = enforce(&["--check-config", "--config", cfg.to_str().unwrap()]);
    (ran.status.code(), ran.stderr, cfg)
}

/// The config error line of a `--check-config` (the bricking guard may warn before it).
fn error_line(stderr: &str) -> &str {
    stderr.lines().find(|l| l.starts_with("enforce: ")).unwrap_or_else(|| panic!("no error line in {stderr:?}"))
}

#[test]
fn rules_that_cannot_mean_their_path_are_refused_naming_the_line() {
    let dir = TempDir::new("rel-targets");
    let text = dir.path("text");
    std::fs::write(&text, "not a program\n").unwrap();
    let socket = dir.path("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let fifo = dir.path("fifo");
    mkfifo(&fifo);
    let cases = [
        ("deny_open = /proc/self/status".to_owned(), "deny_open /proc/self/status: on proc, a kernel pseudo-filesystem"),
        ("deny_open = /proc/1/status".to_owned(), "on proc, a kernel pseudo-filesystem"),
        ("deny_open = /sys/kernel/mm".to_owned(), "on sysfs, a kernel pseudo-filesystem"),
        ("deny_open = /etc".to_owned(), "deny_open /etc: a directory: denying its open would break every listing"),
        (format!("deny_exec = {}", dir.0.display()), "a directory"),
        (format!("deny_open = {}", socket.display()), "a socket: sockets are connected to, not opened"),
        ("deny_exec = /dev/null".to_owned(), "deny_exec /dev/null: a character device: only regular files are executed"),
        (format!("deny_exec = {}", fifo.display()), "a FIFO: only regular files are executed"),
        (format!("deny_exec = {}", text.display()), "not executable (mode 0644): no one can exec it"),
    ];
    for (rule, needle) in &cases {
        let (code, stderr, cfg) = check_rule(&dir, rule);
        assert_eq!(code, Some(EXIT_CONFIG), "{rule}: {stderr}");
        let line = error_line(&stderr);
        assert!(line.starts_with(&format!("enforce: {}:2: ", cfg.display())), "{rule}: {line}");
        assert!(line.contains(needle), "{rule}: {line:?} should contain {needle:?}");
    }
    // A POSIX message queue (mq_open reads it without an open of that file): refused
    // like the other pseudo-filesystems, on an mqueue mounted in a private namespace.
    let mq = dir.path("mq");
    std::fs::create_dir(&mq).unwrap();
    let cfg = dir.config(&format!("# line 1\ndeny_open = {}/queue\n", mq.display()));
    let script = format!("mount -t mqueue none {0} && : >{0}/queue && exec {BIN} --check-config --config {1}", mq.display(), cfg.display());
    let out = Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{stderr}");
    assert!(error_line(&stderr).contains("/queue: on mqueue, a kernel pseudo-filesystem"), "{stderr}");
    // Accepted, with the meaning README gives them: that node, that FIFO, that file.
    for rule in ["deny_open = /dev/null".to_owned(), format!("deny_open = {}", fifo.display()), format!("deny_open = {}", text.display())] {
        let (code, stderr, _) = check_rule(&dir, &rule);
        assert_eq!(code, Some(EXIT_OK), "{rule}: {stderr}");
    }
}

/// The dynamic loader /bin/sh names (its ELF PT_INTERP), found with readelf-free
/// means: the `ld-*.so*` executable mapping of a shell that maps it.
fn shell_loader() -> String {
    let ran = run_within(Command::new("/bin/sh").args(["-c", "cat /proc/$$/maps"]), Duration::from_secs(10));
    ran.stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1).is_some_and(|p| p.contains('x')))
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("/ld-"))
        .unwrap_or_else(|| panic!("no loader mapped by /bin/sh:\n{}", ran.stdout))
        .to_owned()
}

#[test]
fn bricking_rules_are_refused_unless_allowed() {
    require_root();
    let dir = TempDir::new("rel-brick");
    let loader = shell_loader();
    let cases = [
        ("deny_exec = /bin/sh".to_owned(), "deny_exec /bin/sh: that is /bin/sh: denying it can leave the device unable to boot or be repaired (set allow_dangerous_rules = yes to allow it)"),
        ("deny_open = /bin/sh".to_owned(), "deny_open /bin/sh: that is /bin/sh"),
        (format!("deny_exec = {BIN}"), "that is the agent's own binary"),
        (format!("deny_open = {loader}"), "that is the dynamic loader of /bin/sh"),
    ];
    for (rule, needle) in &cases {
        let cfg = dir.config(&format!("mode = enforce\n{rule}\n"));
        // --check-config, --check and the start all refuse, before loading anything.
        for args in [&["--check-config"][..], &["--check"], &[]] {
            let mut all = args.to_vec();
            all.extend(["--config", cfg.to_str().unwrap()]);
            let ran = enforce(&all);
            assert_eq!(ran.status.code(), Some(EXIT_CONFIG), "{rule} {args:?}: {}", ran.stderr);
            let line = error_line(&ran.stderr);
            assert!(line.starts_with(&format!("enforce: {}:2: ", cfg.display())), "{rule}: {line}");
            assert!(line.contains(needle), "{rule}: {line:?} should contain {needle:?}");
            assert!(ran.stdout.is_empty(), "{}", ran.stdout);
        }
        // The override: accepted, with a warning naming the line. Only validated
        // here: a dangerous rule is never attached by this test.
        let cfg = dir.config(&format!("allow_dangerous_rules = yes\n{rule}\n"));
        let ran = enforce(&["--check-config", "--config", cfg.to_str().unwrap()]);
        assert_eq!(ran.status.code(), Some(EXIT_OK), "{rule}: {}", ran.stderr);
        let want = format!("{}:2: ", cfg.display());
        assert!(
            ran.stderr.lines().any(|l| l.contains(&want) && l.ends_with("; allowed by allow_dangerous_rules")),
            "{rule}: {}",
            ran.stderr
        );
    }
}

#[test]
fn bricking_rules_of_pid_1_are_refused() {
    require_root();
    // PID 1 of a new PID namespace (with its own /proc) is a copy of bash that runs
    // --check-config: its executable and the libraries it maps are PID 1's files.
    let dir = TempDir::new("rel-brickpid1");
    let init = dir.path("init-copy");
    std::fs::copy("/bin/bash", &init).unwrap();
    let as_pid1 = |cfg: &Path| {
        let script = format!("{BIN} --check-config --config {}; exit $?", cfg.display());
        run_within(
            Command::new("unshare").args(["-m", "--propagation", "private", "-p", "-f", "--mount-proc"]).arg(&init).args(["-c", &script]),
            Duration::from_secs(20),
        )
    };
    let maps = run_within(
        Command::new("unshare").args(["-m", "--propagation", "private", "-p", "-f", "--mount-proc"]).arg(&init).args(["-c", "cat /proc/1/maps; exit 0"]),
        Duration::from_secs(20),
    )
    .stdout;
    let libc = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("/libc.so"))
        .unwrap_or_else(|| panic!("bash maps no libc:\n{maps}"))
        .to_owned();
    for (rule, needle) in [
        (format!("deny_exec = {}", init.display()), "that is PID 1's executable (init)".to_owned()),
        (format!("deny_open = {libc}"), "that is a file PID 1 runs code from (its dynamic loader or a shared library)".to_owned()),
    ] {
        let cfg = dir.config(&format!("mode = enforce\n{rule}\n"));
        let ran = as_pid1(&cfg);
        assert_eq!(ran.status.code(), Some(EXIT_CONFIG), "{rule}: {}", ran.stderr);
        let line = error_line(&ran.stderr);
        assert!(line.starts_with(&format!("enforce: {}:2: ", cfg.display())), "{rule}: {line}");
        assert!(line.contains(&needle), "{rule}: {line:?} should contain {needle:?}");
    }
    // Outside that namespace the copy is nobody's init: a plain, allowed rule.
    let cfg = dir.config(&format!("deny_exec = {}\n", init.display()));
    let ran = enforce(&["--check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(ran.status.code(), Some(EXIT_OK), "{}", ran.stderr);
}

#[test]
fn a_bricking_rule_on_reload_keeps_the_policy() {
    require_root();
    let dir = TempDir::new("rel-brickreload");
    let secret = dir.path("secret");
    std::fs::write(&secret, "x\n").unwrap();
    let cfg = dir.config(&format!("mode = enforce\nfallback = signal\ndeny_open = {}\n", secret.display()));
    let mut agent = Tracked::start(&cfg, &[]);
    dir.config(&format!("mode = enforce\nfallback = signal\ndeny_open = {}\ndeny_exec = /bin/sh\n", secret.display()));
    agent.signal(rustix::process::Signal::HUP);
    agent.wait_for_within(
        &format!("reload failed: {}:4: deny_exec /bin/sh: that is /bin/sh: denying it can leave the device unable to boot", cfg.display()),
        Duration::from_secs(10),
    );
    assert!(run_child(Command::new("/bin/sh").args(["-c", "exit 7"])).code() == Some(7), "/bin/sh still runs");
    assert_killed("the running policy holds", run_child(Command::new("cat").arg(&secret)));
    let (status, _, log) = agent.stop_within(Duration::from_secs(10));
    assert_eq!(status.code(), Some(EXIT_OK), "{log}");
}

// ---------------------------------------------------------------------------------
// Not in the initial PID namespace.

/// Waits until `child` exits (Some(status)) or `agent_log` shows `attached:` (None).
fn exit_or_attached(child: &mut Child, lines: &mpsc::Receiver<String>, log: &mut String, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        while let Ok(line) = lines.try_recv() {
            log.push_str(&line);
            log.push('\n');
            if line.contains("attached:") {
                return None;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            // Let the reader thread hand over the last lines.
            while let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) {
                log.push_str(&line);
                log.push('\n');
            }
            return Some(status);
        }
        assert!(Instant::now() < deadline, "the agent neither attached nor exited within {limit:?}:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn refuses_to_run_outside_the_initial_pid_namespace() {
    require_root();
    let dir = TempDir::new("rel-pidns");
    let secret = dir.path("secret");
    std::fs::write(&secret, "the secret\n").unwrap();
    let cfg = dir.config(&format!("mode = enforce\nfallback = signal\ndeny_open = {}\n", secret.display()));

    // The offender: waits for a line on stdin, then becomes `cat SECRET` (same PID).
    let mut offender = Command::new("/bin/sh")
        .args(["-c", "read go; exec cat \"$0\""])
        .arg(&secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let offender_pid = offender.id();

    for args in [&[][..], &["--check"]] {
        // The agent in a new PID namespace, where the next PID is set (ns_last_pid) so
        // that its PID there equals the offender's PID here.
        let script = format!(
            "echo {} > /proc/sys/kernel/ns_last_pid && {BIN} {} --config {}; exit $?",
            offender_pid - 1,
            args.join(" "),
            cfg.display()
        );
        let mut child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "-p", "-f", "--kill-child", "--mount-proc", "/bin/sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut log = String::new();
        let exited = exit_or_attached(&mut child, &lines, &mut log, Duration::from_secs(30));
        if exited.is_none() {
            // It runs: the offender, whose PID here is the agent's PID there, opens the file.
            use std::io::Write;
            offender.stdin.take().unwrap().write_all(b"go\n").unwrap();
            let out = offender.wait_with_output().unwrap();
            let _ = child.kill(); // --kill-child: the namespace's init and the agent die too
            let _ = child.wait();
            panic!(
                "the agent ran in a PID namespace; offender pid {offender_pid} (the agent's PID there) \
                 ended {} and read {:?}:\n{log}",
                out.status,
                String::from_utf8_lossy(&out.stdout)
            );
        }
        let status = exited.unwrap();
        assert_eq!(status.code(), Some(EXIT_REFUSED), "{args:?}:\n{log}");
        assert!(
            log.contains("refused: not in the initial PID namespace"),
            "{args:?}: the refusal says why:\n{log}"
        );
        assert!(!log.contains("attached:"), "{log}");
    }
    let _ = offender.kill();
    let _ = offender.wait();
}

// ---------------------------------------------------------------------------------
// A syslog that never reads.

/// A stand-in for /dev/log that never reads, its queue already full: every send
/// to it would block.
struct StuckSyslog {
    path: PathBuf,
    _server: UnixDatagram,
    _filler: UnixDatagram,
}

impl StuckSyslog {
    fn new(dir: &TempDir) -> StuckSyslog {
        let path = dir.path("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let filler = UnixDatagram::unbound().unwrap();
        filler.connect(&path).unwrap();
        filler.set_nonblocking(true).unwrap();
        let mut queued = 0;
        while filler.send(b"<30>filler").is_ok() {
            queued += 1;
            assert!(queued < 1_000_000, "the stand-in's queue never fills");
        }
        StuckSyslog { path, _server: server, _filler: filler }
    }
}

#[test]
fn a_stuck_syslog_does_not_stall_the_agent() {
    require_root();
    let dir = TempDir::new("rel-stuck");
    let syslog = StuckSyslog::new(&dir);
    let secret = dir.path("secret");
    std::fs::write(&secret, "x\n").unwrap();
    let cfg = dir.config(&format!("mode = enforce\nfallback = signal\ndeny_open = {}\n", secret.display()));
    let mut agent = Tracked::start(&cfg, &[(SYSLOG_ENV, &syslog.path)]);
    // 40 offenders, each killed by the signal tier: 40 event lines nobody can take.
    const DENIALS: usize = 40;
    for i in 0..DENIALS {
        assert_killed(&format!("offender {i}"), run_child(Command::new("cat").arg(&secret)));
    }
    // A reload is answered at once too (a blocking agent would still be sending the
    // first few lines, one second each).
    let start = Instant::now();
    agent.signal(rustix::process::Signal::HUP);
    agent.wait_for_within("reloaded: posture=ENFORCE_SIGNAL", Duration::from_secs(10));
    let reload_took = start.elapsed();
    assert!(reload_took < Duration::from_secs(3), "SIGHUP took {reload_took:?} with a stuck syslog:\n{}", agent.log);
    println!("SIGHUP answered in {reload_took:?}");
    let (status, took, log) = agent.stop_within(Duration::from_secs(10));
    assert_eq!(status.code(), Some(EXIT_OK), "{log}");
    assert!(took < Duration::from_secs(2), "SIGTERM took {took:?} with a stuck syslog:\n{log}");
    let stopped = log.lines().find(|l| l.contains("stopped:")).unwrap_or_else(|| panic!("no stopped: line:\n{log}"));
    println!("SIGTERM answered in {took:?}: {stopped}");
    assert!(stopped.contains(&format!("denied={DENIALS} ")), "{stopped}");
    assert!(stopped.contains(&format!("unsent={DENIALS}")), "every event line was refused by syslog and counted: {stopped}");
    assert!(log.contains("syslog is not keeping up: "), "the unsent count is reported as it grows:\n{log}");
}

// ---------------------------------------------------------------------------------
// A looping offender: coalesced, counted exactly.

/// A stand-in for /dev/log that reads every datagram until one contains `stopped:`
/// (or 60 s pass); `join` returns them.
struct ListeningSyslog {
    path: PathBuf,
    reader: std::thread::JoinHandle<Vec<String>>,
}

impl ListeningSyslog {
    fn new(dir: &TempDir) -> ListeningSyslog {
        let path = dir.path("log");
        let server = UnixDatagram::bind(&path).unwrap();
        server.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let reader = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while Instant::now() < deadline {
                if let Ok(n) = server.recv(&mut buf) {
                    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let last = line.contains("stopped:");
                    got.push(line);
                    if last {
                        break;
                    }
                }
            }
            got
        });
        ListeningSyslog { path, reader }
    }
}

/// `key=N` in `line`.
fn field(line: &str, key: &str) -> u64 {
    let at = line.find(&format!(" {key}=")).unwrap_or_else(|| panic!("no {key}= in {line:?}")) + key.len() + 2;
    line[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[test]
fn a_looping_offender_is_coalesced_and_every_event_counted() {
    require_root();
    let dir = TempDir::new("rel-coalesce");
    let syslog = ListeningSyslog::new(&dir);
    let secret = dir.path("secret");
    std::fs::write(&secret, "x\n").unwrap();
    // SIGUSR1, which the offenders ignore: they live on and loop.
    let cfg = dir.config(&format!(
        "mode = enforce\nfallback = signal\nsignal = USR1\ndeny_open = {}\n\
         coalesce_window = 60\ncoalesce_burst = 5\nlog_rate = 10\n",
        secret.display()
    ));
    let agent = Tracked::start(&cfg, &[(SYSLOG_ENV, &syslog.path)]);

    // One process opening the file 2000 times.
    const LOOPS: u64 = 2000;
    let looper = Command::new("/bin/sh")
        .args(["-c", &format!("trap '' USR1; i=0; while [ $i -lt {LOOPS} ]; do read x < \"$0\"; i=$((i+1)); done")])
        .arg(&secret)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let looper_pid = looper.id();
    let out = looper.wait_with_output().unwrap();
    assert!(out.status.success(), "the looping offender: {}", out.status);

    // 300 processes opening it once each (a shell loop of cat).
    const FORKS: u64 = 300;
    let start = Instant::now();
    let status = run_child(
        Command::new("/bin/sh")
            .args(["-c", &format!("trap '' USR1; i=0; while [ $i -lt {FORKS} ]; do cat \"$0\" >/dev/null; i=$((i+1)); done")])
            .arg(&secret),
    );
    let fork_secs = start.elapsed().as_secs() + 1;
    assert!(status.success(), "the forking offender: {status}");
    std::thread::sleep(Duration::from_millis(300)); // let the agent drain the ring buffer

    let (status, _, log) = agent.stop_within(Duration::from_secs(10));
    assert_eq!(status.code(), Some(EXIT_OK), "{log}");
    let lines = syslog.reader.join().unwrap();
    let stopped = lines.iter().find(|l| l.contains("stopped:")).unwrap_or_else(|| panic!("no stopped: in syslog: {lines:?}"));
    println!("{stopped}");
    let (denied, audited, dropped) = (field(stopped, "denied"), field(stopped, "audited"), field(stopped, "dropped"));
    let (logged, coalesced, unsent) = (field(stopped, "logged"), field(stopped, "coalesced"), field(stopped, "unsent"));
    assert_eq!(denied, LOOPS + FORKS, "{stopped}");
    assert_eq!(audited, 0, "{stopped}");
    assert_eq!(logged + coalesced + dropped, denied + audited, "every event is logged, coalesced or dropped: {stopped}");
    assert_eq!(unsent, 0, "{stopped}");

    // What syslog got adds up to the same totals.
    let events: Vec<&String> = lines.iter().filter(|l| l.contains("]: denied class=")).collect();
    let single: Vec<&&String> = events.iter().filter(|l| !l.contains(" repeated=")).collect();
    let repeated: u64 = events.iter().filter(|l| l.contains(" repeated=")).map(|l| field(l, "repeated")).sum();
    let overflow: u64 = lines.iter().filter(|l| l.contains("not logged one by one")).map(|l| field(l, "denied")).sum();
    assert_eq!(single.len() as u64, logged, "{lines:#?}");
    assert_eq!(repeated + overflow, coalesced, "{lines:#?}");

    // The looping process: 5 lines, then one line for the rest.
    let mine = format!(" pid={looper_pid} ");
    let looper_lines: Vec<&&String> = events.iter().filter(|l| l.contains(&mine)).collect();
    if dropped == 0 {
        assert_eq!(looper_lines.len(), 6, "{looper_lines:#?}");
        assert!(looper_lines[5].ends_with(&format!(" rule=4 repeated={}", LOOPS - 5)), "{looper_lines:#?}");
    }
    // The forking loop: held to log_rate = 10 lines a second (after the 5 tokens the
    // looper left in the bucket).
    let fork_lines = single.len() as u64 - looper_lines.iter().filter(|l| !l.contains(" repeated=")).count() as u64;
    assert!(fork_lines <= 5 + 10 * fork_secs, "{fork_lines} lines for {FORKS} forks in {fork_secs} s");
    println!(
        "syslog got {} event lines for {} denials: looper {} lines, forks {fork_lines} lines in ~{fork_secs} s",
        events.len(),
        denied,
        looper_lines.len()
    );
}

// ---------------------------------------------------------------------------------
// Pinning: enforcement that outlives the agent, adopted by the next one.

/// A private mount namespace that outlives the agents started in it (a process of the
/// test holds it); its bpf filesystem, and everything pinned there, goes with it.
struct MountNs(Child);

impl MountNs {
    fn new() -> MountNs {
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        // The namespace exists once the child is sleep.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap_or_default().trim() != "sleep" {
            assert!(Instant::now() < deadline, "unshare did not start sleep");
            std::thread::sleep(Duration::from_millis(10));
        }
        MountNs(child)
    }

    /// `args` run inside the namespace.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.0.id().to_string(), "-m", "--"]).args(args);
        cmd
    }
}

impl Drop for MountNs {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pinned_enforcement_outlives_the_agent_and_is_adopted() {
    require_root();
    let dir = TempDir::new("pin");
    let secret = dir.path("secret");
    std::fs::write(&secret, "x\n").unwrap();
    let pin = format!("/sys/fs/bpf/enforce-test-{}", std::process::id());
    let cfg = dir.config(&format!("mode = enforce\ntiers = tracepoint\ndeny_open = {}\npin = {pin}\n", secret.display()));
    let ns = MountNs::new();
    let agent_cmd = || ns.cmd(&[BIN, "--config", cfg.to_str().unwrap()]);
    let cat = || run_child(Command::new("cat").arg(&secret).stdout(Stdio::null()));
    let listing = || {
        let out = ns.cmd(&["ls", "-R", &pin]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let first = Tracked::start_cmd(agent_cmd());
    let pinned = listing();
    assert!(pinned.contains("gen-1") && pinned.contains("link-tracepoint-open-0") && pinned.contains("map-events"), "{pinned}");
    let check = run_within(&mut ns.cmd(&[BIN, "--check", "--config", cfg.to_str().unwrap()]), Duration::from_secs(30));
    // The open class: five open-family exits, and the clones that would share a descriptor table.
    assert!(check.stdout.contains(&format!("\npin={pin}\npinned=gen-1:links=7:maps=")), "{}", check.stdout);

    // SIGKILL: the pinned programs stay loaded and keep killing the offender.
    let first_programs = first.programs.clone();
    drop(first); // kills and reaps it
    let loaded = loaded_programs();
    assert!(first_programs.iter().all(|id| loaded.contains(id)), "the pinned programs went with the agent");
    assert_killed("cat while no agent runs", cat());
    // The tracepoint tier's rules follow a rename only through the agent (README:
    // pinning): while none runs, a file renamed over the denied one is readable.
    let replacement = dir.path("secret.new");
    std::fs::write(&replacement, "y\n").unwrap();
    std::fs::rename(&replacement, &secret).unwrap();
    assert!(cat().success(), "documented limit: a replacement made while no agent runs is not denied");

    // A restarted agent adopts them: one set of programs at the end.
    let mut second = Tracked::start_cmd(agent_cmd());
    let adopted = second.wait_for_within("adopted:", Duration::from_secs(30));
    assert!(adopted.contains("adopted: generation 1,") && adopted.contains("replaced by generation 2") && adopted.contains("denied=1 "), "{adopted}");
    assert_gone(&first_programs);
    assert!(second.programs.iter().all(|id| !first_programs.contains(id)));
    let pinned = listing();
    assert!(pinned.contains("gen-2") && !pinned.contains("gen-1"), "{pinned}");
    assert!(second.log.contains("denied class=open op=open tier=tracepoint signal=KILL"), "the denial made while no agent ran is delivered:\n{}", second.log);
    assert_killed("cat under the adopting agent (it resolves the path again)", cat());

    // SIGTERM: nothing pinned, nothing loaded.
    let (status, _, log) = second.stop_within(Duration::from_secs(10));
    assert_eq!(status.code(), Some(EXIT_OK), "{log}");
    let stopped = log.lines().find(|l| l.contains("stopped:")).unwrap_or_else(|| panic!("{log}"));
    assert!(stopped.contains("denied=2 ") && stopped.contains(" logged=2 coalesced=0 "), "{stopped}");
    let gone = ns.cmd(&["test", "-e", &pin]).status().unwrap();
    assert!(!gone.success(), "{pin} is still there: {}", listing());
    assert!(cat().success(), "the file opens once the agent is stopped");
}

#[test]
fn without_pin_nothing_survives_the_agent() {
    require_root();
    let dir = TempDir::new("nopin");
    let secret = dir.path("secret");
    std::fs::write(&secret, "x\n").unwrap();
    let cfg = dir.config(&format!("mode = enforce\ntiers = tracepoint\ndeny_open = {}\n", secret.display()));
    let ns = MountNs::new();
    let agent = Tracked::start_cmd(ns.cmd(&[BIN, "--config", cfg.to_str().unwrap()]));
    let programs = agent.programs.clone();
    drop(agent); // SIGKILL
    assert_gone(&programs);
    assert!(run_child(Command::new("cat").arg(&secret).stdout(Stdio::null())).success());
    let bpffs = ns.cmd(&["sh", "-c", "ls /sys/fs/bpf 2>/dev/null"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&bpffs.stdout).contains("enforce"), "something was pinned");
}
