//! Syslog: RFC 3164 datagrams to `/dev/log`, stderr when there is none.
//!
//! Event lines reach the sender already coalesced and held to `log_rate`
//! (`coalesce.rs`), whichever way they go. On stderr, which init scripts send to a
//! file that nothing rotates while the agent runs (on tmpfs, often), they are also
//! capped: at most STDERR_EVENT_BYTES of them per run; the rest are counted as
//! unsent, like lines syslog does not take.
//!
//! A datagram is `<PRI>Mmm dd hh:mm:ss ident[pid]: msg`, in local time (`TZ`, else
//! `/etc/localtime`, as the C library reads them; UTC without either), at most
//! MAX_DATAGRAM bytes (longer messages are cut). No time or syslog crate: the framing
//! is a dozen lines and the date a known formula.

use core::fmt::{self, Write as _};
use std::io::{self, Write as _};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{Facility, SyslogFormat, MAX_IDENT_LEN};

/// The local syslog socket.
pub const DEV_LOG: &str = "/dev/log";
/// Test seam: send to this socket instead of DEV_LOG (tests point it at a stand-in).
pub const SOCKET_ENV: &str = "ENFORCE_SYSLOG_SOCKET";

/// The syslog socket to use: DEV_LOG, or the test seam's path when it is set.
pub fn socket_path() -> PathBuf {
    std::env::var_os(SOCKET_ENV).map_or_else(|| PathBuf::from(DEV_LOG), PathBuf::from)
}
/// Largest datagram sent, in bytes; longer messages are truncated.
pub const MAX_DATAGRAM: usize = 1024;
/// Event lines written to stderr per run, in bytes (about 5,000 lines): see the
/// module comment. Lifecycle lines and the agent's diagnostics are not counted.
pub const STDERR_EVENT_BYTES: u64 = 1 << 20;
/// Sends never block (the socket is non-blocking). When syslog's queue is full, one
/// message may wait for room up to LINE_WAIT_MS, out of a budget that refills at
/// WAIT_BUDGET_MS per second up to WAIT_BUDGET_MS: a slow daemon (busybox syslogd
/// under qemu, a queue of 10 datagrams) gets a moment to catch up, and a stuck one
/// costs the agent at most a fifth of its time. A message that still finds no room
/// is not written; the caller counts it.
const LINE_WAIT_MS: u64 = 20;
/// See LINE_WAIT_MS.
const WAIT_BUDGET_MS: u64 = 200;
/// No wait starts with less than this left in the budget (microseconds): a sleep
/// costs the scheduler's latency whatever its timeout, so a stuck daemon would
/// otherwise be waited on for every line once the budget is spent.
const MIN_WAIT_US: u64 = 1000;

/// Milliseconds on the monotonic clock.
pub fn now_ms() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    #[allow(clippy::unnecessary_cast)] // i64 on 64-bit, i32/i64 elsewhere
    let (secs, nanos) = (t.tv_sec as u64, t.tv_nsec as u64);
    secs.saturating_mul(1000).saturating_add(nanos / 1_000_000)
}

/// Microseconds on the monotonic clock.
fn now_us() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    #[allow(clippy::unnecessary_cast)] // i64 on 64-bit, i32/i64 elsewhere
    let (secs, nanos) = (t.tv_sec as u64, t.tv_nsec as u64);
    secs.saturating_mul(1_000_000).saturating_add(nanos / 1000)
}

/// How long sends may still wait for room: a bucket of WAIT_BUDGET_MS refilled at
/// WAIT_BUDGET_MS per second, kept in microseconds (a wait for a reader that is
/// draining lasts microseconds: counted as a whole millisecond each, ten thousand
/// lines a second would spend the budget many times over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WaitBudget {
    left_us: u64,
    at_us: u64,
}

impl WaitBudget {
    fn new(now_us: u64) -> WaitBudget {
        WaitBudget { left_us: WAIT_BUDGET_MS * 1000, at_us: now_us }
    }

    /// How long the next message may wait at `now_us`, in microseconds.
    fn allowance(&mut self, now_us: u64) -> u64 {
        let refill = now_us.saturating_sub(self.at_us).saturating_mul(WAIT_BUDGET_MS) / 1000;
        if refill > 0 {
            self.left_us = self.left_us.saturating_add(refill).min(WAIT_BUDGET_MS * 1000);
            self.at_us = now_us;
        }
        self.left_us.min(LINE_WAIT_MS * 1000)
    }

    /// Records `us` microseconds spent waiting.
    fn spend(&mut self, us: u64) {
        self.left_us = self.left_us.saturating_sub(us);
    }
}

/// What became of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The syslog socket took it.
    Syslog,
    /// There is no syslog socket (none at the path, or nobody listening): it went to
    /// stderr.
    Stderr,
    /// Syslog is there but its queue stayed full: not written anywhere.
    Unsent,
}

/// Message severity (the subset the agent uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// err (3): the agent failed or refused.
    Err,
    /// warning (4): a denial.
    Warning,
    /// notice (5): an audited event.
    Notice,
    /// info (6): start and stop.
    Info,
}

impl Severity {
    /// The RFC 3164 severity number.
    pub fn code(self) -> u8 {
        match self {
            Severity::Err => 3,
            Severity::Warning => 4,
            Severity::Notice => 5,
            Severity::Info => 6,
        }
    }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Month (1..=12) and day of month of `days` since 1970-01-01 (see [`civil`]).
fn month_day(days: i64) -> (usize, i64) {
    let (_, month, day) = civil(days);
    (month, day)
}

/// Year, month (1..=12) and day of month of `days` since 1970-01-01, proleptic
/// Gregorian (Howard Hinnant's civil_from_days; exact for every i64 day count in
/// range here).
fn civil(days: i64) -> (i64, usize, i64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // day of the 400-year era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year, 0..=365
    let mp = (5 * doy + 2) / 153; // March-based month, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as usize, day)
}

/// Writes one RFC 3164 message: `<PRI>Mmm dd hh:mm:ss ident[pid]: msg`, with
/// PRI = facility * 8 + severity, the time `local_secs` (seconds since the epoch plus
/// the local offset from UTC, see [`local_secs`]), the day space-padded (`Nov  8`),
/// and every control character of `msg` (newlines included) replaced by a space so
/// one message stays one line.
pub fn frame(
    out: &mut impl fmt::Write,
    facility: Facility,
    severity: Severity,
    local_secs: i64,
    ident: &str,
    pid: u32,
    msg: &str,
) -> fmt::Result {
    let pri = u32::from(facility.code()) * 8 + u32::from(severity.code());
    // |days| < 2^47: no overflow in month_day.
    let (month, day) = month_day(local_secs.div_euclid(86_400));
    let secs = local_secs.rem_euclid(86_400);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    write!(out, "<{pri}>{} {day:>2} {h:02}:{m:02}:{s:02} {ident}[{pid}]: ", MONTHS[month - 1])?;
    write_msg(out, msg)
}

/// Writes one RFC 5424 message: `<PRI>1 YYYY-MM-DDThh:mm:ss+hh:mm HOST ident pid - -
/// msg`: the local time of `unix_secs` with its offset from UTC (`offset`, seconds east),
/// no structured data, and `msg` as [`frame`] writes it.
#[allow(clippy::too_many_arguments)]
pub fn frame_5424(
    out: &mut impl fmt::Write,
    facility: Facility,
    severity: Severity,
    unix_secs: i64,
    offset: i64,
    host: &str,
    ident: &str,
    pid: u32,
    msg: &str,
) -> fmt::Result {
    let pri = u32::from(facility.code()) * 8 + u32::from(severity.code());
    let local = unix_secs.saturating_add(offset);
    let (year, month, day) = civil(local.div_euclid(86_400));
    let secs = local.rem_euclid(86_400);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let (sign, off) = if offset < 0 { ('-', -(offset.max(-86_399))) } else { ('+', offset.min(86_399)) };
    let host = if host.is_empty() { "-" } else { host };
    write!(
        out,
        "<{pri}>1 {year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{sign}{:02}:{:02} {host} {ident} {pid} - - ",
        off / 3600,
        off / 60 % 60
    )?;
    write_msg(out, msg)
}

/// Writes `msg` with every control character replaced by a space.
fn write_msg(out: &mut impl fmt::Write, msg: &str) -> fmt::Result {
    // Runs between control characters in one write each (the event path writes up to
    // 100,000 lines a second; char by char was most of its time). A control character
    // is a byte below 0x20, 0x7f, or (C1) 0xc2 0x80..0x9f: without such bytes, as in
    // every event line, the message is written whole.
    if !msg.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2) {
        return out.write_str(msg);
    }
    let mut runs = msg.split(char::is_control);
    out.write_str(runs.next().unwrap_or_default())?;
    for run in runs {
        out.write_char(' ')?;
        out.write_str(run)?;
    }
    Ok(())
}

/// `unix_secs` moved by the local offset from UTC at that time, which the date
/// arithmetic of [`frame`] then shows as the local wall-clock time. `cache` holds the
/// last second asked about and its offset: the event path frames up to 100,000 lines
/// a second, and the C library takes a lock per call.
fn local_secs(unix_secs: i64, cache: &core::cell::Cell<Option<(i64, i64)>>) -> i64 {
    let offset = match cache.get() {
        Some((at, offset)) if at == unix_secs => offset,
        _ => {
            let offset = crate::bpf::utc_offset(unix_secs);
            cache.set(Some((unix_secs, offset)));
            offset
        }
    };
    unix_secs.saturating_add(offset)
}

/// A `fmt::Write` into a fixed buffer that keeps what fits and drops the rest, so an
/// overlong message is cut (at a character boundary) rather than lost.
struct Truncating<'a, const N: usize> {
    buf: &'a mut heapless::String<N>,
    full: bool,
}

impl<const N: usize> fmt::Write for Truncating<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.full {
            return Ok(());
        }
        // What fits, cut at a character boundary, in one copy.
        let mut fits = s.len().min(N - self.buf.len());
        while !s.is_char_boundary(fits) {
            fits -= 1;
        }
        let _ = self.buf.push_str(&s[..fits]); // fits: cannot fail
        self.full = fits < s.len();
        Ok(())
    }
}

/// Event lines held to go out together ([`Syslog::hold`]): one `sendmmsg` and, when
/// syslog is waiting for input, one wakeup of it per batch instead of per line.
const BATCH: usize = 16;

/// The sender: a datagram socket connected to the syslog socket, or stderr.
pub struct Syslog {
    path: PathBuf,
    sock: Option<UnixDatagram>,
    facility: Facility,
    ident: heapless::String<MAX_IDENT_LEN>,
    pid: u32,
    budget: WaitBudget,
    /// Held datagrams, back to back, and where each ends.
    held: Vec<u8>,
    held_ends: heapless::Vec<usize, BATCH>,
    /// Held lines syslog did not take; the owner collects them ([`Syslog::take_unsent`]).
    unsent_held: u64,
    /// The last second framed and its offset from UTC (see [`local_secs`]).
    zone: core::cell::Cell<Option<(i64, i64)>>,
    format: SyslogFormat,
    /// RFC 5424's HOSTNAME: the node name, printable ASCII.
    host: heapless::String<64>,
    /// Bytes of event lines stderr may still take (see STDERR_EVENT_BYTES).
    stderr_left: u64,
    /// The line saying that event lines stop going to stderr has been written.
    stderr_cut: bool,
}

/// A non-blocking datagram socket connected to `path`, or None.
fn connect(path: &Path) -> Option<UnixDatagram> {
    let sock = UnixDatagram::unbound().ok()?;
    sock.connect(path).ok()?;
    sock.set_nonblocking(true).ok()?;
    Some(sock)
}

/// Waits up to `us` microseconds for `sock` to have room for a datagram (for a
/// connected unix datagram socket, POLLOUT means the receiver's queue is not full).
fn wait_writable(sock: &UnixDatagram, us: u64) {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let timeout = Timespec { tv_sec: 0, tv_nsec: (us.min(999_999) * 1000) as _ };
    let _ = rustix::event::poll(&mut [PollFd::new(sock, PollFlags::OUT)], Some(&timeout));
}

impl Syslog {
    /// Connects to the syslog socket at `socket_path` (normally DEV_LOG). Never fails:
    /// without a socket, messages go to stderr (and every send tries to connect again,
    /// so a syslog daemon started later is picked up). `ident` is cut at MAX_IDENT_LEN.
    pub fn open(socket_path: &Path, facility: Facility, ident: &str) -> Syslog {
        let mut short = heapless::String::new();
        let mut t = Truncating { buf: &mut short, full: false };
        let _ = t.write_str(ident);
        Syslog {
            path: socket_path.to_owned(),
            sock: connect(socket_path),
            facility,
            ident: short,
            pid: std::process::id(),
            budget: WaitBudget::new(now_us()),
            held: Vec::new(),
            held_ends: heapless::Vec::new(),
            unsent_held: 0,
            zone: core::cell::Cell::new(None),
            format: SyslogFormat::Rfc3164,
            host: heapless::String::new(),
            stderr_left: STDERR_EVENT_BYTES,
            stderr_cut: false,
        }
    }

    /// Writes an event line to stderr within what is left of STDERR_EVENT_BYTES:
    /// Stderr when written, Unsent once the cap is reached (said once, on stderr).
    fn event_to_stderr(&mut self, line: &[u8]) -> Sent {
        let len = line.len() as u64 + 1;
        if len <= self.stderr_left {
            self.stderr_left -= len;
            let mut err = io::stderr().lock();
            let _ = err.write_all(line);
            let _ = err.write_all(b"\n");
            return Sent::Stderr;
        }
        if !core::mem::replace(&mut self.stderr_cut, true) {
            let note = format!(
                "event lines to stderr stop here ({STDERR_EVENT_BYTES} bytes written, no syslog on {}): the rest are counted as unsent until syslog listens",
                self.path.display()
            );
            let _ = writeln!(io::stderr().lock(), "{}", self.framed(Severity::Warning, &note));
        }
        Sent::Unsent
    }

    /// Frames messages in `format` from now on (RFC 3164 until this is called).
    pub fn set_format(&mut self, format: SyslogFormat) {
        self.format = format;
        self.host.clear();
        if format == SyslogFormat::Rfc5424 {
            let uname = rustix::system::uname();
            // RFC 5424 allows printable ASCII without spaces in HOSTNAME.
            for c in uname.nodename().to_bytes().iter().filter(|b| b.is_ascii_graphic()) {
                let _ = self.host.push(char::from(*c));
            }
        }
    }

    /// Frames one message, timestamped now.
    fn framed(&self, severity: Severity, msg: &str) -> heapless::String<MAX_DATAGRAM> {
        let now =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let mut datagram = heapless::String::<MAX_DATAGRAM>::new();
        let mut out = Truncating { buf: &mut datagram, full: false };
        let _ = match self.format {
            SyslogFormat::Rfc3164 => frame(&mut out, self.facility, severity, local_secs(now, &self.zone), &self.ident, self.pid, msg),
            SyslogFormat::Rfc5424 => {
                let offset = local_secs(now, &self.zone) - now;
                frame_5424(&mut out, self.facility, severity, now, offset, &self.host, &self.ident, self.pid, msg)
            }
        };
        datagram
    }

    /// Holds one message to go out with the next ones: [`Syslog::flush`], a full batch
    /// (BATCH lines) or the next [`Syslog::send`] sends them, in order. What syslog
    /// does not take is counted ([`Syslog::take_unsent`]). Without a syslog socket the
    /// message goes to stderr at once, within STDERR_EVENT_BYTES (counted beyond it).
    pub fn hold(&mut self, severity: Severity, msg: &str) {
        if self.sock.is_none() {
            self.flush();
            let datagram = self.framed(severity, msg);
            let sent = match self.deliver(datagram.as_bytes()) {
                Sent::Stderr => self.event_to_stderr(datagram.as_bytes()),
                sent => sent,
            };
            if sent == Sent::Unsent {
                self.unsent_held += 1;
            }
            return;
        }
        let datagram = self.framed(severity, msg);
        self.held.extend_from_slice(datagram.as_bytes());
        let _ = self.held_ends.push(self.held.len()); // room: flushed when full
        if self.held_ends.is_full() {
            self.flush();
        }
    }

    /// Sends the held messages (`sendmmsg`; a full queue waits as `send` does, within
    /// the same budget). A held line syslog does not take is counted as unsent.
    pub fn flush(&mut self) {
        if self.held_ends.is_empty() {
            return;
        }
        let held = core::mem::take(&mut self.held);
        let ends = core::mem::take(&mut self.held_ends);
        let lines: heapless::Vec<&[u8], BATCH> =
            ends.iter().scan(0, |start, &end| Some(&held[core::mem::replace(start, end)..end])).collect();
        let mut done = 0;
        // As with `send`, each line may wait for room once: a refill of microseconds
        // must not keep a stuck daemon's flush going forever.
        let mut waits = lines.len();
        while done < lines.len() {
            let Some(sock) = &self.sock else { break };
            let iovs: heapless::Vec<[io::IoSlice<'_>; 1], BATCH> =
                lines[done..].iter().map(|l| [io::IoSlice::new(l)]).collect();
            let mut controls: heapless::Vec<rustix::net::SendAncillaryBuffer<'_, '_, '_>, BATCH> =
                iovs.iter().map(|_| Default::default()).collect();
            let mut msgs: heapless::Vec<rustix::net::MMsgHdr<'_>, BATCH> =
                iovs.iter().zip(controls.iter_mut()).map(|(iov, c)| rustix::net::MMsgHdr::new(iov, c)).collect();
            match rustix::net::sendmmsg(sock, &mut msgs, rustix::net::SendFlags::DONTWAIT) {
                Ok(n) if n > 0 => done += n,
                Err(rustix::io::Errno::AGAIN) => {
                    // Syslog's queue is full: wait for room, as long as the budget allows.
                    let start = now_us();
                    let allowance = self.budget.allowance(start);
                    if allowance < MIN_WAIT_US || waits == 0 {
                        break;
                    }
                    waits -= 1;
                    wait_writable(sock, allowance);
                    self.budget.spend(now_us().saturating_sub(start).max(1));
                }
                // Anything else (the daemon restarted?): line by line, which reconnects.
                _ => {
                    for line in &lines[done..] {
                        let sent = match self.deliver(line) {
                            Sent::Stderr => self.event_to_stderr(line),
                            sent => sent,
                        };
                        if sent == Sent::Unsent {
                            self.unsent_held += 1;
                        }
                    }
                    done = lines.len();
                }
            }
        }
        self.unsent_held += (lines.len() - done) as u64;
        drop(lines);
        // Keep the allocation for the next batch.
        let mut held = held;
        held.clear();
        self.held = held;
    }

    /// Whether a syslog socket took the last message (else stderr is used).
    pub fn connected(&self) -> bool {
        self.sock.is_some()
    }

    /// Held lines syslog did not take, since the last call.
    pub fn take_unsent(&mut self) -> u64 {
        core::mem::take(&mut self.unsent_held)
    }

    /// Sends one message, timestamped now, without blocking (see LINE_WAIT_MS). On a
    /// send error other than a full queue it reconnects once (the daemon may have
    /// restarted); without a syslog socket the message goes to stderr.
    pub fn send(&mut self, severity: Severity, msg: &str) -> Sent {
        self.flush(); // what was held goes first
        let datagram = self.framed(severity, msg);
        let sent = self.deliver(datagram.as_bytes());
        if sent == Sent::Stderr {
            let _ = writeln!(io::stderr().lock(), "{datagram}");
        }
        sent
    }

    /// Sends `bytes` to the syslog socket, reconnecting once.
    fn deliver(&mut self, bytes: &[u8]) -> Sent {
        if let Some(sock) = &self.sock {
            match sock.send(bytes) {
                Ok(_) => return Sent::Syslog,
                // The daemon is there but has not drained its queue: a new
                // connection would not help.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return self.wait_and_retry(bytes),
                Err(_) => {}
            }
        }
        self.sock = connect(&self.path);
        match self.sock.as_ref().map(|sock| sock.send(bytes)) {
            Some(Ok(_)) => Sent::Syslog,
            Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => self.wait_and_retry(bytes),
            _ => Sent::Stderr,
        }
    }

    /// The queue is full: waits for room as long as the budget allows, tries once
    /// more, and otherwise gives the message up.
    fn wait_and_retry(&mut self, bytes: &[u8]) -> Sent {
        let Some(sock) = &self.sock else { return Sent::Unsent };
        let start = now_us();
        let allowance = self.budget.allowance(start);
        if allowance >= MIN_WAIT_US {
            wait_writable(sock, allowance);
            self.budget.spend(now_us().saturating_sub(start).max(1));
        }
        match sock.send(bytes) {
            Ok(_) => Sent::Syslog,
            Err(_) => Sent::Unsent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::scratch::TempDir;

    fn framed(facility: Facility, severity: Severity, secs: i64, msg: &str) -> String {
        let mut s = String::new();
        frame(&mut s, facility, severity, secs, "enforce", 42, msg).unwrap();
        s
    }

    fn stamp(secs: i64) -> String {
        let s = framed(Facility::Daemon, Severity::Info, secs, "");
        s["<30>".len()..s.find(" enforce[").unwrap()].to_owned()
    }

    #[test]
    fn timestamps() {
        for (secs, want) in [
            (0, "Jan  1 00:00:00"),
            (1_700_000_000, "Nov 14 22:13:20"),
            (1_709_208_000, "Feb 29 12:00:00"), // leap day 2024
            (1_709_251_200, "Mar  1 00:00:00"),
            (951_782_400, "Feb 29 00:00:00"),   // 2000 is a leap year
            (4_107_542_400, "Mar  1 00:00:00"), // 2100 is not
            (946_684_799, "Dec 31 23:59:59"),
            (2_147_483_648, "Jan 19 03:14:08"), // past 32-bit time_t
            (-1, "Dec 31 23:59:59"),
            (-2_203_891_200, "Mar  1 00:00:00"), // 1900
        ] {
            assert_eq!(stamp(secs), want, "{secs}");
        }
        // Anything goes without a panic.
        for secs in [i64::MIN, i64::MIN + 1, i64::MAX, -86_400 * 146_097 * 3 - 1] {
            assert_eq!(stamp(secs).len(), "Jan  1 00:00:00".len());
        }
    }

    #[test]
    fn dates_match_a_day_by_day_count() {
        let lengths = |year: i64| {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        };
        let mut days = 0i64;
        for year in 1970..2400 {
            for (month, &len) in lengths(year).iter().enumerate() {
                for day in 1..=len {
                    assert_eq!(civil(days), (year, month + 1, day), "{year}-{}-{day}", month + 1);
                    days += 1;
                }
            }
        }
    }

    #[test]
    fn the_offset_is_asked_once_a_second() {
        let cache = core::cell::Cell::new(Some((1_700_000_000, 9 * 3600)));
        assert_eq!(local_secs(1_700_000_000, &cache), 1_700_000_000 + 9 * 3600, "from the cache");
        let asked = local_secs(1_700_000_001, &cache);
        assert_eq!(cache.get(), Some((1_700_000_001, asked - 1_700_000_001)), "asked and kept");
    }

    #[test]
    fn rfc5424_frames_with_the_year_and_the_offset() {
        let f = |secs, offset, host| {
            let mut s = String::new();
            frame_5424(&mut s, Facility::Daemon, Severity::Warning, secs, offset, host, "enforce", 42, "denied\nx").unwrap();
            s
        };
        assert_eq!(f(1_700_000_000, 0, "dev"), "<28>1 2023-11-14T22:13:20+00:00 dev enforce 42 - - denied x");
        assert_eq!(f(1_700_000_000, 9 * 3600, "dev"), "<28>1 2023-11-15T07:13:20+09:00 dev enforce 42 - - denied x");
        assert_eq!(f(1_700_000_000, -(5 * 3600 + 30 * 60), ""), "<28>1 2023-11-14T16:43:20-05:30 - enforce 42 - - denied x");
        assert_eq!(f(951_782_400, 0, "h"), "<28>1 2000-02-29T00:00:00+00:00 h enforce 42 - - denied x");
        assert_eq!(f(0, -3600, "h"), "<28>1 1969-12-31T23:00:00-01:00 h enforce 42 - - denied x");
    }

    #[test]
    fn years() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(-1), (1969, 12, 31));
        assert_eq!(civil(19_416), (2023, 2, 28));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(47_541), (2100, 3, 1));
    }

    #[test]
    fn pri_values() {
        assert!(framed(Facility::Daemon, Severity::Warning, 0, "x").starts_with("<28>Jan  1 "));
        assert!(framed(Facility::Auth, Severity::Err, 0, "x").starts_with("<35>"));
        assert!(framed(Facility::Local7, Severity::Info, 0, "x").starts_with("<190>"));
        assert!(framed(Facility::Kern, Severity::Err, 0, "x").starts_with("<3>"));
        assert!(framed(Facility::User, Severity::Notice, 0, "x").starts_with("<13>"));
    }

    #[test]
    fn whole_message() {
        assert_eq!(
            framed(Facility::Daemon, Severity::Warning, 1_700_000_000, "denied class=open"),
            "<28>Nov 14 22:13:20 enforce[42]: denied class=open"
        );
    }

    #[test]
    fn control_characters_become_spaces() {
        assert!(framed(Facility::Daemon, Severity::Info, 0, "a\nb\r\nc\td\0e\u{1b}f").ends_with("]: a b  c d e f"));
        assert!(framed(Facility::Daemon, Severity::Info, 0, "é ünï").ends_with("]: é ünï"));
    }

    #[test]
    fn truncation() {
        let mut buf = heapless::String::<MAX_DATAGRAM>::new();
        let msg = "x".repeat(2000);
        frame(&mut Truncating { buf: &mut buf, full: false }, Facility::Daemon, Severity::Info, 0, "enforce", 1, &msg)
            .unwrap();
        assert_eq!(buf.len(), MAX_DATAGRAM);
        assert!(buf.starts_with("<30>Jan  1 00:00:00 enforce[1]: xxx"));

        // Multi-byte characters are never split, and nothing follows the cut.
        let mut buf = heapless::String::<8>::new();
        let mut t = Truncating { buf: &mut buf, full: false };
        t.write_str("abcdefé").unwrap();
        t.write_str("z").unwrap();
        assert_eq!(buf.as_str(), "abcdefé");
        let mut buf = heapless::String::<8>::new();
        let mut t = Truncating { buf: &mut buf, full: false };
        t.write_str("abcdefgé").unwrap();
        t.write_str("z").unwrap();
        assert_eq!(buf.as_str(), "abcdefg");
    }

    fn recv(server: &UnixDatagram) -> String {
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 2 * MAX_DATAGRAM];
        let n = server.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_to_a_socket_and_reconnects() {
        let dir = TempDir::new("syslog-send");
        let path = dir.0.join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let mut log = Syslog::open(&path, Facility::Auth, "my-ident");
        assert!(log.sock.is_some());
        log.send(Severity::Warning, "denied class=open\nsecond line");
        let got = recv(&server);
        assert!(got.starts_with("<36>"), "{got}");
        assert!(got.ends_with(&format!(" my-ident[{}]: denied class=open second line", std::process::id())), "{got}");

        let long = "y".repeat(3 * MAX_DATAGRAM);
        log.send(Severity::Info, &long);
        assert_eq!(recv(&server).len(), MAX_DATAGRAM);

        // The daemon restarts: a new socket at the same path.
        drop(server);
        std::fs::remove_file(&path).unwrap();
        let server = UnixDatagram::bind(&path).unwrap();
        log.send(Severity::Notice, "after restart");
        assert!(recv(&server).ends_with("]: after restart"));
    }

    #[test]
    fn held_lines_go_out_in_order_in_batches() {
        let dir = TempDir::new("syslog-held");
        let path = dir.0.join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        server.set_read_timeout(Some(std::time::Duration::from_millis(200))).unwrap();
        let mut log = Syslog::open(&path, Facility::Daemon, "enforce");
        // Fewer than a batch: nothing is sent until a flush, or a send, which goes after them.
        for i in 0..3 {
            log.hold(Severity::Warning, &format!("held {i}"));
        }
        let mut buf = [0u8; 16];
        assert!(server.recv(&mut buf).is_err(), "held lines are not sent yet");
        log.send(Severity::Info, "lifecycle");
        for want in ["held 0", "held 1", "held 2", "lifecycle"] {
            assert!(recv(&server).ends_with(&format!("]: {want}")), "{want}");
        }
        // A full batch goes out by itself (the queue of 10 drains as we read).
        let reader = std::thread::spawn(move || (0..BATCH + 2).map(|_| recv(&server)).collect::<Vec<_>>());
        for i in 0..BATCH + 2 {
            log.hold(Severity::Notice, &format!("event {i}\nwith a newline"));
        }
        log.flush();
        let got = reader.join().unwrap();
        for (i, line) in got.iter().enumerate() {
            assert!(line.ends_with(&format!("]: event {i} with a newline")), "{line}");
        }
        assert_eq!(log.take_unsent(), 0);
    }

    #[test]
    fn held_lines_a_stuck_daemon_does_not_take_are_counted() {
        let dir = TempDir::new("syslog-held-stuck");
        let path = dir.0.join("log");
        let _server = stuck_server(&path);
        let mut log = Syslog::open(&path, Facility::Daemon, "enforce");
        let start = std::time::Instant::now();
        for i in 0..2000 {
            log.hold(Severity::Warning, &format!("event {i}"));
        }
        log.flush();
        assert_eq!(log.take_unsent(), 2000);
        assert_eq!(log.take_unsent(), 0, "taken");
        let took = start.elapsed();
        assert!(took < std::time::Duration::from_millis(1000), "2000 held lines to a stuck syslog took {took:?}");
    }

    #[test]
    fn falls_back_to_stderr_and_picks_up_a_late_daemon() {
        let dir = TempDir::new("syslog-fallback");
        let path = dir.0.join("log");
        let mut log = Syslog::open(&path, Facility::Daemon, "enforce");
        assert!(log.sock.is_none());
        assert_eq!(log.send(Severity::Info, "to stderr"), Sent::Stderr); // must not panic or block
        assert!(log.sock.is_none());

        let server = UnixDatagram::bind(&path).unwrap();
        log.send(Severity::Info, "now to syslog");
        assert!(recv(&server).ends_with("]: now to syslog"));
        assert!(log.sock.is_some());
    }

    #[test]
    fn event_lines_to_stderr_are_capped_and_the_rest_counted() {
        let dir = TempDir::new("syslog-stderr-cap");
        let path = dir.0.join("log");
        let mut log = Syslog::open(&path, Facility::Daemon, "enforce");
        assert_eq!(log.stderr_left, STDERR_EVENT_BYTES);
        let line = "x".repeat(100);
        let framed = log.framed(Severity::Warning, &line).len() as u64 + 1;
        log.stderr_left = 2 * framed + framed / 2;
        for _ in 0..5 {
            log.hold(Severity::Warning, &line);
        }
        assert_eq!(log.take_unsent(), 3, "two lines fit, three are counted");
        assert!(log.stderr_cut);
        assert!(log.stderr_left < framed);
        // Lifecycle lines are not capped.
        assert_eq!(log.send(Severity::Info, "stopped: denied=5"), Sent::Stderr);
        // A daemon that comes back takes event lines again.
        let server = UnixDatagram::bind(&path).unwrap();
        log.hold(Severity::Warning, "to syslog again");
        log.flush();
        assert!(recv(&server).ends_with("]: to syslog again"));
        assert_eq!(log.take_unsent(), 0);
    }

    #[test]
    fn wait_budget() {
        // In microseconds: 1 ms = 1000.
        let (line, budget) = (LINE_WAIT_MS * 1000, WAIT_BUDGET_MS * 1000);
        let mut b = WaitBudget::new(1_000_000);
        assert_eq!(b.allowance(1_000_000), line);
        for _ in 0..WAIT_BUDGET_MS / LINE_WAIT_MS {
            assert_eq!(b.allowance(1_000_000), line);
            b.spend(line);
        }
        assert_eq!(b.allowance(1_000_000), 0, "the budget is spent");
        assert_eq!(b.allowance(1_000_004), 0, "less than a microsecond refilled");
        assert_eq!(b.allowance(1_050_000), 10_000, "50 ms later: 10 ms more");
        b.spend(10_000);
        assert_eq!(b.allowance(1_050_000), 0);
        assert_eq!(b.allowance(1_050_100), 20, "100 us later: 20 us more");
        b.spend(7);
        assert_eq!(b.allowance(1_050_100), 13, "a wait of microseconds costs microseconds");
        assert_eq!(b.allowance(11_000_000), line, "refilled");
        b.spend(3);
        assert_eq!(b.allowance(1_000_000_000), line);
        assert_eq!(b.left_us, budget, "never more than the bucket");
        // A clock that goes backwards refills nothing and never panics.
        assert_eq!(b.allowance(5), line);
        b.spend(u64::MAX);
        assert_eq!(b.allowance(u64::MAX), line);
    }

    /// A bound socket that never reads, with its queue filled.
    fn stuck_server(path: &Path) -> UnixDatagram {
        let server = UnixDatagram::bind(path).unwrap();
        let filler = UnixDatagram::unbound().unwrap();
        filler.connect(path).unwrap();
        filler.set_nonblocking(true).unwrap();
        while filler.send(b"filler").is_ok() {}
        server
    }

    #[test]
    fn a_stuck_daemon_costs_a_bounded_time_and_nothing_goes_to_stderr() {
        let dir = TempDir::new("syslog-stuck");
        let path = dir.0.join("log");
        let _server = stuck_server(&path);
        let mut log = Syslog::open(&path, Facility::Daemon, "enforce");
        let start = std::time::Instant::now();
        for i in 0..2000 {
            assert_eq!(log.send(Severity::Warning, &format!("event {i}")), Sent::Unsent);
        }
        let took = start.elapsed();
        // The wait budget (200 ms, refilled at 200 ms/s) bounds it; allow for a slow machine.
        assert!(took < std::time::Duration::from_millis(1000), "2000 sends to a stuck syslog took {took:?}");
    }

    #[test]
    fn a_slow_daemon_gets_a_moment_to_catch_up() {
        let dir = TempDir::new("syslog-slow");
        let path = dir.0.join("log");
        let server = stuck_server(&path);
        let mut log = Syslog::open(&path, Facility::Daemon, "enforce");
        // The daemon starts reading the full queue as the sends begin: each send finds
        // the queue full and waits for the room the reader makes. (Sends start once the
        // reader runs: how soon a thread is first scheduled is not what this tests.)
        let (running, started) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 2 * MAX_DATAGRAM];
            let mut got = Vec::new();
            server.set_read_timeout(Some(std::time::Duration::from_millis(500))).unwrap();
            while let Ok(n) = server.recv(&mut buf) {
                if got.is_empty() {
                    running.send(()).unwrap();
                }
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            got
        });
        started.recv().unwrap();
        let sent: Vec<Sent> = (0..20).map(|i| log.send(Severity::Notice, &format!("slow {i}"))).collect();
        assert_eq!(sent, [Sent::Syslog; 20]);
        let got = reader.join().unwrap();
        assert!(got.iter().any(|m| m.ends_with("]: slow 19")), "{got:?}");
    }

    #[test]
    fn long_ident_is_cut() {
        let log = Syslog::open(Path::new("/nonexistent/log"), Facility::Daemon, &"i".repeat(100));
        assert_eq!(log.ident.len(), MAX_IDENT_LEN);
    }
}
