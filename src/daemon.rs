//! The running agent: block on the ring buffer, turn each record into one syslog
//! line, until SIGTERM/SIGINT (stop) or SIGHUP (reload). Lost records are counted by
//! the kernel side and reported here, so a full ring buffer is never silent.

use core::ops::AddAssign;
use core::sync::atomic::Ordering;

use crate::abi;
use crate::bpf::{self, Requests, RingBuffer};
use crate::eventlog::EventLog;
use crate::events;
use crate::tiers::Active;

/// How long one wait on the ring buffer lasts; bounds how late a stop request (that
/// raced with the start of a wait) and the drop counter are noticed.
const POLL_MS: i32 = 1000;

/// Totals of the per-CPU counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub denied: u64,
    pub audited: u64,
    pub dropped: u64,
}

impl AddAssign for Counters {
    fn add_assign(&mut self, other: Counters) {
        self.denied += other.denied;
        self.audited += other.audited;
        self.dropped += other.dropped;
    }
}

/// Why the loop returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Stop,
    Reload,
}

/// Reads the kernel-side counters.
pub fn counters(active: &Active) -> Result<Counters, bpf::Error> {
    let map = active.obj.map(c"counters")?;
    Ok(Counters {
        denied: map.sum_percpu_u64(abi::COUNTER_DENIED)?,
        audited: map.sum_percpu_u64(abi::COUNTER_AUDITED)?,
        dropped: map.sum_percpu_u64(abi::COUNTER_DROPPED)?,
    })
}

/// Reads only the lost-events counter: all the poll loop needs.
fn dropped(active: &Active) -> Result<u64, bpf::Error> {
    active.obj.map(c"counters")?.sum_percpu_u64(abi::COUNTER_DROPPED)
}

/// Warns about events lost since the last warning.
fn warn_lost(seen: &mut u64, now: u64) {
    if now > *seen {
        log::warn!("{} events lost: the ring buffer was full (raise ringbuf_size)", now - *seen);
        *seen = now;
    }
}

/// Writes one event to syslog. Canary events are the agent's own self-test.
fn deliver(record: &[u8], log: &mut EventLog) {
    match events::decode(record) {
        Ok(ev) if ev.rule == abi::RULE_CANARY => log::debug!("canary event: {ev}"),
        Ok(ev) => log.event(&ev),
        Err(e) => log::warn!("undecodable ring buffer record ({} bytes): {e:?}", record.len()),
    }
}

/// Blocks until a stop or reload is requested, delivering events. The caller then
/// retires the tier (or keeps it after a failed reload).
pub fn run(active: &Active, log: &mut EventLog, requests: &Requests) -> Result<Ending, bpf::Error> {
    let events_map = active.obj.map(c"events")?;
    let mut seen_dropped = dropped(active)?;
    // The callback runs only inside `rb.poll`, so the loop's own borrows never overlap it.
    let sink = core::cell::RefCell::new(log);
    let mut rb = RingBuffer::new(&events_map, |record| deliver(record, &mut sink.borrow_mut()))?;
    let ending = loop {
        if requests.stop.load(Ordering::SeqCst) {
            break Ending::Stop;
        }
        if requests.reload.swap(false, Ordering::SeqCst) {
            break Ending::Reload;
        }
        match rb.poll(POLL_MS) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(bpf::Error { op: "poll", what: "events", errno: e }),
        }
        warn_lost(&mut seen_dropped, dropped(active)?);
        sink.borrow_mut().tick();
    };
    drop(rb);
    warn_lost(&mut seen_dropped, dropped(active)?);
    Ok(ending)
}

/// Retires a tier: detaches it, delivers the events it raised up to that moment
/// (the consumer position lives in the map, so this continues where `run` stopped),
/// and returns its final counters. The maps close when `tier` is dropped.
pub fn retire(mut tier: Active, log: &mut EventLog) -> Result<Counters, bpf::Error> {
    tier.detach();
    let events_map = tier.obj.map(c"events")?;
    let mut rb = RingBuffer::new(&events_map, |record| deliver(record, log))?;
    let _ = rb.poll(0);
    drop(rb);
    let c = counters(&tier)?;
    Ok(c)
}
