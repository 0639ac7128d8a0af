//! `enforce`: deny file open, exec and connect on embedded Linux with eBPF.
//!
//! config → rules → posture gate (the ladder lsm → fmodret → kprobe → tracepoint → path, each
//! hook proven by a live canary) → block on the ring buffer → syslog. `--check` runs
//! the gate, reports and detaches.

#![deny(unsafe_code)] // allowed only in `bpf`, the libbpf FFI layer

mod abi;
#[allow(unsafe_code)]
mod bpf;
mod canary;
mod coalesce;
mod config;
#[cfg(test)]
mod config_fuzz;
mod daemon;
mod diag;
mod eventlog;
mod events;
mod follow;
mod gate;
mod handover;
mod ladder;
mod map_names;
mod maps;
mod guard;
mod pidns;
mod pin;
mod posture;
mod probe;
mod report;
mod rules;
#[cfg(test)]
mod scratch;
mod syslog;
mod targets;
mod tiers;
mod trust;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::posture::State;

/// Exit codes (documented in README.md; scripts rely on them).
mod exit {
    /// `enforce`: stopped cleanly by SIGTERM/SIGINT/SIGQUIT. `--check`: posture ENFORCE.
    /// `--check-config`: the config is valid.
    pub const OK: u8 = 0;
    /// `--check`: posture ENFORCE_SIGNAL.
    pub const ENFORCE_SIGNAL: u8 = 10;
    /// `--check`: posture AUDIT_ONLY.
    pub const AUDIT_ONLY: u8 = 11;
    /// `enforce` and `--check`: REFUSED, nothing attached.
    pub const REFUSED: u8 = 12;
    /// Bad command line (EX_USAGE).
    pub const USAGE: u8 = 64;
    /// A failure after start (EX_SOFTWARE): the ring buffer or a map failed.
    pub const SOFTWARE: u8 = 70;
    /// Bad config (EX_CONFIG): `enforce: FILE:LINE: reason`.
    pub const CONFIG: u8 = 78;
}

const DEFAULT_CONFIG: &str = "/etc/enforce.conf";

const USAGE: &str = "\
usage: enforce [--config FILE] [-v]             run the agent
       enforce --check [--json] [--config FILE] probe the posture, detach, exit
       enforce --check-config [--config FILE]   validate the config only (no BPF)
       enforce --help | --version";

/// `--help`: the usage, every option, the signals and the exit codes (the `exit`
/// constants; a unit test keeps them in step).
const HELP: &str = "
options:
  -c, --config FILE  the config file (default /etc/enforce.conf)
      --check        run the posture gate, print key=value lines, detach, exit
      --json         with --check: one JSON object instead
      --check-config validate the config only; loads no BPF
  -v, --verbose      debug messages on stderr, libbpf's among them; -vv: more
  -h, --help         this text
  -V, --version      the version and the build it came from

signals to the agent: TERM, INT, QUIT stop it cleanly; HUP reloads the config;
USR1 logs a stats: line; USR2, PIPE, ALRM and other stray signals are ignored

exit codes:
  0   stopped cleanly; --check: posture ENFORCE; --check-config: the config is valid
  10  --check: posture ENFORCE_SIGNAL
  11  --check: posture AUDIT_ONLY
  12  posture REFUSED: nothing attached
  64  bad command line
  70  the agent failed after start (ring buffer or map error)
  78  bad config (FILE:LINE: reason)";

/// `--version`: `enforce VERSION`, and the build (`git describe`, or the build
/// system's ENFORCE_VERSION_EXTRA) in parentheses when build.rs found one.
fn version() -> String {
    match env!("ENFORCE_BUILD") {
        "" => format!("enforce {}", env!("CARGO_PKG_VERSION")),
        build => format!("enforce {} ({build})", env!("CARGO_PKG_VERSION")),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Command {
    Run,
    Check { json: bool },
    CheckConfig,
    Help,
    Version,
}

#[derive(Debug, PartialEq, Eq)]
struct Cli {
    command: Command,
    config: PathBuf,
    verbose: u8,
}

fn parse_cli(args: impl IntoIterator<Item = OsString>) -> Result<Cli, lexopt::Error> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_iter(std::iter::once(OsString::from("enforce")).chain(args));
    let mut cli = Cli { command: Command::Run, config: PathBuf::from(DEFAULT_CONFIG), verbose: 0 };
    let (mut check, mut json, mut check_config) = (false, false, false);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("config") | Short('c') => cli.config = parser.value()?.into(),
            Long("check") => check = true,
            Long("json") => json = true,
            Long("check-config") => check_config = true,
            Short('v') | Long("verbose") => cli.verbose = cli.verbose.saturating_add(1),
            Short('h') | Long("help") => cli.command = Command::Help,
            Short('V') | Long("version") => cli.command = Command::Version,
            _ => return Err(arg.unexpected()),
        }
    }
    if matches!(cli.command, Command::Help | Command::Version) {
        return Ok(cli);
    }
    cli.command = match (check, check_config, json) {
        (true, true, _) => return Err("--check and --check-config exclude each other".into()),
        (false, _, true) if !check => return Err("--json goes with --check".into()),
        (true, false, json) => Command::Check { json },
        (false, true, _) => Command::CheckConfig,
        (false, false, _) => Command::Run,
    };
    Ok(cli)
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    if args.next().is_some_and(|argv0| canary::started_by_gate(&argv0)) {
        if let (Some(hook), Some(target), None) = (args.next(), args.next(), args.next()) {
            return ExitCode::from(canary::child_main(&hook.to_string_lossy(), &target) as u8);
        }
    }
    let cli = match parse_cli(std::env::args_os().skip(1)) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("enforce: {e}\n{USAGE}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let level = match cli.verbose {
        0 => log::LevelFilter::Info,
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    diag::Limited::init(level);
    bpf::route_libbpf_log();

    ExitCode::from(match cli.command {
        Command::Help => {
            println!("{USAGE}\n{HELP}");
            exit::OK
        }
        Command::Version => {
            println!("{}", version());
            exit::OK
        }
        Command::CheckConfig => match load_or_exit(&cli.config) {
            Ok(_) => exit::OK,
            Err(code) => code,
        },
        Command::Check { json } => check(&cli.config, json),
        Command::Run => run(&cli.config),
    })
}

/// The config and its rules resolved to map entries.
struct Loaded {
    policy: Box<config::Policy>,
    inodes: rules::InodeEntries,
    net: Vec<rules::NetKey>,
    /// allow_exec_from, resolved to filesystems.
    exec_allow: trust::AllowList,
    /// Rule files held open while this config is in force (`targets::holds`).
    _holds: Vec<std::os::fd::OwnedFd>,
}

impl Loaded {
    /// Frees the map entries once the maps hold them (with 10,000 rules per class
    /// they are 800 kB the running agent does not need).
    fn release_entries(&mut self) {
        self.inodes = Vec::new();
        self.net = Vec::new();
    }
}

/// Loads the config (the file and its drop-in files), or returns `FILE:LINE: reason`.
fn load(path: &Path) -> Result<Loaded, String> {
    let policy = config::load(path).map_err(|e| format!("{}:{}: {e}", e.file.as_deref().unwrap_or(path).display(), e.line))?;
    let at = |line: u32, reason: &dyn core::fmt::Display| format!("{}: {reason}", policy.at(path, line));
    config::check_btf_file(&policy).map_err(|e| at(e.line, &e))?;
    // Each path resolved once, judged and turned into map entries.
    let resolved = targets::check(path, &policy).map_err(|e| at(e.line, &e))?;
    let holds = targets::holds(path, &policy, &resolved);
    let inodes = rules::entries(resolved);
    let exec_allow = trust::check(path, &policy).map_err(|e| at(e.line, &e))?;
    let net = policy.connect.iter().map(rules::net_keys).collect();
    Ok(Loaded { policy, inodes, net, exec_allow, _holds: holds })
}

/// Loads the config for a command, or prints `enforce: FILE:LINE: reason` and returns
/// the EX_CONFIG exit code.
fn load_or_exit(path: &Path) -> Result<Loaded, u8> {
    load(path).map_err(|message| {
        eprintln!("enforce: {message}");
        exit::CONFIG
    })
}

fn rules_of(loaded: &Loaded) -> maps::Rules<'_> {
    maps::Rules {
        inodes: &loaded.inodes,
        net: &loaded.net,
        ringbuf_size: loaded.policy.ringbuf_size,
        exec_allow: &loaded.exec_allow,
        deny_anon_exec: loaded.policy.allow_anon_exec.is_some(),
    }
}

fn rule_counts(p: &config::Policy) -> [usize; 3] {
    [p.open.len(), p.exec.len(), p.connect.len()]
}

fn check(config: &Path, json: bool) -> u8 {
    let loaded = match load_or_exit(config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if let Err(why) = pidns::check() {
        eprintln!("enforce: refused: {why}");
        return exit::REFUSED;
    }
    // Its own generation, with its own hand-over map: it never acts.
    let outcome = gate::run(&loaded.policy, &rules_of(&loaded), None, 1);
    drop(outcome.enforcement); // detach before reporting: --check leaves nothing behind
    let pin = loaded.policy.pin.as_ref().map(|p| p.dir.as_str());
    let pinned = pin::describe(pin);
    let r = report::Report {
        pin: pin.unwrap_or("none"),
        pinned: &pinned,
        posture: &outcome.posture,
        wanted: &outcome.wanted,
        facts: &outcome.facts,
        lsm_list: &outcome.lsm_list,
        kernel: &outcome.kernel,
        btf_file: loaded.policy.btf.as_ref().map(|r| r.path.as_str()),
        rules: rule_counts(&loaded.policy),
    };
    let mut out = String::new();
    let _ = if json { report::write_json(&mut out, &r, env!("CARGO_PKG_VERSION"), env!("ENFORCE_BUILD")) } else { report::write_text(&mut out, &r) };
    print!("{out}");
    match outcome.posture.state {
        State::Enforce => exit::OK,
        State::EnforceSignal => exit::ENFORCE_SIGNAL,
        State::AuditOnly => exit::AUDIT_ONLY,
        State::Refused => exit::REFUSED,
    }
}

/// A lifecycle line: to syslog, and to stderr for whoever started the agent (once:
/// when syslog is unreachable the syslog fallback already wrote it there).
fn announce(log: &mut syslog::Syslog, severity: syslog::Severity, line: &str) {
    // Syslog::send wrote it to stderr itself when there is no syslog socket.
    if log.send(severity, line) != syslog::Sent::Stderr {
        let level = if severity == syslog::Severity::Err { log::Level::Error } else { log::Level::Info };
        log::log!(level, "{line}");
    }
}

/// `posture=… tier.open=… tier.exec=… tier.connect=… follow=…`: how a posture serves
/// each class, the head of the `attached:`, `reloaded:` and `stats:` lines.
struct Served<'a>(&'a posture::Posture);

impl std::fmt::Display for Served<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tier = |t: Option<ladder::Tier>| t.map_or("none", ladder::Tier::name);
        let p = self.0;
        write!(
            f,
            "posture={} tier.open={} tier.exec={} tier.connect={} follow={}",
            p.state.name(),
            tier(p.tiers[0]),
            tier(p.tiers[1]),
            tier(p.tiers[2]),
            p.hooks[ladder::Hook::Follow as usize].map_or("agent", ladder::Tier::name)
        )
    }
}

/// The line that says what a gate run attached:
/// `attached: posture=… tier.open=… … follow=… rules open=… exec=… connect=… blockers=…`.
fn attached_line(verb: &str, posture: &posture::Posture, policy: &config::Policy) -> String {
    let counts = rule_counts(policy);
    format!(
        "{verb}: {} rules open={} exec={} connect={} blockers={}",
        Served(posture),
        counts[0],
        counts[1],
        counts[2],
        report::Blockers(posture),
    )
}

/// The generation in force, what it was loaded from, its posture, and where it is
/// pinned.
struct Running {
    enforcement: gate::Enforcement,
    loaded: Loaded,
    posture: posture::Posture,
    pinned: Option<pin::Pinned>,
}

/// The `stats:` line (SIGUSR1): the posture of the generation in force, its rules,
/// and every counter since the agent started (`earlier` holds the generations it
/// retired): `stats: posture=… tier.open=… … rules.open=N … generation=N uptime=Ns
/// denied=N audited=N dropped=N followed=N follow_failed=N logged=N coalesced=N unsent=N
/// blockers=…`.
fn stats_line(running: &Running, earlier: maps::Counters, started: std::time::Instant, events: &eventlog::EventLog) -> String {
    let (posture, counts) = (&running.posture, rule_counts(&running.loaded.policy));
    let mut c = running.enforcement.maps.counters().unwrap_or_else(|e| {
        log::warn!("reading the counters: {e}");
        maps::Counters::default()
    });
    c += earlier;
    format!(
        "stats: {} rules.open={} rules.exec={} rules.connect={} generation={} uptime={}s denied={} audited={} dropped={} followed={} follow_failed={} unreadable={}{} blockers={}",
        Served(posture),
        counts[0],
        counts[1],
        counts[2],
        running.enforcement.generation,
        started.elapsed().as_secs(),
        c.denied,
        c.audited,
        c.dropped,
        c.followed,
        c.follow_failed,
        c.unreadable,
        events.totals(),
        report::Blockers(posture),
    )
}

/// Retires the generation in force (unpinning it first: a pinned link would stay
/// attached) and returns its final counters.
fn retire(running: Running, events: &mut eventlog::EventLog) -> Result<maps::Counters, bpf::Error> {
    if let Some(p) = &running.pinned {
        p.unpin_links();
    }
    let counters = daemon::retire(running.enforcement, &running.loaded.policy, events);
    if let Some(p) = running.pinned {
        p.remove();
    }
    counters
}

/// Pins `enf` when pinning, then hands over to it; when the hand-over fails, its pins
/// go with it and the caller keeps what runs now.
fn pin_and_take_over(
    pins: Option<&pin::PinDir>,
    enf: &gate::Enforcement,
    handover: &handover::Handover,
    log: &mut syslog::Syslog,
) -> Result<Option<pin::Pinned>, bpf::Error> {
    let pinned = pin_generation(pins, enf, log);
    if let Err(e) = enf.take_over(handover) {
        if let Some(p) = pinned {
            p.discard();
        }
        return Err(e);
    }
    Ok(pinned)
}

/// Pins a new generation when pinning; an error is said and the agent goes on unpinned.
fn pin_generation(pins: Option<&pin::PinDir>, enf: &gate::Enforcement, log: &mut syslog::Syslog) -> Option<pin::Pinned> {
    match pins?.pin(enf) {
        Ok(p) => Some(p),
        Err(e) => {
            announce(log, syslog::Severity::Err, &format!("cannot pin generation {}: {e}; it will not outlive the agent", enf.generation));
            None
        }
    }
}

fn run(config: &Path) -> u8 {
    let mut loaded = match load_or_exit(config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let requests = bpf::catch_signals();
    let started = std::time::Instant::now();
    let mut log = syslog::Syslog::open(&syslog::socket_path(), loaded.policy.syslog_facility, &loaded.policy.syslog_ident);
    log.set_format(loaded.policy.syslog_format);
    let mut events = eventlog::EventLog::new(log, eventlog::limits(&loaded.policy));
    if let Err(why) = pidns::check() {
        announce(&mut events.syslog, syslog::Severity::Err, &format!("refused: {why}"));
        return exit::REFUSED;
    }
    // Pinning: the directory, and the generations an earlier agent left there, whose
    // hand-over map this agent's generations then share.
    let pins = match &loaded.policy.pin {
        None => None,
        Some(p) => match pin::PinDir::prepare(&p.dir) {
            Ok(dir) => Some(dir),
            Err(why) => {
                eprintln!("enforce: {}: pin {}: {why}", loaded.policy.at(config, p.line), p.dir);
                return exit::CONFIG;
            }
        },
    };
    let (adopted_handover, adopted) = match &pins {
        None => (None, Vec::new()),
        Some(dir) => match dir.adopt_handover() {
            Ok(h) => (h, dir.generations()),
            Err(why) => {
                announce(&mut events.syslog, syslog::Severity::Err, &format!("refused: pin {why}"));
                return exit::SOFTWARE;
            }
        },
    };
    let last = adopted.iter().map(|p| p.generation).max().unwrap_or(0);
    let mut generation = adopted_handover.as_ref().and_then(|h| h.read().ok()).map_or(0, |e| e.generation).max(last) + 1;

    let outcome = gate::run(&loaded.policy, &rules_of(&loaded), adopted_handover.as_ref(), generation);
    loaded.release_entries();
    let Some(enforcement) = outcome.enforcement else {
        let line = format!("refused: posture=REFUSED blockers={}", report::Blockers(&outcome.posture));
        announce(&mut events.syslog, syslog::Severity::Err, &line);
        if !adopted.is_empty() {
            announce(&mut events.syslog, syslog::Severity::Err, "refused: the pinned generation stays attached");
        }
        return exit::REFUSED;
    };
    let handover = match adopted_handover.map_or_else(|| enforcement.maps.handover(), Ok) {
        Ok(h) => h,
        Err(e) => {
            announce(&mut events.syslog, syslog::Severity::Err, &format!("failed: {e}"));
            return exit::SOFTWARE;
        }
    };
    if let Some(dir) = &pins {
        if let Err(e) = dir.pin_handover(&handover) {
            announce(&mut events.syslog, syslog::Severity::Err, &format!("cannot pin the hand-over map: {e}"));
        }
    }
    let pinned = match pin_and_take_over(pins.as_ref(), &enforcement, &handover, &mut events.syslog) {
        Ok(pinned) => pinned,
        Err(e) => {
            announce(&mut events.syslog, syslog::Severity::Err, &format!("failed: {e}"));
            return exit::SOFTWARE;
        }
    };
    announce(&mut events.syslog, syslog::Severity::Info, &attached_line("attached", &outcome.posture, &loaded.policy));
    let mut running = Running { enforcement, loaded, posture: outcome.posture, pinned };

    // Counters of the generations retired since start: replaced by reloads, and those
    // adopted (the records of theirs this agent delivered).
    let mut earlier = maps::Counters::default();
    for old in adopted {
        let n = old.generation;
        let a = daemon::retire_pinned(old, &mut events);
        earlier += a.delivered;
        let c = a.counters;
        let line = format!(
            "adopted: generation {n}, pinned by an earlier agent, replaced by generation {}: it had denied={} audited={} dropped={} followed={} since it was attached; {} of its events, left undelivered, are logged above (without paths)",
            running.enforcement.generation,
            c.denied,
            c.audited,
            c.dropped,
            c.followed,
            a.delivered.denied + a.delivered.audited + a.delivered.followed,
        );
        announce(&mut events.syslog, syslog::Severity::Info, &line);
    }

    let result = loop {
        let mut stats = |events: &mut eventlog::EventLog| {
            let line = stats_line(&running, earlier, started, events);
            announce(&mut events.syslog, syslog::Severity::Info, &line);
        };
        let ended = daemon::run(&running.enforcement, &running.loaded.policy, &mut events, requests, &mut stats);
        match ended {
            Ok(daemon::Ending::Stop) => {
                let policy = running.loaded.policy.clone(); // its summaries name its paths
                break (retire(running, &mut events), policy);
            }
            Ok(daemon::Ending::Reload) => {
                generation = running.enforcement.generation + 1;
                let Some((next, next_loaded, next_posture, line)) = reload(config, &mut events.syslog, &handover, generation)
                else {
                    continue;
                };
                let pinned = match pin_and_take_over(pins.as_ref(), &next, &handover, &mut events.syslog) {
                    Ok(pinned) => pinned,
                    Err(e) => {
                        let line = format!("reload failed: {e}; keeping the current policy");
                        announce(&mut events.syslog, syslog::Severity::Err, &line);
                        continue;
                    }
                };
                let old = std::mem::replace(&mut running, Running { enforcement: next, loaded: next_loaded, posture: next_posture, pinned });
                let old_policy = old.loaded.policy.clone(); // its summaries name its paths
                match retire(old, &mut events) {
                    Ok(c) => earlier += c,
                    Err(e) => log::warn!("reading the replaced tiers' counters: {e}"),
                }
                events.flush(&old_policy); // its summaries name its paths
                announce(&mut events.syslog, syslog::Severity::Info, &line);
            }
            Err(e) => {
                if let Some(p) = running.pinned.take() {
                    p.discard();
                }
                break (Err(e), running.loaded.policy); // the enforcement detaches when dropped
            }
        }
    };
    if let Some(dir) = pins {
        dir.remove();
    }
    let (result, policy) = result;
    match result {
        Ok(mut c) => {
            c += earlier;
            events.flush(&policy);
            let line = format!(
                "stopped: denied={} audited={} dropped={} followed={} unreadable={}{}",
                c.denied,
                c.audited,
                c.dropped,
                c.followed,
                c.unreadable,
                events.totals()
            );
            announce(&mut events.syslog, syslog::Severity::Info, &line);
            exit::OK
        }
        Err(e) => {
            events.flush(&policy);
            announce(&mut events.syslog, syslog::Severity::Err, &format!("failed: {e}"));
            exit::SOFTWARE
        }
    }
}

/// SIGHUP: re-reads the config and runs the whole gate for it, as generation
/// `generation`, while the current tiers stay attached and acting, so enforcement never
/// lapses. Returns the new enforcement (switched on, waiting for the hand-over), its
/// config, its posture and its `reloaded:` line only when the config is valid and the posture is not
/// REFUSED; otherwise says why in syslog, and the caller keeps the current one. Syslog,
/// coalescing and pinning keep the settings the agent started with.
fn reload(
    config: &Path,
    log: &mut syslog::Syslog,
    handover: &handover::Handover,
    generation: u32,
) -> Option<(gate::Enforcement, Loaded, posture::Posture, String)> {
    let loaded = match load(config) {
        Ok(l) => l,
        Err(message) => {
            announce(log, syslog::Severity::Err, &format!("reload failed: {message}; keeping the current policy"));
            return None;
        }
    };
    let mut loaded = loaded;
    let outcome = gate::run(&loaded.policy, &rules_of(&loaded), Some(handover), generation);
    loaded.release_entries();
    let Some(next) = outcome.enforcement else {
        let line = format!(
            "reload refused: posture=REFUSED blockers={}; keeping the current policy",
            report::Blockers(&outcome.posture)
        );
        announce(log, syslog::Severity::Err, &line);
        return None;
    };
    let line = attached_line("reloaded", &outcome.posture, &loaded.policy);
    Some((next, loaded, outcome.posture, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Cli, String> {
        parse_cli(args.iter().map(OsString::from)).map_err(|e| e.to_string())
    }

    #[test]
    fn commands() {
        assert_eq!(cli(&[]).unwrap().command, Command::Run);
        assert_eq!(cli(&[]).unwrap().config, PathBuf::from(DEFAULT_CONFIG));
        assert_eq!(cli(&["--check"]).unwrap().command, Command::Check { json: false });
        assert_eq!(cli(&["--check", "--json"]).unwrap().command, Command::Check { json: true });
        assert_eq!(cli(&["--check-config", "--config", "/x"]).unwrap().config, PathBuf::from("/x"));
        assert_eq!(cli(&["-vv"]).unwrap().verbose, 2);
        // The canary child is not a mode of the command line (canary::started_by_gate).
        assert_eq!(cli(&["--canary-child", "open", "/x"]).unwrap_err(), "invalid option '--canary-child'");
    }

    #[test]
    fn help_names_every_option_the_default_config_and_every_exit_code() {
        for option in ["-c, --config FILE", "--check ", "--json", "--check-config", "-v, --verbose", "-h, --help", "-V, --version"] {
            assert!(HELP.contains(option), "{option}");
        }
        assert!(HELP.contains(&format!("(default {DEFAULT_CONFIG})")));
        let codes = [exit::OK, exit::ENFORCE_SIGNAL, exit::AUDIT_ONLY, exit::REFUSED, exit::USAGE, exit::SOFTWARE, exit::CONFIG];
        let listed: Vec<u8> = HELP
            .split_once("exit codes:\n")
            .unwrap()
            .1
            .lines()
            .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(listed, codes);
        assert!(!HELP.contains("canary"), "the canary mode is internal");
    }

    #[test]
    fn version_names_the_build() {
        let v = version();
        assert!(v.starts_with(&format!("enforce {}", env!("CARGO_PKG_VERSION"))), "{v}");
        assert_eq!(v.contains('('), !env!("ENFORCE_BUILD").is_empty(), "{v}");
    }

    #[test]
    fn usage_errors() {
        assert!(cli(&["--json"]).is_err());
        assert!(cli(&["--check", "--check-config"]).is_err());
        assert!(cli(&["--bogus"]).is_err());
        assert!(cli(&["--config"]).is_err());
        assert!(cli(&["stray"]).is_err());
    }
}
