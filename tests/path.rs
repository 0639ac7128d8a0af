//! Host tests of the `path` tier (`tiers = path`): the tier for kernels without BTF,
//! forced through the ladder restriction on this kernel, which has BTF. Like the other
//! host tests they need root and fail without it, and they only deny or kill what they
//! created: every rule names a file in the test's own directory under a name no one
//! else uses (the tier also matches a relative path by its last component), or a
//! loopback address only these tests use. The agent runs in a private mount namespace.

mod common;

use common::*;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A loopback address only these tests use.
const TEST_ADDR: &str = "127.86.75.47";

fn report_value<'a>(report: &'a str, key: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in report:\n{report}"))
}

/// bpftool without cargo's LD_LIBRARY_PATH (as tests/host.rs runs it): with it this
/// dynamic program fails to start ("libc.so: invalid ELF header"), and an empty
/// listing would pass every check that nothing is left.
fn bpftool(args: &[&str]) -> std::process::Output {
    let out = Command::new("bpftool").env_remove("LD_LIBRARY_PATH").args(args).output();
    out.expect("bpftool (make deps installs it)")
}

/// Names of the BPF programs of ours that are loaded right now.
fn our_programs() -> Vec<String> {
    let mut tries = 0;
    let out = loop {
        let out = bpftool(&["prog", "show"]);
        tries += 1;
        if out.status.success() || tries == 20 {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(out.status.success(), "bpftool prog show: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(" name ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|n| n.starts_with("enf_"))
        .map(String::from)
        .collect()
}

/// Other engineers' agents may run on this machine: only programs of the path tier
/// (enf_path_*) loaded by this test's agent could be left; none may be.
fn assert_no_path_programs_left() {
    let deadline = Instant::now() + Duration::from_secs(5);
    let path_programs = || our_programs().into_iter().filter(|n| n.starts_with("enf_path_")).collect::<Vec<_>>();
    while !path_programs().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(path_programs(), Vec::<String>::new(), "path-tier programs are still loaded");
}


fn run(cmd: &mut Command) -> (ExitStatus, String) {
    let out = cmd.stdin(Stdio::null()).stderr(Stdio::null()).output().expect("spawn test child");
    (out.status, String::from_utf8_lossy(&out.stdout).into())
}

#[track_caller]
fn killed(what: &str, (status, out): (ExitStatus, String)) {
    assert_eq!(status.signal(), Some(9), "{what}: expected SIGKILL, got {status} ({out:?})");
}

#[track_caller]
fn allowed(what: &str, (status, out): (ExitStatus, String)) {
    assert!(status.success(), "{what}: expected success, got {status} ({out:?})");
}

/// The files of one test: a denied file and program with names no one else uses.
struct Files {
    dir: TempDir,
    secret: PathBuf,
    tool: PathBuf,
    secret_name: String,
}

fn files(tag: &str) -> Files {
    let dir = TempDir::new(tag);
    let secret_name = format!("enforce-path-secret-{}", std::process::id());
    let secret = dir.path(&secret_name);
    std::fs::write(&secret, "secret\n").unwrap();
    std::fs::write(dir.path("public"), "public\n").unwrap();
    let tool = dir.path(&format!("enforce-path-tool-{}", std::process::id()));
    std::fs::copy("/bin/echo", &tool).unwrap();
    Files { dir, secret, tool, secret_name }
}

/// `--check` with the ladder restricted to `path`: every class served by the path
/// tier, proven by its canaries, ENFORCE_SIGNAL with the path-matching blocker; the
/// executable mappings are not claimed.
#[test]
fn check_forced_to_the_path_tier() {
    require_root();
    let f = files("path-check");
    let cfg = f.dir.config(&format!(
        "tiers = path\ndeny_open = {}\ndeny_exec = {}\ndeny_connect = {TEST_ADDR}/32:9\n",
        f.secret.display(),
        f.tool.display()
    ));
    let out = Command::new("unshare").args(["-m", "--propagation", "private", BIN, "--check", "--config"]).arg(&cfg).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(EXIT_ENFORCE_SIGNAL), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(report_value(&report, "posture"), "ENFORCE_SIGNAL");
    for class in ["open", "exec", "connect"] {
        assert_eq!(report_value(&report, &format!("tier.{class}")), "path", "{report}");
    }
    for hook in ["open", "exec", "connect", "send"] {
        assert_eq!(report_value(&report, &format!("path.canary.{hook}")), "ok", "{report}");
    }
    assert_eq!(report_value(&report, "hook.mmap"), "none", "{report}");
    assert_eq!(report_value(&report, "hook.follow"), "agent", "{report}");
    assert_eq!(
        report_value(&report, "blockers"),
        "lsm-excluded,fmodret-excluded,kprobe-excluded,tracepoint-excluded,path-matching",
        "{report}"
    );
    // allow_exec_from needs to know a file's filesystem: the path tier cannot serve it.
    let cfg = f.dir.config("tiers = path\nmode = audit\nallow_exec_from = /\n");
    let out = Command::new("unshare").args(["-m", "--propagation", "private", BIN, "--check", "--config"]).arg(&cfg).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(EXIT_REFUSED), "{report}");
    assert!(report_value(&report, "blockers").contains("path-canary-failed:exec:0"), "{report}");
    assert_no_path_programs_left();
}

/// A kernel without BTF, as libbpf sees it: /sys/kernel/btf hidden (a read-only tmpfs
/// over it, in the private mount namespace only). With the whole ladder allowed, every
/// other tier is named as needing BTF and not tried, and the gate falls through to the
/// path tier by itself.
#[test]
fn without_kernel_btf_the_ladder_falls_to_the_path_tier() {
    require_root();
    let f = files("path-nobtf");
    let cfg = f.dir.config(&format!(
        "deny_open = {}\ndeny_exec = {}\ndeny_connect = {TEST_ADDR}/32:9\n",
        f.secret.display(),
        f.tool.display()
    ));
    let script = format!("mount -t tmpfs -o ro none /sys/kernel/btf && exec {BIN} --check --config {}", cfg.display());
    let out = Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(EXIT_ENFORCE_SIGNAL), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
    for class in ["open", "exec", "connect"] {
        assert_eq!(report_value(&report, &format!("tier.{class}")), "path", "{report}");
    }
    let unlisted = if report_value(&report, "lsm_list").split(',').any(|l| l == "bpf") { "" } else { "lsm-not-listed," };
    assert_eq!(
        report_value(&report, "blockers"),
        format!("{unlisted}kernel-btf-missing,lsm-needs-kernel-btf,fmodret-needs-kernel-btf,kprobe-needs-btf,tracepoint-needs-btf,path-matching"),
        "{report}"
    );
    assert_eq!(report_value(&report, "btf"), "none", "{report}");
    for tier in ["lsm", "fmodret", "kprobe", "tracepoint"] {
        assert_eq!(report_value(&report, &format!("{tier}.load")), "not-tried", "{report}");
    }
    assert_no_path_programs_left();
    // The same config with the kernel's BTF in view: the path tier is not needed.
    let out = Command::new("unshare").args(["-m", "--propagation", "private", BIN, "--check", "--config"]).arg(&cfg).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(report_value(&report, "tier.open"), "tracepoint", "{report}");
    assert_eq!(report_value(&report, "path.load"), "not-tried", "{report}");
}

/// Names of the BPF maps process `pid` holds a descriptor of.
fn maps_held(pid: u32) -> Vec<String> {
    let mut names = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap().flatten() {
        let Ok(info) = std::fs::read_to_string(fd.path()) else { continue };
        let Some(id) = info.lines().find_map(|l| l.strip_prefix("map_id:")) else { continue };
        let out = bpftool(&["map", "show", "id", id.trim()]);
        let show = String::from_utf8_lossy(&out.stdout);
        if let Some(name) = show.split(" name ").nth(1).and_then(|r| r.split_whitespace().next()) {
            names.push(name.to_owned());
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The path tier's own maps (deny_paths costs about 0.5 kB of kernel memory per name)
/// exist only when the ladder brings that tier up: not with the whole ladder on this
/// kernel, where the tracepoint tier serves, and with `tiers = path` they do.
#[test]
fn path_maps_exist_only_when_the_path_tier_runs() {
    require_root();
    let f = files("path-maps");
    let rules = format!("deny_open = {}\ndeny_exec = {}\n", f.secret.display(), f.tool.display());
    let own = ["deny_paths", "path_agent", "path_scratch"];
    let agent = Agent::start(&f.dir.config(&rules));
    let held = maps_held(agent.child.id());
    assert!(agent.log.contains("tier.open=tracepoint"), "{}", agent.log);
    assert!(held.iter().any(|n| n == "settings"), "{held:?}");
    assert!(!held.iter().any(|n| own.contains(&n.as_str())), "the whole ladder made the path tier's maps: {held:?}");
    agent.stop();
    let agent = Agent::start(&f.dir.config(&format!("tiers = path\n{rules}")));
    let held = maps_held(agent.child.id());
    for name in own {
        assert!(held.iter().any(|n| n == name), "{name} missing with tiers = path: {held:?}");
    }
    agent.stop();
    assert_no_path_programs_left();
}

/// The agent in the path tier kills what the rules name — by the configured name, a
/// relative or non-canonical name (taken conservatively by its last component), a
/// new name made for the file — and lets through what it documents as its limits:
/// a hardlink and a symlink that existed before, /proc/self/fd/N.
#[test]
fn path_tier_kills_named_operations_and_misses_other_names() {
    require_root();
    let f = files("path-agent");
    std::fs::hard_link(&f.secret, f.dir.path("old-hardlink")).unwrap();
    std::os::unix::fs::symlink(&f.secret, f.dir.path("old-symlink")).unwrap();
    let denied_listener = TcpListener::bind((TEST_ADDR, 0)).unwrap();
    let allowed_listener = TcpListener::bind((TEST_ADDR, 0)).unwrap();
    let (denied_port, allowed_port) =
        (denied_listener.local_addr().unwrap().port(), allowed_listener.local_addr().unwrap().port());
    let cfg = f.dir.config(&format!(
        "mode = enforce\ntiers = path\ndeny_open = {}\ndeny_exec = {}\ndeny_connect = {TEST_ADDR}/32:{denied_port}\n",
        f.secret.display(),
        f.tool.display()
    ));
    let mut agent = Agent::start(&cfg);
    assert!(
        agent.log.contains("attached: posture=ENFORCE_SIGNAL tier.open=path tier.exec=path tier.connect=path follow=agent "),
        "{}",
        agent.log
    );
    assert!(agent.log.contains("blockers=lsm-excluded,fmodret-excluded,kprobe-excluded,tracepoint-excluded,path-matching"), "{}", agent.log);
    let dir = &f.dir.0;
    let dirname = dir.file_name().unwrap().to_str().unwrap();

    killed("open by the configured path", run(Command::new("cat").arg(&f.secret)));
    killed("open by a relative path", run(Command::new("cat").arg(&f.secret_name).current_dir(dir)));
    killed("open through '..'", run(Command::new("cat").arg(format!("../{dirname}/{}", f.secret_name)).current_dir(dir)));
    killed("open through '//' and '.'", run(Command::new("cat").arg(format!("{}//./{}", dir.display(), f.secret_name))));
    allowed("open a neighbour", run(Command::new("cat").arg(f.dir.path("public"))));
    allowed("open a neighbour by a relative path", run(Command::new("cat").arg("public").current_dir(dir)));
    // Documented limits: other names of the file that existed before.
    allowed("limit: a hardlink made before", run(Command::new("cat").arg(f.dir.path("old-hardlink"))));
    allowed("limit: a symlink made before", run(Command::new("cat").arg(f.dir.path("old-symlink"))));
    allowed(
        "limit: /proc/self/fd/N of a descriptor opened otherwise",
        run(Command::new("sh").arg("-c").arg(format!("exec 3<{} && cat /proc/self/fd/3", f.dir.path("old-hardlink").display()))),
    );
    // New names for it: the process that makes one is killed (after the syscall ran).
    killed("a hardlink made now", run(Command::new("ln").arg(&f.secret).arg(f.dir.path("new-hardlink"))));
    killed("a symlink made now", run(Command::new("ln").arg("-s").arg(&f.secret).arg(f.dir.path("new-symlink"))));
    killed("a relative symlink made now", run(Command::new("ln").arg("-s").arg(&f.secret_name).arg(f.dir.path("rel-symlink"))));

    let (status, out) = run(Command::new(&f.tool).arg("must not print"));
    assert!(out.is_empty(), "the denied program ran: {out:?}");
    killed("exec of the denied program", (status, out));
    let tool_name = f.tool.file_name().unwrap().to_str().unwrap();
    killed("exec by a relative path", run(Command::new(format!("./{tool_name}")).arg("x").current_dir(dir)));
    let (status, out) = run(Command::new("/bin/echo").arg("hello"));
    assert_eq!(out, "hello\n");
    allowed("exec of another program", (status, out));

    let connect = |port: u16| run(Command::new("bash").arg("-c").arg(format!("exec 3<>/dev/tcp/{TEST_ADDR}/{port}")));
    killed("connect to the denied address:port", connect(denied_port));
    allowed("connect to another port", connect(allowed_port));
    // A datagram to the denied destination: this test's own process must not be the
    // sender (it would be killed), so a child sends it.
    let udp = UdpSocket::bind((TEST_ADDR, 0)).unwrap();
    let send = |port: u16| {
        let script = format!("import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('{TEST_ADDR}', {port}))");
        run(Command::new("python3").arg("-c").arg(script))
    };
    killed("udp send to the denied destination", send(denied_port));
    allowed("udp send elsewhere", send(udp.local_addr().unwrap().port()));

    agent.wait_for("denied class=connect op=send tier=path signal=KILL");
    let (status, log) = agent.stop();
    assert_eq!(status.code(), Some(EXIT_OK), "{log}");
    // 4 opens, 3 new names, 2 execs, 1 connect, 1 send.
    assert!(log.contains("stopped: denied=11 "), "{log}");
    assert!(log.contains("denied class=open op=open tier=path signal=KILL"), "{log}");
    assert!(log.contains(&format!("path={} rule=3", f.secret.display())), "{log}");
    // The new names the killed processes made are in their events.
    assert!(log.contains(&format!("file={} path={} rule=3", f.dir.path("new-hardlink").display(), f.secret.display())), "{log}");
    assert_no_path_programs_left();
    allowed("open after stop", run(Command::new("cat").arg(&f.secret)));
    drop((denied_listener, allowed_listener, udp));
}

/// A destination in a page the caller never touched: the path
/// tier cannot read it, so it cannot tell which address it names, and kills the
/// caller while the policy has connect rules (never otherwise). An open's path in
/// such a page is only counted: the dynamic loader's own paths are in pages a new
/// program has not touched, and killing there would kill ordinary programs (README:
/// limits of the path tier).
#[test]
fn path_tier_kills_what_it_cannot_read() {
    require_root();
    let f = files("path-unreadable");
    let listener = TcpListener::bind((TEST_ADDR, 0)).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let secret = f.secret.to_str().unwrap();
    let cfg = f.dir.config(&format!("mode = enforce\ntiers = path\ndeny_open = {secret}\ndeny_connect = {TEST_ADDR}/32:{port}\n"));
    let agent = Agent::start(&cfg);
    assert!(agent.log.contains("tier.open=path tier.exec=none tier.connect=path"), "{}", agent.log);
    allowed("limit: open, path untouched", run(&mut probe(&["open-untouched", secret])));
    killed("open, path readable", run(&mut probe(&["open", secret])));
    killed("connect, sockaddr untouched", run(&mut probe(&["connect-untouched", TEST_ADDR, &port])));
    for how in ["sendto", "sendmsg", "sendmmsg", "sendmsg-hdr"] {
        killed(&format!("{how}, destination untouched"), run(&mut probe(&["send-untouched", how, TEST_ADDR, &port])));
    }
    let (status, log) = agent.stop();
    assert_eq!(status.code(), Some(EXIT_OK), "{log}");
    assert!(log.contains("denied class=connect op=connect reason=unreadable tier=path signal=KILL"), "{log}");
    assert!(log.contains("denied class=connect op=send reason=unreadable tier=path signal=KILL"), "{log}");
    assert!(!log.contains("class=open op=open reason=unreadable"), "{log}");
    assert!(log.contains("stopped: denied=6 "), "{log}");
    // Five destinations and the open's path; other programs' opens may add to it.
    let unreadable: u64 = log.split(" unreadable=").nth(1).and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
    assert!(unreadable >= 6, "{log}");

    // Rules of no class: nothing is killed or counted for what it cannot read.
    let agent = Agent::start(&f.dir.config("mode = enforce\ntiers = path\n"));
    allowed("sendto without connect rules", run(&mut probe(&["send-untouched", "sendto", TEST_ADDR, &port])));
    let (status, log) = agent.stop();
    assert_eq!(status.code(), Some(EXIT_OK), "{log}");
    assert!(log.contains("stopped: denied=0 ") && log.contains(" unreadable=0"), "{log}");
    assert_no_path_programs_left();
    drop(listener);
}

/// A CLONE_FILES child: killing it for opening a denied file would
/// leave the descriptor in the table its parent shares, so the process that asks for
/// such a child is killed while the policy has open rules, and no child is made.
#[test]
fn path_tier_kills_the_maker_of_a_child_sharing_its_table() {
    require_root();
    let f = files("path-shared");
    let cfg = f.dir.config(&format!("mode = enforce\ntiers = path\ndeny_open = {}\n", f.secret.display()));
    let agent = Agent::start(&cfg);
    killed("the maker of a CLONE_FILES child", run(&mut probe(&["clone-files-open", f.secret.to_str().unwrap()])));
    allowed("a program started by posix_spawn (vfork)", run(Command::new("cat").arg(f.dir.path("public"))));
    let (status, log) = agent.stop();
    assert_eq!(status.code(), Some(EXIT_OK), "{log}");
    assert!(log.contains("denied class=open op=open reason=shared-clone tier=path signal=KILL"), "{log}");
    assert!(log.contains("stopped: denied=1 "), "{log}");
    assert_no_path_programs_left();
}

/// Audit mode: the same operations run, and what would have been killed is logged.
#[test]
fn path_tier_audit_mode_logs_and_allows() {
    require_root();
    let f = files("path-audit");
    let cfg = f.dir.config(&format!("mode = audit\ntiers = path\ndeny_open = {}\ndeny_exec = {}\n", f.secret.display(), f.tool.display()));
    let mut agent = Agent::start(&cfg);
    assert!(agent.log.contains("attached: posture=AUDIT_ONLY tier.open=path tier.exec=path "), "{}", agent.log);
    allowed("open in audit mode", run(Command::new("cat").arg(&f.secret)));
    allowed("exec in audit mode", run(Command::new(&f.tool).arg("ran")));
    agent.wait_for("audited class=exec op=exec tier=path");
    let (status, log) = agent.stop();
    assert_eq!(status.code(), Some(EXIT_OK), "{log}");
    assert!(log.contains("audited class=open op=open tier=path "), "{log}");
    assert!(log.contains("stopped: denied=0 audited=2 "), "{log}");
    assert_no_path_programs_left();
}
