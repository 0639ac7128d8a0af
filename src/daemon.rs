//! The running agent: block on the ring buffer, turn each record into one syslog
//! line, until SIGTERM/SIGINT/SIGQUIT (stop) or SIGHUP (reload); SIGUSR1 asks for a
//! `stats:` line on the way. Lost records are counted by
//! the kernel side and reported here, so a full ring buffer is never silent.

use core::cell::RefCell;
use core::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use crate::abi::{self, InodeKey};
use crate::bpf::{self, Requests, RingBuffer};
use crate::config::Policy;
use crate::eventlog::EventLog;
use crate::events::{self, AgentFollowed};
use crate::follow::Watcher;
use crate::gate::Enforcement;
use crate::map_names::MapName;
use crate::maps::Counters;
use crate::pin::{self, Pinned};

/// How long one wait on the ring buffer lasts at most; bounds how late a stop request (that
/// raced with the start of a wait) and the drop counter are noticed.
const POLL: Duration = Duration::from_secs(1);

/// Records handed to the event log per wait. Between batches the loop answers stop
/// and reload requests: a kernel side producing as fast as the agent consumes (a
/// flood) would otherwise keep it consuming forever.
const BATCH: usize = 4096;

/// Why the loop returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Stop,
    Reload,
}

/// Reads only the lost-events counter: all the poll loop needs.
fn dropped(enf: &Enforcement) -> Result<u64, bpf::Error> {
    enf.maps.counter(abi::COUNTER_DROPPED)
}

/// Reads the counter of names denied files lost (see `follow.rs`).
fn unlinked(enf: &Enforcement) -> Result<u64, bpf::Error> {
    enf.maps.counter(abi::COUNTER_UNLINKED)
}

/// The `unlinked` reports of one wait: the inodes that lost names, deduplicated, and
/// how many reports there were.
#[derive(Default)]
struct LostNames {
    gone: heapless::Vec<InodeKey, 64>,
    reports: u64,
    /// More inodes than `gone` holds.
    overflow: bool,
}

/// Warns about events lost since the last warning.
fn warn_lost(seen: &mut u64, now: u64) {
    if now > *seen {
        log::warn!("{} events lost: the ring buffer was full (raise ringbuf_size)", now - *seen);
        *seen = now;
    }
}

/// Writes one event to syslog. Canary events are the agent's own self-test. Returns
/// the inode of an `unlinked` report, which the watcher must see.
fn deliver(record: &[u8], policy: &Policy, log: &mut EventLog) -> Option<InodeKey> {
    match events::decode(record) {
        Ok(ev) if ev.rule == abi::RULE_CANARY => log::debug!("canary event: {ev}"),
        Ok(ev) => {
            log.event(&ev, policy);
            if let (events::Action::Unlinked, events::Object::File { dev, ino }) = (ev.action, ev.object) {
                return Some(InodeKey { dev, ino });
            }
        }
        Err(e) => log::warn!("undecodable ring buffer record ({} bytes): {e:?}", record.len()),
    }
    None
}

/// Blocks until a stop or reload is requested, delivering events and following
/// replaced files, and calling `stats` at each SIGUSR1. The caller then retires the
/// enforcement (or keeps it after a failed reload).
pub fn run(
    enf: &Enforcement,
    policy: &Policy,
    log: &mut EventLog,
    requests: &Requests,
    stats: &mut dyn FnMut(&mut EventLog),
) -> Result<Ending, bpf::Error> {
    let events_map = enf.maps.events()?;
    let mut seen_dropped = dropped(enf)?;
    let mut seen_unlinked = unlinked(enf)?;
    let mut watcher = Watcher::new(policy, &enf.maps, enf.follow_in_kernel)
        .map_err(|errno| bpf::Error { op: "watch", what: "rule directories", errno })?;
    // The callback runs only inside `rb.consume`, so the loop's own borrows never overlap it.
    let sink = RefCell::new(log);
    let lost_names = RefCell::new(LostNames::default());
    let mut rb = RingBuffer::new(&events_map, |record| {
        if let Some(key) = deliver(record, policy, &mut sink.borrow_mut()) {
            let mut l = lost_names.borrow_mut();
            l.reports += 1;
            if !l.gone.contains(&key) && l.gone.push(key).is_err() {
                l.overflow = true;
            }
        }
    })?;
    let ending = loop {
        if requests.stop.load(Ordering::SeqCst) {
            break Ending::Stop;
        }
        if requests.reload.swap(false, Ordering::SeqCst) {
            break Ending::Reload;
        }
        if requests.stats.swap(false, Ordering::SeqCst) {
            stats(&mut sink.borrow_mut());
        }
        let (events_fd, watch_fd) = (rb.epoll_fd(), watcher.fd());
        let mut fds = [PollFd::from_borrowed_fd(events_fd, PollFlags::IN), PollFd::from_borrowed_fd(watch_fd, PollFlags::IN)];
        // No longer than the watcher's next look is due (its first look at once:
        // a file may have lost its name before the agent attached).
        let bound = watcher.due().map_or(POLL, |at| at.saturating_duration_since(Instant::now()).min(POLL));
        let wait = Timespec { tv_sec: bound.as_secs() as i64, tv_nsec: i64::from(bound.subsec_nanos()) };
        match rustix::event::poll(&mut fds, Some(&wait)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(bpf::Error { op: "poll", what: MapName::Events.as_str(), errno: e }),
        }
        let moved = !fds[1].revents().is_empty();
        rb.consume_n(BATCH).map_err(|errno| bpf::Error { op: "consume", what: MapName::Events.as_str(), errno })?;
        let mut followed = if moved { watcher.handle(&enf.maps) } else { heapless::Vec::new() };
        // Names lost: the counter also counts what no report reached us for (and may
        // count a report this consume came too early for: it is handled next time).
        let now_unlinked = unlinked(enf)?;
        if now_unlinked != seen_unlinked || lost_names.borrow().reports > 0 {
            let l = lost_names.take();
            let lost = l.overflow || now_unlinked.saturating_sub(seen_unlinked) > l.reports;
            seen_unlinked = now_unlinked;
            for f in watcher.lost_names(&l.gone, lost, &enf.maps) {
                let _ = followed.push(f); // a notice or two fewer; every rule moved
            }
        }
        for f in watcher.tick(&enf.maps) {
            let _ = followed.push(f);
        }
        for f in followed {
            let line = AgentFollowed { class: f.class, key: f.key, path: f.path, rule: f.rule.line };
            sink.borrow_mut().notice(format_args!("{line}"));
        }
        warn_lost(&mut seen_dropped, dropped(enf)?);
        sink.borrow_mut().tick(policy);
    };
    drop(rb);
    warn_lost(&mut seen_dropped, dropped(enf)?);
    Ok(ending)
}

/// Waits until no program of a detached generation can still be running: each runs
/// inside an RCU read-side section, and membarrier(MEMBARRIER_CMD_GLOBAL) waits for an
/// RCU grace period. After it, the final drain sees every record those programs made
/// and their counters are final: nothing is counted that was not delivered.
pub fn settle() {
    if let Err(e) = rustix::thread::membarrier(rustix::thread::MembarrierCommand::Global) {
        log::debug!("membarrier: {e}; waiting 50 ms instead");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Retires an enforcement: detaches every tier, waits for programs in flight, delivers
/// the events raised up to that moment (the consumer position lives in the map, so
/// this continues where `run` stopped), and returns the final counters. The maps close
/// when it is dropped. A pinned generation's links must be unpinned first.
pub fn retire(mut enf: Enforcement, policy: &Policy, log: &mut EventLog) -> Result<Counters, bpf::Error> {
    for tier in &mut enf.tiers {
        tier.detach_all();
    }
    settle();
    let events_map = enf.maps.events()?;
    let mut rb = RingBuffer::new(&events_map, |record| {
        deliver(record, policy, log);
    })?;
    let _ = rb.consume();
    drop(rb);
    enf.maps.counters()
}

/// What retiring a pinned generation of an earlier agent found.
#[derive(Debug, Default)]
pub struct Adopted {
    /// Its counters, since it was attached (the earlier agent delivered some of them).
    pub counters: Counters,
    /// The records it had not delivered, delivered now, by action.
    pub delivered: Counters,
}

/// Retires a pinned generation an earlier agent left (after this agent's own took
/// over): unpins its links, which detaches them, waits for programs in flight,
/// delivers the events it left in its ring buffer (without paths: its rule numbers
/// are lines of the config that agent ran), reads its counters and unpins its maps.
pub fn retire_pinned(pinned: Pinned, log: &mut EventLog) -> Adopted {
    let (events, counters) = (pinned.map(MapName::Events, pin::EVENTS), pinned.map(MapName::Counters, pin::COUNTERS));
    pinned.unpin_links();
    settle();
    let mut adopted = Adopted::default();
    let no_paths = Policy::default();
    match &events {
        Ok(map) => {
            let delivered = RefCell::new(Counters::default());
            match RingBuffer::from_map(map, |record| match events::decode(record) {
                Ok(ev) if ev.rule == abi::RULE_CANARY => {}
                Ok(ev) => {
                    let mut d = delivered.borrow_mut();
                    match ev.action {
                        events::Action::Denied => d.denied += 1,
                        events::Action::Audited => d.audited += 1,
                        events::Action::Followed => d.followed += 1,
                        events::Action::Unlinked => {}
                    }
                    log.event(&ev, &no_paths);
                }
                Err(e) => log::warn!("undecodable ring buffer record ({} bytes): {e:?}", record.len()),
            }) {
                Ok(mut rb) => {
                    let _ = rb.consume();
                }
                Err(e) => log::warn!("{}: {e}", pinned.path.display()),
            }
            adopted.delivered = delivered.into_inner();
        }
        Err(e) => log::warn!("{}: events: {e}", pinned.path.display()),
    }
    log.flush(&no_paths);
    match &counters {
        Ok(map) => {
            let read = |k| map.sum_percpu_u64(k).unwrap_or(0);
            adopted.counters = Counters {
                denied: read(abi::COUNTER_DENIED),
                audited: read(abi::COUNTER_AUDITED),
                dropped: read(abi::COUNTER_DROPPED),
                followed: read(abi::COUNTER_FOLLOWED),
                follow_failed: read(abi::COUNTER_FOLLOW_FAILED),
                unreadable: read(abi::COUNTER_UNREADABLE),
            };
        }
        Err(e) => log::warn!("{}: counters: {e}", pinned.path.display()),
    }
    drop((events, counters));
    pinned.remove();
    adopted
}
