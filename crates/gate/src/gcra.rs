//! The pure GCRA (generic cell rate algorithm) core: stored state (the
//! theoretical arrival time, TAT) plus `now` in, decision and new state out.
//! No clock, no IO, no locking; the stores wrap it.
//!
//! A quota is "`burst` cells at once, refilled at one cell per emission
//! interval `T`". With tolerance `tau = T * burst`, a request of `n` cells at
//! `now` is allowed iff `max(tat, now) + n*T - now <= tau`; on allow the TAT
//! becomes `max(tat, now) + n*T`, on deny it is unchanged.

use std::time::Duration;

/// Rate and burst of one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Emission interval T: the time one cell takes to refill, in ns (≥ 1).
    pub interval_ns: u64,
    /// Cells available at once (≥ 1).
    pub burst: u32,
}

impl Quota {
    /// `count` cells per `period`, with the given burst. `None` if count or
    /// burst is zero or the interval rounds to zero.
    pub fn new(count: u32, period: Duration, burst: u32) -> Option<Quota> {
        if count == 0 || burst == 0 {
            return None;
        }
        let interval_ns = (period.as_nanos() / count as u128) as u64;
        if interval_ns == 0 {
            return None;
        }
        Some(Quota { interval_ns, burst })
    }

    /// The delay-variation tolerance tau = T * burst.
    pub fn tau_ns(&self) -> u64 {
        self.interval_ns.saturating_mul(self.burst as u64)
    }
}

/// The result of one GCRA step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    /// The TAT to store: `Some` on allow, `None` when the state is unchanged.
    pub new_tat: Option<u64>,
    /// Cells still available right after this decision.
    pub remaining: u32,
    /// On deny: how long until the same request would be allowed (ns).
    /// `u64::MAX` if it never would (n > burst).
    pub retry_after_ns: u64,
    /// How long until the key is back to a full burst (ns).
    pub reset_after_ns: u64,
}

/// One GCRA step for `n` cells. `tat` is the stored state (`None`: unseen key).
pub fn check(tat: Option<u64>, now: u64, q: Quota, n: u32) -> Outcome {
    let t = q.interval_ns.max(1);
    let tau = q.tau_ns();
    let base = tat.unwrap_or(now).max(now);
    let new_tat = base.saturating_add(t.saturating_mul(n as u64));
    let debt = new_tat - now;
    if debt <= tau {
        Outcome {
            allowed: true,
            new_tat: Some(new_tat),
            remaining: ((tau - debt) / t).min(q.burst as u64) as u32,
            retry_after_ns: 0,
            reset_after_ns: debt,
        }
    } else {
        let cur_debt = base - now;
        Outcome {
            allowed: false,
            new_tat: None,
            remaining: (tau.saturating_sub(cur_debt) / t) as u32,
            retry_after_ns: if n > q.burst { u64::MAX } else { debt - tau },
            reset_after_ns: cur_debt,
        }
    }
}

/// The state of a key without consuming anything: (remaining, reset_after_ns).
pub fn peek(tat: Option<u64>, now: u64, q: Quota) -> (u32, u64) {
    let t = q.interval_ns.max(1);
    let debt = tat.unwrap_or(now).max(now) - now;
    (
        (q.tau_ns().saturating_sub(debt) / t).min(q.burst as u64) as u32,
        debt,
    )
}

/// Whether forgetting this state changes nothing: the TAT is not in the future.
pub fn is_expired(tat: u64, now: u64) -> bool {
    tat <= now
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn burst_then_refill() {
        // 10 per second, burst 3: T = 100 ms.
        let q = Quota::new(10, Duration::from_secs(1), 3).unwrap();
        assert_eq!(q.interval_ns, 100 * MS);
        let mut tat = None;
        let now = 1_000 * MS;
        for expect_remaining in [2, 1, 0] {
            let o = check(tat, now, q, 1);
            assert!(o.allowed);
            assert_eq!(o.remaining, expect_remaining);
            tat = o.new_tat;
        }
        let o = check(tat, now, q, 1);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_ns, 100 * MS);
        assert_eq!(o.new_tat, None);
        // 99 ms later still denied, 100 ms later allowed exactly once.
        assert!(!check(tat, now + 99 * MS, q, 1).allowed);
        let o = check(tat, now + 100 * MS, q, 1);
        assert!(o.allowed);
        assert_eq!(o.remaining, 0);
        // After a long idle the key is back to a full burst.
        let o = check(o.new_tat, now + 10_000 * MS, q, 1);
        assert_eq!(o.remaining, 2);
    }

    #[test]
    fn multi_cell_and_oversized() {
        let q = Quota::new(1, Duration::from_secs(1), 5).unwrap();
        let o = check(None, 0, q, 5);
        assert!(o.allowed && o.remaining == 0);
        let o = check(None, 0, q, 6);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_ns, u64::MAX);
        assert_eq!(o.remaining, 5);
    }

    #[test]
    fn zero_quota_rejected() {
        assert!(Quota::new(0, Duration::from_secs(1), 1).is_none());
        assert!(Quota::new(1, Duration::from_secs(1), 0).is_none());
        assert!(Quota::new(u32::MAX, Duration::from_nanos(1), 1).is_none());
    }

    #[test]
    fn peek_matches_check() {
        let q = Quota::new(5, Duration::from_secs(1), 4).unwrap();
        let o = check(None, 0, q, 3);
        assert_eq!(peek(o.new_tat, 0, q).0, o.remaining);
        assert!(is_expired(o.new_tat.unwrap(), o.reset_after_ns));
    }

    /// Reference model: a token bucket holding `credit` ns of allowance,
    /// capped at tau, refilled by elapsed time, each cell costing T.
    struct Bucket {
        credit: u64,
        last: u64,
    }

    impl Bucket {
        fn take(&mut self, now: u64, q: Quota, n: u32) -> (bool, u32) {
            let tau = q.tau_ns();
            self.credit = (self.credit + (now - self.last)).min(tau);
            self.last = now;
            let cost = q.interval_ns * n as u64;
            if cost <= self.credit {
                self.credit -= cost;
                (true, (self.credit / q.interval_ns) as u32)
            } else {
                (false, (self.credit / q.interval_ns) as u32)
            }
        }
    }

    proptest! {
        #[test]
        fn gcra_matches_token_bucket(
            count in 1u32..50,
            period_ms in 1u64..5_000,
            burst in 1u32..20,
            steps in proptest::collection::vec((0u64..400, 1u32..4), 1..200),
        ) {
            let q = Quota::new(count, Duration::from_millis(period_ms), burst).unwrap();
            let mut bucket = Bucket { credit: q.tau_ns(), last: 0 };
            let mut tat: Option<u64> = None;
            let mut now = 0u64;
            let mut allowed_total = 0u64;
            for (adv_ms, n) in steps {
                now += adv_ms * MS;
                let o = check(tat, now, q, n);
                let (ok, rem) = bucket.take(now, q, n);
                prop_assert_eq!(o.allowed, ok, "at {} n={}", now, n);
                prop_assert_eq!(o.remaining, rem);
                if o.allowed {
                    tat = o.new_tat;
                    allowed_total += n as u64;
                } else {
                    prop_assert!(o.retry_after_ns > 0);
                    // Waiting retry_after makes the same request pass.
                    if o.retry_after_ns != u64::MAX {
                        prop_assert!(check(tat, now + o.retry_after_ns, q, n).allowed);
                        prop_assert!(!check(tat, now + o.retry_after_ns - 1, q, n).allowed);
                    }
                }
                // Never more than burst + what time has refilled.
                prop_assert!(allowed_total <= burst as u64 + now / q.interval_ns);
            }
        }
    }
}
