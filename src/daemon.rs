//! The running agent: block on the ring buffer, turn each record into one syslog
//! line, until SIGTERM/SIGINT (stop) or SIGHUP (reload). Lost records are counted by
//! the kernel side and reported here, so a full ring buffer is never silent.

use core::cell::RefCell;
use core::sync::atomic::Ordering;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use crate::abi;
use crate::bpf::{self, Requests, RingBuffer};
use crate::config::Policy;
use crate::events::{self, Action, Line, Object};
use crate::follow::Watcher;
use crate::gate::Enforcement;
use crate::ladder::Class;
use crate::maps::Counters;
use crate::syslog::{Severity, Syslog};

/// How long one wait on the ring buffer lasts; bounds how late a stop request (that
/// raced with the start of a wait) and the drop counter are noticed.
const POLL_MS: i32 = 1000;

/// Why the loop returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Stop,
    Reload,
}

/// Reads only the lost-events counter: all the poll loop needs.
fn dropped(enf: &Enforcement) -> Result<u64, bpf::Error> {
    enf.maps.map(c"counters")?.sum_percpu_u64(abi::COUNTER_DROPPED)
}

/// Warns about events lost since the last warning.
fn warn_lost(seen: &mut u64, now: u64) {
    if now > *seen {
        log::warn!("{} events lost: the ring buffer was full (raise ringbuf_size)", now - *seen);
        *seen = now;
    }
}

/// The configured path of the file rule on config line `rule`, for the event line.
fn rule_path(policy: &Policy, class: Class, rule: u32) -> Option<&str> {
    let rules = match class {
        Class::Open => &policy.open[..],
        Class::Exec => &policy.exec[..],
        Class::Connect => return None,
    };
    rules.iter().find(|r| r.line == rule).map(|r| r.path.as_str())
}

/// Writes one event to syslog. Canary events are the agent's own self-test.
fn deliver(record: &[u8], policy: &Policy, log: &mut Syslog) {
    match events::decode(record) {
        Ok(ev) if ev.rule == abi::RULE_CANARY => log::debug!("canary event: {ev}"),
        Ok(ev) => {
            let severity = if ev.action == Action::Denied { Severity::Warning } else { Severity::Notice };
            let path = match ev.object {
                Object::File { .. } => rule_path(policy, ev.class, ev.rule),
                Object::Net { .. } => None,
            };
            let mut line = heapless::String::<1280>::new();
            let _ = core::fmt::write(&mut line, format_args!("{}", Line { event: &ev, path }));
            log.send(severity, &line);
        }
        Err(e) => log::warn!("undecodable ring buffer record ({} bytes): {e:?}", record.len()),
    }
}

/// Blocks until a stop or reload is requested, delivering events and following
/// replaced files. The caller then retires the enforcement (or keeps it after a failed
/// reload).
pub fn run(enf: &Enforcement, policy: &Policy, log: &mut Syslog, requests: &Requests) -> Result<Ending, bpf::Error> {
    let log = RefCell::new(log);
    let events_map = enf.maps.map(c"events")?;
    let mut seen_dropped = dropped(enf)?;
    let mut watcher = Watcher::new(policy, &enf.maps, enf.follow_in_kernel)
        .map_err(|errno| bpf::Error { op: "watch", what: "rule directories", errno })?;
    let mut rb = RingBuffer::new(&events_map, |record| deliver(record, policy, &mut log.borrow_mut()))?;
    let wait = Timespec { tv_sec: i64::from(POLL_MS / 1000), tv_nsec: 0 };
    let ending = loop {
        if requests.stop.load(Ordering::SeqCst) {
            break Ending::Stop;
        }
        if requests.reload.swap(false, Ordering::SeqCst) {
            break Ending::Reload;
        }
        let (events_fd, watch_fd) = (rb.epoll_fd(), watcher.fd());
        let mut fds = [PollFd::from_borrowed_fd(events_fd, PollFlags::IN), PollFd::from_borrowed_fd(watch_fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&wait)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(bpf::Error { op: "poll", what: "events", errno: e }),
        }
        let moved = !fds[1].revents().is_empty();
        rb.consume().map_err(|errno| bpf::Error { op: "consume", what: "events", errno })?;
        if moved {
            for f in watcher.handle(&enf.maps) {
                let line = events::AgentFollowed { class: f.class, key: f.key, path: f.rule.path.as_str(), rule: f.rule.line };
                let mut text = heapless::String::<1280>::new();
                let _ = core::fmt::write(&mut text, format_args!("{line}"));
                log.borrow_mut().send(Severity::Notice, &text);
            }
        }
        watcher.tick(&enf.maps);
        warn_lost(&mut seen_dropped, dropped(enf)?);
    };
    drop(rb);
    warn_lost(&mut seen_dropped, dropped(enf)?);
    Ok(ending)
}

/// Retires an enforcement: detaches every tier, delivers the events raised up to that
/// moment (the consumer position lives in the map, so this continues where `run`
/// stopped), and returns the final counters. The maps close when it is dropped.
pub fn retire(mut enf: Enforcement, policy: &Policy, log: &mut Syslog) -> Result<Counters, bpf::Error> {
    for tier in &mut enf.tiers {
        tier.detach_all();
    }
    let events_map = enf.maps.map(c"events")?;
    let mut rb = RingBuffer::new(&events_map, |record| deliver(record, policy, log))?;
    let _ = rb.consume();
    drop(rb);
    enf.maps.counters()
}
