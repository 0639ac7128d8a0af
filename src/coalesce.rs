//! Coalescing: a looping offender must not flood syslog, and no event may go
//! uncounted. Pure logic on an injected clock (milliseconds), fixed capacity.
//!
//! - Identical events (same process, class, action, tier and rule) are logged one by
//!   one up to `burst` times per `window`; the rest are counted in their slot, and
//!   when the window ends (or at stop) one line says how many there were: the last
//!   of them with ` repeated=N`.
//! - All event lines together are held to `rate` per second (a token bucket holding
//!   one second's worth). An event over the rate is counted in its slot like a
//!   repeat; with no slot to count it in (all SLOTS taken by keys with counts
//!   pending), it is counted in an overflow total, reported at most once a second as
//!   `not logged one by one (over log_rate=R/s): denied=N audited=M`.
//! - So syslog gets at most `rate` event lines a second, plus at most one summary per
//!   slot per window and one overflow line a second, whatever the kernel produces.
//! - Every event offered is either logged (its own line) or, once its summary line is
//!   out, coalesced: after [`Coalescer::flush`], `logged + coalesced` = events offered.
//!
//! `window = 0` turns per-key coalescing off (every event is its own line, within the
//! rate); `rate = 0` turns the rate limit off.

use crate::events::{Action, Event};
use crate::ladder::{Class, Hook, Tier};

/// Distinct keys followed at once.
pub const SLOTS: usize = 64;
/// The overflow total is reported at most this often.
const OVERFLOW_EVERY_MS: u64 = 1000;

/// The configured limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Per-key window in milliseconds; 0: no per-key coalescing.
    pub window_ms: u64,
    /// Identical events logged one by one per window (at least 1).
    pub burst: u32,
    /// Event lines per second overall; 0: no limit.
    pub rate: u32,
}

/// What makes two events identical.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    pid: u32,
    class: Class,
    op: Hook,
    action: Action,
    tier: Tier,
    rule: u32,
}

impl Key {
    fn of(ev: &Event) -> Key {
        Key { pid: ev.pid, class: ev.class, op: ev.op, action: ev.action, tier: ev.tier, rule: ev.rule }
    }
}

#[derive(Clone, Debug)]
struct Slot {
    key: Key,
    window_start: u64,
    /// Lines logged in this window.
    logged: u32,
    /// Events counted, not logged, since the last summary.
    pending: u64,
    /// The last of them, shown in the summary.
    last: Event,
    last_seen: u64,
}

/// A line to write.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// One event.
    Event(&'a Event),
    /// `n` more events identical to this one (the last of them) were not logged.
    Repeated(&'a Event, u64),
    /// Events over the rate that had no slot to be counted in.
    Overflow { denied: u64, audited: u64, rate: u32 },
}

/// The coalescer. About 10 KB, allocated once.
pub struct Coalescer {
    limits: Limits,
    slots: heapless::Vec<Slot, SLOTS>,
    /// Token bucket in thousandths of a line.
    tokens: u64,
    tokens_at: u64,
    overflow: [u64; 2],
    overflow_since: Option<u64>,
    /// Events offered.
    pub seen: u64,
    /// Events logged one by one.
    pub logged: u64,
    /// Events reported in a `repeated=` or overflow line.
    pub coalesced: u64,
}

impl Coalescer {
    pub fn new(limits: Limits, now: u64) -> Coalescer {
        let limits = Limits { burst: limits.burst.max(1), ..limits };
        Coalescer {
            limits,
            slots: heapless::Vec::new(),
            tokens: u64::from(limits.rate) * 1000,
            tokens_at: now,
            overflow: [0; 2],
            overflow_since: None,
            seen: 0,
            logged: 0,
            coalesced: 0,
        }
    }

    /// Events counted but not yet in a summary line.
    #[cfg(test)]
    pub fn pending(&self) -> u64 {
        self.slots.iter().map(|s| s.pending).sum::<u64>() + self.overflow[0] + self.overflow[1]
    }

    /// One line's worth of the rate, if there is one.
    fn take_token(&mut self, now: u64) -> bool {
        let rate = u64::from(self.limits.rate);
        if rate == 0 {
            return true;
        }
        let refill = now.saturating_sub(self.tokens_at).saturating_mul(rate);
        if refill > 0 {
            self.tokens = self.tokens.saturating_add(refill).min(rate * 1000);
            self.tokens_at = now;
        } else if now < self.tokens_at {
            self.tokens_at = now; // a clock that went back: start again from here
        }
        if self.tokens >= 1000 {
            self.tokens -= 1000;
            true
        } else {
            false
        }
    }

    /// Offers one event at `now`; `emit` gets the lines to write.
    pub fn offer(&mut self, ev: &Event, now: u64, emit: &mut dyn FnMut(Line<'_>)) {
        self.seen += 1;
        if self.limits.window_ms == 0 {
            return self.log_or_overflow(ev, now, emit);
        }
        let key = Key::of(ev);
        let index = match self.slots.iter().position(|s| s.key == key) {
            Some(i) => Some(i),
            None => self.new_slot(key, ev, now),
        };
        let Some(i) = index else {
            return self.log_or_overflow(ev, now, emit);
        };
        let window = self.limits.window_ms;
        let slot = &mut self.slots[i];
        slot.last_seen = now;
        if now.saturating_sub(slot.window_start) >= window || now < slot.window_start {
            if slot.pending > 0 {
                emit(Line::Repeated(&slot.last, slot.pending));
                self.coalesced += slot.pending;
                slot.pending = 0;
            }
            slot.window_start = now;
            slot.logged = 0;
        }
        let under_burst = slot.logged < self.limits.burst;
        if under_burst && self.take_token(now) {
            let slot = &mut self.slots[i];
            slot.logged += 1;
            self.logged += 1;
            emit(Line::Event(ev));
        } else {
            let slot = &mut self.slots[i];
            slot.pending += 1;
            slot.last.clone_from(ev);
        }
    }

    /// A slot for a key not followed yet: a free one, or the longest-idle slot with
    /// nothing pending. None when every slot has a count pending.
    fn new_slot(&mut self, key: Key, ev: &Event, now: u64) -> Option<usize> {
        let slot = Slot { key, window_start: now, logged: 0, pending: 0, last: ev.clone(), last_seen: now };
        if self.slots.len() < SLOTS {
            let _ = self.slots.push(slot); // cannot fail: checked
            return Some(self.slots.len() - 1);
        }
        let (i, _) = self.slots.iter().enumerate().filter(|(_, s)| s.pending == 0).min_by_key(|(_, s)| s.last_seen)?;
        self.slots[i] = slot;
        Some(i)
    }

    fn log_or_overflow(&mut self, ev: &Event, now: u64, emit: &mut dyn FnMut(Line<'_>)) {
        if self.take_token(now) {
            self.logged += 1;
            emit(Line::Event(ev));
        } else {
            self.overflow[usize::from(ev.action == Action::Audited)] += 1;
            self.overflow_since.get_or_insert(now);
        }
    }

    /// Periodic work at `now`: the summaries of windows that have ended, the overflow
    /// total once a second, and slots idle for a whole window are freed.
    pub fn tick(&mut self, now: u64, emit: &mut dyn FnMut(Line<'_>)) {
        let window = self.limits.window_ms;
        let mut i = 0;
        while i < self.slots.len() {
            let slot = &mut self.slots[i];
            if now.saturating_sub(slot.window_start) >= window {
                if slot.pending > 0 {
                    emit(Line::Repeated(&slot.last, slot.pending));
                    self.coalesced += slot.pending;
                    slot.pending = 0;
                }
                if now.saturating_sub(slot.last_seen) >= window {
                    self.slots.swap_remove(i);
                    continue;
                }
                slot.window_start = now;
                slot.logged = 0;
            }
            i += 1;
        }
        if self.overflow_since.is_some_and(|since| now.saturating_sub(since) >= OVERFLOW_EVERY_MS) {
            self.flush_overflow(emit);
        }
    }

    fn flush_overflow(&mut self, emit: &mut dyn FnMut(Line<'_>)) {
        let [denied, audited] = self.overflow;
        if denied + audited > 0 {
            emit(Line::Overflow { denied, audited, rate: self.limits.rate });
            self.coalesced += denied + audited;
        }
        self.overflow = [0; 2];
        self.overflow_since = None;
    }

    /// Writes every pending summary (at stop): afterwards `logged + coalesced = seen`.
    pub fn flush(&mut self, emit: &mut dyn FnMut(Line<'_>)) {
        for slot in self.slots.iter_mut() {
            if slot.pending > 0 {
                emit(Line::Repeated(&slot.last, slot.pending));
                self.coalesced += slot.pending;
                slot.pending = 0;
            }
        }
        self.flush_overflow(emit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Object;

    fn ev(pid: u32, rule: u32) -> Event {
        Event {
            class: Class::Open,
            op: Hook::Open,
            reason: crate::events::Reason::Rule,
            file: heapless::String::new(),
            action: Action::Denied,
            tier: Tier::Lsm,
            pid,
            uid: 0,
            rule,
            signal: 0,
            comm: heapless::String::try_from("cat").unwrap(),
            object: Object::File { dev: 1, ino: 2 },
        }
    }

    /// What the coalescer emitted, as text: `E pid rule`, `R pid rule n`, `O d a`.
    #[derive(Default)]
    struct Out(Vec<String>);

    impl Out {
        fn sink(&mut self) -> impl FnMut(Line<'_>) + '_ {
            |line| {
                self.0.push(match line {
                    Line::Event(e) => format!("E {} {}", e.pid, e.rule),
                    Line::Repeated(e, n) => format!("R {} {} {n}", e.pid, e.rule),
                    Line::Overflow { denied, audited, .. } => format!("O {denied} {audited}"),
                })
            }
        }
        fn take(&mut self) -> Vec<String> {
            std::mem::take(&mut self.0)
        }
    }

    fn limits(window_ms: u64, burst: u32, rate: u32) -> Limits {
        Limits { window_ms, burst, rate }
    }

    fn exact(c: &Coalescer) {
        assert_eq!(c.logged + c.coalesced + c.pending(), c.seen, "every event is logged, coalesced or pending");
    }

    #[test]
    fn a_looping_offender_is_logged_burst_times_then_summarised() {
        let mut c = Coalescer::new(limits(10_000, 3, 0), 0);
        let mut out = Out::default();
        for t in 0..41_240 {
            c.offer(&ev(7, 12), t / 10, &mut out.sink());
        }
        assert_eq!(out.take(), ["E 7 12", "E 7 12", "E 7 12"]);
        exact(&c);
        assert_eq!(c.pending(), 41_237);
        c.tick(9_999, &mut out.sink());
        assert!(out.take().is_empty(), "the window has not ended");
        c.tick(10_000, &mut out.sink());
        assert_eq!(out.take(), ["R 7 12 41237"]);
        assert_eq!((c.seen, c.logged, c.coalesced, c.pending()), (41_240, 3, 41_237, 0));
        // A new window: burst lines again.
        for t in 0..5 {
            c.offer(&ev(7, 12), 10_500 + t, &mut out.sink());
        }
        assert_eq!(out.take(), ["E 7 12", "E 7 12", "E 7 12"]);
        c.flush(&mut out.sink());
        assert_eq!(out.take(), ["R 7 12 2"]);
        exact(&c);
        assert_eq!(c.logged + c.coalesced, c.seen);
    }

    #[test]
    fn fixed_size() {
        // README says "about 10 KB": allocated once, never grows.
        let size = core::mem::size_of::<Coalescer>();
        assert!((4096..=12 * 1024).contains(&size), "{size} bytes");
    }

    #[test]
    fn the_summary_shows_the_last_event() {
        let mut c = Coalescer::new(limits(1000, 1, 0), 0);
        let mut shown = Vec::new();
        let mut e = ev(5, 1);
        for comm in ["a", "b", "c"] {
            e.comm = heapless::String::try_from(comm).unwrap();
            c.offer(&e, 0, &mut |l| {
                if let Line::Repeated(e, n) = l {
                    shown.push((e.comm.to_string(), n));
                }
            });
        }
        c.flush(&mut |l| {
            if let Line::Repeated(e, n) = l {
                shown.push((e.comm.to_string(), n));
            }
        });
        assert_eq!(shown, [("c".to_owned(), 2)]);
    }

    #[test]
    fn what_makes_events_identical() {
        let mut c = Coalescer::new(limits(10_000, 1, 0), 0);
        let mut out = Out::default();
        let base = ev(1, 1);
        let variants = [
            base.clone(),
            Event { pid: 2, ..base.clone() },
            Event { rule: 2, ..base.clone() },
            Event { class: Class::Exec, ..base.clone() },
            Event { action: Action::Audited, ..base.clone() },
            Event { tier: Tier::Tracepoint, ..base.clone() },
        ];
        for v in &variants {
            c.offer(v, 0, &mut out.sink());
            c.offer(v, 1, &mut out.sink());
        }
        // Each variant is its own key: one line each, one repeat pending each.
        assert_eq!(out.take().len(), variants.len());
        assert_eq!(c.pending(), variants.len() as u64);
        // Other fields (uid, comm, object, signal) do not make an event different.
        let other = Event { uid: 9, signal: 9, object: Object::File { dev: 3, ino: 4 }, ..base.clone() };
        c.offer(&other, 2, &mut out.sink());
        assert!(out.take().is_empty());
        c.flush(&mut out.sink());
        // base (with `other`), exec, audited and signal are pid 1, rule 1.
        assert_eq!(out.0.iter().filter(|l| l.starts_with("R 1 1 ")).count(), 4, "{:?}", out.0);
        assert_eq!(out.0.iter().filter(|l| *l == "R 1 1 2").count(), 1, "{:?}", out.0);
        exact(&c);
    }

    #[test]
    fn the_rate_holds_across_processes() {
        // A fork loop: every event from a new process, 1000 a second for 5 s.
        let mut c = Coalescer::new(limits(10_000, 5, 20), 0);
        let mut out = Out::default();
        for i in 0..5000u32 {
            let now = u64::from(i);
            c.offer(&ev(1000 + i, 3), now, &mut out.sink());
            if i % 100 == 0 {
                c.tick(now, &mut out.sink());
            }
            exact(&c);
        }
        c.flush(&mut out.sink());
        let lines = out.take();
        let events = lines.iter().filter(|l| l.starts_with("E ")).count() as u64;
        // 20 at once, then 20 a second.
        assert!((20 + 5 * 20 - 1..=20 + 5 * 20).contains(&events), "{events} event lines");
        let summaries = lines.len() as u64 - events;
        assert!(summaries <= SLOTS as u64 + 6, "{summaries} summary lines: {lines:?}");
        assert_eq!(c.logged + c.coalesced, 5000);
        // The counts in the summary lines add up.
        let counted: u64 = lines
            .iter()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                match f[0] {
                    "E" => 1,
                    "R" => f[3].parse::<u64>().unwrap(),
                    _ => f[1].parse::<u64>().unwrap() + f[2].parse::<u64>().unwrap(),
                }
            })
            .sum();
        assert_eq!(counted, 5000);
    }

    #[test]
    fn without_a_window_only_the_rate_applies() {
        let mut c = Coalescer::new(limits(0, 5, 3), 0);
        let mut out = Out::default();
        for t in 0..10 {
            c.offer(&ev(1, 1), t, &mut out.sink());
        }
        c.offer(&Event { action: Action::Audited, ..ev(1, 1) }, 10, &mut out.sink());
        assert_eq!(out.take(), ["E 1 1", "E 1 1", "E 1 1"]);
        c.tick(999, &mut out.sink());
        assert!(out.take().is_empty(), "the overflow is reported once a second");
        c.tick(1003, &mut out.sink());
        assert_eq!(out.take(), ["O 7 1"]);
        // Refilled: 3 a second.
        for t in 2000..2010 {
            c.offer(&ev(1, 1), t, &mut out.sink());
        }
        assert_eq!(out.take().len(), 3);
        c.flush(&mut out.sink());
        assert_eq!(out.take(), ["O 7 0"]);
        assert_eq!((c.seen, c.logged, c.coalesced), (21, 6, 15));

        // Neither window nor rate: everything is logged.
        let mut c = Coalescer::new(limits(0, 1, 0), 0);
        for _ in 0..1000 {
            c.offer(&ev(1, 1), 0, &mut out.sink());
        }
        assert_eq!((out.take().len(), c.logged), (1000, 1000));
    }

    #[test]
    fn a_full_table_evicts_only_slots_with_nothing_pending() {
        let mut c = Coalescer::new(limits(60_000, 1, 0), 0);
        let mut out = Out::default();
        // SLOTS keys, each logged once: nothing pending, all evictable.
        for pid in 0..SLOTS as u32 {
            c.offer(&ev(pid, 1), u64::from(pid), &mut out.sink());
        }
        assert_eq!(c.slots.len(), SLOTS);
        c.offer(&ev(999, 1), 100, &mut out.sink());
        assert!(!c.slots.iter().any(|s| s.key.pid == 0), "the longest idle slot went");
        // Now every slot gets a repeat pending.
        for pid in (1..SLOTS as u32).chain([999]) {
            c.offer(&ev(pid, 1), 200, &mut out.sink());
        }
        assert!(c.slots.iter().all(|s| s.pending == 1));
        out.take();
        // A new key finds no slot: logged (no rate limit here), not lost.
        c.offer(&ev(5000, 1), 300, &mut out.sink());
        c.offer(&ev(5000, 1), 301, &mut out.sink());
        assert_eq!(out.take(), ["E 5000 1", "E 5000 1"]);
        exact(&c);
        c.flush(&mut out.sink());
        assert_eq!(out.take().len(), SLOTS);
        assert_eq!(c.logged + c.coalesced, c.seen);
    }

    #[test]
    fn a_full_table_over_the_rate_counts_in_the_overflow() {
        let mut c = Coalescer::new(limits(60_000, 1, 1), 0);
        let mut out = Out::default();
        for pid in 0..SLOTS as u32 + 10 {
            c.offer(&ev(pid, 1), 0, &mut out.sink());
        }
        // One token: one line. Keys 1..SLOTS-1 pend in their slots; key SLOTS takes
        // the slot of key 0, which had nothing pending; the other 9 overflow.
        assert_eq!(out.take(), ["E 0 1"]);
        assert_eq!(c.overflow, [9, 0]);
        exact(&c);
        c.tick(1000, &mut out.sink());
        assert_eq!(out.take(), ["O 9 0"]);
        c.flush(&mut out.sink());
        assert_eq!(out.take().len(), SLOTS);
        assert_eq!((c.logged, c.coalesced, c.seen), (1, SLOTS as u64 + 9, SLOTS as u64 + 10));
    }

    #[test]
    fn idle_slots_are_freed_and_a_clock_going_back_is_harmless() {
        let mut c = Coalescer::new(limits(1000, 2, 10), 5000);
        let mut out = Out::default();
        c.offer(&ev(1, 1), 5000, &mut out.sink());
        c.tick(6000, &mut out.sink());
        assert!(c.slots.is_empty(), "idle for a window: freed");
        c.offer(&ev(1, 1), 7000, &mut out.sink());
        c.offer(&ev(1, 1), 10, &mut out.sink()); // the clock went back
        c.offer(&ev(1, 1), 11, &mut out.sink());
        c.tick(0, &mut out.sink());
        c.flush(&mut out.sink());
        exact(&c);
        assert_eq!(c.logged + c.coalesced, c.seen);
    }

    #[test]
    fn random_streams_stay_exact_and_bounded() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..200 {
            let lim = limits([0, 1, 500, 10_000][round % 4], (next() % 8) as u32, [0, 1, 50, 1000][(round / 4) % 4]);
            let mut c = Coalescer::new(lim, 0);
            let mut lines_per_second = std::collections::BTreeMap::<u64, u64>::new();
            let mut now = 0u64;
            for _ in 0..3000 {
                now += next() % 5;
                let r = next();
                let e = Event {
                    pid: (r % 100) as u32,
                    rule: ((r >> 8) % 3) as u32,
                    action: if r & (1 << 20) == 0 { Action::Denied } else { Action::Audited },
                    ..ev(0, 0)
                };
                let mut n = 0;
                c.offer(&e, now, &mut |l| {
                    if matches!(l, Line::Event(_)) {
                        n += 1;
                    }
                });
                *lines_per_second.entry(now / 1000).or_default() += n;
                if r % 7 == 0 {
                    c.tick(now, &mut |_| {});
                }
                exact(&c);
            }
            c.flush(&mut |_| {});
            assert_eq!(c.logged + c.coalesced, c.seen, "{lim:?}");
            assert_eq!(c.seen, 3000);
            if lim.rate > 0 {
                for (s, n) in lines_per_second {
                    // A full bucket plus one second's refill, at most.
                    assert!(n <= 2 * u64::from(lim.rate), "{lim:?}: {n} event lines in second {s}");
                }
            }
        }
    }
}
