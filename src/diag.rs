//! The agent's diagnostics on stderr, held to a rate. Some warnings follow what
//! others do (a rename over a rule's path, a directory event), and stderr is often a
//! file nothing rotates while the agent runs: past DIAG_BURST lines at once, at most
//! DIAG_RATE a second get through; the rest are counted, and the next line that gets
//! through says how many were not written. Lines of the agent's own lifecycle and
//! start-up (target `enforce`), libbpf's (`enforce::bpf`) and the opt-in debug and
//! trace lines (`-v`) are not held.

use std::sync::Mutex;

use log::{Level, Log, Metadata, Record};

/// Diagnostic lines a second, after a burst.
pub const DIAG_RATE: u64 = 10;
/// Diagnostic lines at once.
pub const DIAG_BURST: u64 = 100;

/// A token bucket on an injected clock (milliseconds).
#[derive(Debug)]
pub struct Bucket {
    /// Tokens, in thousandths of a line.
    milli: u64,
    at_ms: u64,
    /// Lines not written since the last one that was.
    pub held_back: u64,
}

impl Bucket {
    pub fn new(now_ms: u64) -> Bucket {
        Bucket { milli: DIAG_BURST * 1000, at_ms: now_ms, held_back: 0 }
    }

    /// Whether a line may go out at `now_ms`; if not, it is counted.
    pub fn take(&mut self, now_ms: u64) -> bool {
        let refill = now_ms.saturating_sub(self.at_ms).saturating_mul(DIAG_RATE);
        self.milli = self.milli.saturating_add(refill).min(DIAG_BURST * 1000);
        self.at_ms = now_ms;
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            self.held_back += 1;
            false
        }
    }
}

/// The logger: simple_logger's lines, the held ones through a [`Bucket`].
pub struct Limited {
    inner: simple_logger::SimpleLogger,
    bucket: Mutex<Bucket>,
}

/// Whether a line is held to the rate.
fn held(target: &str, level: Level) -> bool {
    level <= Level::Info && target != "enforce" && target != "enforce::bpf"
}

impl Limited {
    /// Installs the logger at `level`.
    pub fn init(level: log::LevelFilter) {
        let inner = simple_logger::SimpleLogger::new().with_level(level);
        let logger = Limited { inner, bucket: Mutex::new(Bucket::new(crate::syslog::now_ms())) };
        if log::set_boxed_logger(Box::new(logger)).is_ok() {
            log::set_max_level(level);
        }
    }
}

impl Log for Limited {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if held(record.target(), record.level()) {
            let mut bucket = self.bucket.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !bucket.take(crate::syslog::now_ms()) {
                return;
            }
            let n = core::mem::take(&mut bucket.held_back);
            drop(bucket);
            if n > 0 {
                let text = format!("{n} diagnostic lines not written (more than {DIAG_RATE} a second)");
                self.inner.log(&Record::builder().args(format_args!("{text}")).level(Level::Warn).target(record.target()).build());
            }
        }
        self.inner.log(record);
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_and_the_rest_counted() {
        let mut b = Bucket::new(0);
        let burst = (0..DIAG_BURST * 2).filter(|_| b.take(0)).count() as u64;
        assert_eq!((burst, b.held_back), (DIAG_BURST, DIAG_BURST));
        // One second later, DIAG_RATE more.
        let next = (0..DIAG_BURST).filter(|_| b.take(1000)).count() as u64;
        assert_eq!(next, DIAG_RATE);
        // Refilled to the burst, no further.
        let later = (0..DIAG_BURST * 2).filter(|_| b.take(1_000_000)).count() as u64;
        assert_eq!(later, DIAG_BURST);
    }

    #[test]
    fn lifecycle_libbpf_and_debug_lines_are_not_held() {
        assert!(!held("enforce", Level::Info));
        assert!(!held("enforce::bpf", Level::Warn));
        assert!(!held("enforce::follow", Level::Debug));
        assert!(held("enforce::follow", Level::Warn));
        assert!(held("enforce::eventlog", Level::Error));
    }
}
