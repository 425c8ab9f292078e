//! Time for the limiters. The GCRA core is clock-free (it takes `now` as an
//! argument); callers read a [`Clock`], so tests drive time with [`FakeClock`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A source of monotonic nanoseconds.
pub trait Clock: Send + Sync + 'static {
    fn now_ns(&self) -> u64;
}

/// Nanoseconds since the clock was created (monotonic, immune to wall-clock jumps).
///
/// Read from the CPU's invariant time-stamp counter through `quanta` (the
/// clock governor uses), scaled to nanoseconds: about 3x cheaper than
/// `Instant::now()` (a vDSO `clock_gettime`), and the memory limiter reads it
/// once per decision. quanta calibrates the counter against the OS monotonic
/// clock once per process and falls back to that clock where the counter is
/// not invariant. A reading that would go backwards (counters of different
/// cores a few ns apart) saturates to the last start-relative value instead
/// of wrapping; GCRA only ever gets a few ns stricter from it.
#[derive(Debug, Clone)]
pub struct MonotonicClock {
    clock: quanta::Clock,
    start: u64,
}

impl MonotonicClock {
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let start = clock.raw();
        MonotonicClock { clock, start }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now_ns(&self) -> u64 {
        // u64 nanoseconds last 584 years of uptime; delta_as_nanos returns 0
        // (not a wrapped value) if the raw reading is behind `start`.
        self.clock.delta_as_nanos(self.start, self.clock.raw())
    }
}

/// A clock tests move by hand. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct FakeClock {
    now: Arc<AtomicU64>,
}

impl FakeClock {
    pub fn new(start_ns: u64) -> Self {
        FakeClock {
            now: Arc::new(AtomicU64::new(start_ns)),
        }
    }
    pub fn advance(&self, d: Duration) {
        self.now.fetch_add(d.as_nanos() as u64, Ordering::SeqCst);
    }
    pub fn set_ns(&self, ns: u64) {
        self.now.store(ns, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

/// Seconds since the Unix epoch (for challenge-token and cookie expiry, which
/// must agree across a fleet and survive restarts).
pub fn unix_now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Nanoseconds since the Unix epoch (for token expiry).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_tracks_std_instant() {
        let c = MonotonicClock::new();
        let t0 = std::time::Instant::now();
        let a = c.now_ns();
        std::thread::sleep(Duration::from_millis(20));
        let b = c.now_ns();
        let real = t0.elapsed().as_nanos() as u64;
        assert!(b >= a, "went backwards: {a} -> {b}");
        // The counter is scaled to ns: 20 ms of sleep reads as >= ~20 ms and
        // not more than what std measured around it (plus calibration slack).
        assert!(b - a >= 19_000_000, "{} ns for a 20 ms sleep", b - a);
        assert!(
            b - a <= real + real / 10 + 1_000_000,
            "{} ns vs std {real}",
            b - a
        );
    }
}
