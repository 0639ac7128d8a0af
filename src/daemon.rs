//! The running agent: block on the ring buffer, turn each record into one syslog
//! line, until SIGTERM or SIGINT. Lost records are counted by the kernel side and
//! reported here, so a full ring buffer is never silent.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::abi;
use crate::bpf::{self, RingBuffer};
use crate::events;
use crate::syslog::{Severity, Syslog};
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
fn deliver(record: &[u8], log: &mut Syslog) {
    match events::decode(record) {
        Ok(ev) if ev.rule == abi::RULE_CANARY => log::debug!("canary event: {ev}"),
        Ok(ev) => {
            let severity = if ev.action == events::Action::Denied { Severity::Warning } else { Severity::Notice };
            let mut line = heapless::String::<256>::new();
            let _ = core::fmt::write(&mut line, format_args!("{ev}"));
            log.send(severity, &line);
        }
        Err(e) => log::warn!("undecodable ring buffer record ({} bytes): {e:?}", record.len()),
    }
}

/// Blocks until `stop` is set, delivering events. Returns the final counters.
pub fn run(active: &Active, log: &mut Syslog, stop: &AtomicBool) -> Result<Counters, bpf::Error> {
    let events_map = active.obj.map(c"events")?;
    let mut seen_dropped = dropped(active)?;
    {
        let mut rb = RingBuffer::new(&events_map, |record| deliver(record, log))?;
        while !stop.load(Ordering::SeqCst) {
            match rb.poll(POLL_MS) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(bpf::Error { op: "poll", what: "events", errno: e }),
            }
            warn_lost(&mut seen_dropped, dropped(active)?);
        }
        // Deliver what is already in the buffer before detaching.
        let _ = rb.poll(0);
    }
    let c = counters(active)?;
    warn_lost(&mut seen_dropped, c.dropped);
    Ok(c)
}
