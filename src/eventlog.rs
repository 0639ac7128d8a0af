//! Where events go after the ring buffer: one syslog line each, counted. Syslog never
//! stalls the agent (`syslog.rs` sends without blocking): an event line syslog would
//! not take is counted as unsent, reported at most every REPORT_EVERY_MS while the
//! count grows, and totalled in the `stopped:` line.

use core::fmt::Write as _;

use crate::events::{Action, Event};
use crate::syslog::{self, Sent, Severity, Syslog};

/// How often, at most, the growing unsent count is reported.
pub const REPORT_EVERY_MS: u64 = 10_000;

/// The event sink: syslog and the totals of what became of each event.
pub struct EventLog {
    /// Lifecycle lines (attached, reloaded, stopped) go straight to it.
    pub syslog: Syslog,
    /// Event lines written (or attempted: see `unsent`).
    pub logged: u64,
    /// Event lines syslog did not take (its queue stayed full): lost, counted.
    pub unsent: u64,
    reported_unsent: u64,
    reported_at_ms: Option<u64>,
}

impl EventLog {
    pub fn new(syslog: Syslog) -> EventLog {
        EventLog { syslog, logged: 0, unsent: 0, reported_unsent: 0, reported_at_ms: None }
    }

    /// Writes one event: denials at warning, audits at notice.
    pub fn event(&mut self, ev: &Event) {
        let severity = if ev.action == Action::Denied { Severity::Warning } else { Severity::Notice };
        let mut line = heapless::String::<256>::new();
        let _ = write!(line, "{ev}");
        self.logged += 1;
        if self.syslog.send(severity, &line) == Sent::Unsent {
            self.unsent += 1;
        }
    }

    /// Periodic work, called after every ring-buffer wait: reports a grown unsent count.
    pub fn tick(&mut self) {
        self.tick_at(syslog::now_ms());
    }

    fn tick_at(&mut self, now_ms: u64) {
        if let Some(line) = self.unsent_report(now_ms) {
            log::warn!("{line}");
            let _ = self.syslog.send(Severity::Warning, &line);
        }
    }

    /// The unsent report due at `now_ms`, if one is.
    fn unsent_report(&mut self, now_ms: u64) -> Option<String> {
        let due = self.reported_at_ms.is_none_or(|at| now_ms.saturating_sub(at) >= REPORT_EVERY_MS);
        if self.unsent == self.reported_unsent || !due {
            return None;
        }
        let new = self.unsent - self.reported_unsent;
        self.reported_unsent = self.unsent;
        self.reported_at_ms = Some(now_ms);
        Some(format!(
            "syslog is not keeping up: {new} more event lines not written ({} since start)",
            self.unsent
        ))
    }

    /// The totals for the `stopped:` line: ` logged=N unsent=N`.
    pub fn totals(&self) -> String {
        format!(" logged={} unsent={}", self.logged, self.unsent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Facility;
    use std::path::Path;

    fn sink() -> EventLog {
        EventLog::new(Syslog::open(Path::new("/nonexistent/enforce-log"), Facility::Daemon, "t"))
    }

    #[test]
    fn unsent_is_reported_when_it_grows_at_most_every_ten_seconds() {
        let mut s = sink();
        assert_eq!(s.unsent_report(0), None, "nothing unsent");
        s.unsent = 3;
        assert_eq!(s.unsent_report(1000).as_deref(), Some("syslog is not keeping up: 3 more event lines not written (3 since start)"));
        s.unsent = 5;
        assert_eq!(s.unsent_report(1000 + REPORT_EVERY_MS - 1), None, "too soon");
        assert_eq!(s.unsent_report(1000 + REPORT_EVERY_MS).as_deref(), Some("syslog is not keeping up: 2 more event lines not written (5 since start)"));
        assert_eq!(s.unsent_report(1_000_000), None, "no change, no report");
        s.unsent = 6;
        assert!(s.unsent_report(1_000_000).is_some());
        assert_eq!(s.totals(), " logged=0 unsent=6");
    }
}
