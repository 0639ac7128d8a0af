//! Where events go after the ring buffer: the coalescer (`coalesce.rs`) decides which
//! become their own syslog line and which are counted into a summary line; syslog
//! never stalls the agent (`syslog.rs` sends without blocking). A line syslog would
//! not take is counted as unsent, reported at most every REPORT_EVERY_MS while the
//! count grows, and totalled in the `stopped:` line with the other totals:
//! `logged + coalesced` is every event received, once [`EventLog::flush`] has run.

use core::fmt::Write as _;

use crate::coalesce::{Coalescer, Limits, Line};
use crate::config::Policy;
use crate::events::Action;
use crate::syslog::{self, Sent, Severity, Syslog};

/// How often, at most, the growing unsent count is reported.
pub const REPORT_EVERY_MS: u64 = 10_000;
/// The same when no syslog listens: the report goes to stderr only, whose file
/// nothing rotates while the agent runs.
pub const STDERR_REPORT_EVERY_MS: u64 = 600_000;

/// The coalescing limits a policy asks for.
pub fn limits(policy: &Policy) -> Limits {
    Limits {
        window_ms: u64::from(policy.coalesce_window) * 1000,
        burst: policy.coalesce_burst,
        rate: policy.log_rate,
    }
}

/// The event sink: coalescing, syslog, and the totals of what became of each event.
pub struct EventLog {
    /// Lifecycle lines (attached, reloaded, stopped) go straight to it.
    pub syslog: Syslog,
    coalescer: Coalescer,
    /// Event and summary lines syslog did not take (its queue stayed full): lost,
    /// counted.
    pub unsent: u64,
    reported_unsent: u64,
    reported_at_ms: Option<u64>,
}

/// Writes one line of the coalescer: events and repeats at the event's severity
/// (denials warning, audits notice).
fn write(syslog: &mut Syslog, policy: &Policy, line: Line<'_>) {
    let mut text = heapless::String::<1280>::new();
    let severity = match line {
        Line::Event(ev) => {
            let _ = write!(text, "{}", line_of(policy, ev));
            ev.action
        }
        Line::Repeated(ev, n) => {
            let _ = write!(text, "{} repeated={n}", line_of(policy, ev));
            ev.action
        }
        Line::Overflow { denied, audited, rate } => {
            let _ = write!(text, "not logged one by one (over log_rate={rate}/s): denied={denied} audited={audited}");
            if denied > 0 {
                Action::Denied
            } else {
                Action::Audited
            }
        }
    };
    let severity = if severity == Action::Denied { Severity::Warning } else { Severity::Notice };
    // Held and sent in batches; the lines syslog does not take are counted at the flush.
    syslog.hold(severity, &text);
}

/// An event's line with what the policy adds: the configured path of the file rule it
/// matched, or the config line of the exec policy that denied it.
fn line_of<'a>(policy: &'a Policy, ev: &'a crate::events::Event) -> crate::events::Line<'a> {
    use crate::events::{Object, Reason};
    let (path, rule) = match (ev.reason, ev.object) {
        (Reason::Rule, Object::File { .. } | Object::Name) => (policy.rule_path(ev.class, ev.rule), None),
        (Reason::Rule, _) => (None, None),
        (Reason::Untrusted, _) => (None, policy.allow_exec_from.first().map(|r| r.line)),
        (Reason::Anon, _) => (None, policy.allow_anon_exec),
        (Reason::Unreadable | Reason::Shared, _) => (None, policy.first_rule_line(ev.class)),
    };
    crate::events::Line { event: ev, path, rule }
}

impl EventLog {
    pub fn new(syslog: Syslog, limits: Limits) -> EventLog {
        EventLog {
            syslog,
            coalescer: Coalescer::new(limits, syslog::now_ms()),
            unsent: 0,
            reported_unsent: 0,
            reported_at_ms: None,
        }
    }

    /// One event from the ring buffer; `policy` names the paths of its rules.
    pub fn event(&mut self, ev: &crate::events::Event, policy: &Policy) {
        if ev.action == Action::Unlinked {
            // Rare, and each one changes what the agent watches: never coalesced.
            self.notice(format_args!("{}", line_of(policy, ev)));
            return;
        }
        let EventLog { syslog, coalescer, .. } = self;
        coalescer.offer(ev, syslog::now_ms(), &mut |line| write(syslog, policy, line));
    }

    /// A line of the agent's own about the policy (a rule it moved to a replaced
    /// file), at notice; counted as unsent when syslog does not take it.
    pub fn notice(&mut self, line: core::fmt::Arguments<'_>) {
        let mut text = heapless::String::<1280>::new();
        let _ = text.write_fmt(line);
        if self.syslog.send(Severity::Notice, &text) == Sent::Unsent {
            self.unsent += 1;
        }
    }

    /// Periodic work, called after every ring-buffer wait: summaries of ended
    /// windows, and a report of a grown unsent count.
    pub fn tick(&mut self, policy: &Policy) {
        let now = syslog::now_ms();
        let EventLog { syslog, coalescer, .. } = self;
        coalescer.tick(now, &mut |line| write(syslog, policy, line));
        self.send_held();
        let connected = self.syslog.connected();
        let (why, every) = if connected {
            ("syslog is not keeping up", REPORT_EVERY_MS)
        } else {
            ("no syslog listens and stderr has taken its share of event lines", STDERR_REPORT_EVERY_MS)
        };
        if let Some(line) = self.unsent_report(now, why, every) {
            log::warn!("{line}");
            if connected {
                let _ = self.syslog.send(Severity::Warning, &line);
            }
        }
    }

    /// Writes every pending summary line (at stop, before the totals; at a reload,
    /// with the replaced policy's paths).
    pub fn flush(&mut self, policy: &Policy) {
        let EventLog { syslog, coalescer, .. } = self;
        coalescer.flush(&mut |line| write(syslog, policy, line));
        self.send_held();
    }

    /// Sends the held event lines and counts what syslog did not take.
    fn send_held(&mut self) {
        self.syslog.flush();
        self.unsent += self.syslog.take_unsent();
    }

    /// The unsent report due at `now_ms`, if one is (at most every `every_ms`), giving
    /// `why`.
    fn unsent_report(&mut self, now_ms: u64, why: &str, every_ms: u64) -> Option<String> {
        let due = self.reported_at_ms.is_none_or(|at| now_ms.saturating_sub(at) >= every_ms);
        if self.unsent == self.reported_unsent || !due {
            return None;
        }
        let new = self.unsent - self.reported_unsent;
        self.reported_unsent = self.unsent;
        self.reported_at_ms = Some(now_ms);
        Some(format!("{why}: {new} more lines not written ({} since start)", self.unsent))
    }

    /// The totals for the `stopped:` line: ` logged=N coalesced=N unsent=N` (after
    /// [`EventLog::flush`], which sends what is held).
    pub fn totals(&self) -> String {
        format!(" logged={} coalesced={} unsent={}", self.coalescer.logged, self.coalescer.coalesced, self.unsent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Facility;
    use std::path::Path;

    fn sink() -> EventLog {
        let limits = Limits { window_ms: 10_000, burst: 5, rate: 100 };
        EventLog::new(Syslog::open(Path::new("/nonexistent/enforce-log"), Facility::Daemon, "t"), limits)
    }

    const W: &str = "syslog is not keeping up";

    #[test]
    fn unsent_is_reported_when_it_grows_at_most_every_ten_seconds() {
        let mut s = sink();
        assert_eq!(s.unsent_report(0, W, REPORT_EVERY_MS), None, "nothing unsent");
        s.unsent = 3;
        assert_eq!(s.unsent_report(1000, W, REPORT_EVERY_MS).as_deref(), Some("syslog is not keeping up: 3 more lines not written (3 since start)"));
        s.unsent = 5;
        assert_eq!(s.unsent_report(1000 + REPORT_EVERY_MS - 1, W, REPORT_EVERY_MS), None, "too soon");
        assert_eq!(s.unsent_report(1000 + REPORT_EVERY_MS, W, REPORT_EVERY_MS).as_deref(), Some("syslog is not keeping up: 2 more lines not written (5 since start)"));
        assert_eq!(s.unsent_report(1_000_000, W, REPORT_EVERY_MS), None, "no change, no report");
        s.unsent = 6;
        assert!(s.unsent_report(1_000_000, W, REPORT_EVERY_MS).is_some());
        assert_eq!(s.totals(), " logged=0 coalesced=0 unsent=6");
    }
}
