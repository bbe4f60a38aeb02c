//! The one token bucket: the site's submission budget and the journalist API's
//! failure limits are both "so many at once, refilled at a steady rate".

use std::time::Instant;

/// Holds at most `capacity` tokens and gains `per_second` of them continuously.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A bucket that starts full.
    pub(crate) fn full(capacity: f64, per_second: f64) -> Self {
        TokenBucket {
            capacity,
            per_second,
            tokens: capacity,
            at: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let gained = now.duration_since(self.at).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + gained).min(self.capacity);
        self.at = now;
    }

    /// Takes a token if there is one.
    pub(crate) fn try_take(&mut self) -> bool {
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes a token whether or not there is one: the debt is paid back by refilling
    /// first, so more spending means a longer wait.
    pub(crate) fn spend(&mut self) {
        self.refill();
        self.tokens -= 1.0;
    }

    /// True when no whole token is left.
    pub(crate) fn is_empty(&mut self) -> bool {
        self.refill();
        self.tokens < 1.0
    }

    /// True when the bucket has refilled completely (nothing spent is still counted).
    pub(crate) fn is_full(&mut self) -> bool {
        self.refill();
        self.tokens >= self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_up_to_capacity_then_refuses_and_debts_are_kept() {
        let mut bucket = TokenBucket::full(3.0, 0.0);
        assert!(bucket.try_take() && bucket.try_take() && bucket.try_take());
        assert!(!bucket.try_take());
        assert!(bucket.is_empty());
        bucket.spend();
        bucket.spend();
        assert!(bucket.is_empty() && !bucket.is_full());
        let mut fast = TokenBucket::full(2.0, 1e9);
        fast.spend();
        fast.spend();
        fast.spend();
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert!(fast.is_full(), "refilled at its rate, never above capacity");
        assert!(fast.try_take());
    }
}
