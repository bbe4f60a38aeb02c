//! A fixed amount of something (bytes of buffers, writer threads) shared by all the
//! uploads that run at once, taken without waiting: whoever finds too little left
//! does without (a smaller batch, a buffered write) instead of queueing.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Units that claims may take; given back as each [`Claim`] drops.
pub(crate) struct Budget(AtomicUsize);

/// Units taken from a [`Budget`]; given back when dropped.
pub(crate) struct Claim<'a> {
    budget: &'a Budget,
    units: usize,
}

impl Budget {
    pub(crate) const fn new(units: usize) -> Self {
        Budget(AtomicUsize::new(units))
    }

    /// Up to `wanted` units, in whole multiples of `step`: as many as are left, maybe
    /// none.
    pub(crate) fn take(&self, wanted: usize, step: usize) -> Claim<'_> {
        let mut units = 0;
        // The closure never refuses, so this cannot fail; it may run more than once
        // if others take or give back at the same time, and `units` is its last answer.
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                units = wanted.min(left) / step * step;
                Some(left - units)
            });
        Claim {
            budget: self,
            units,
        }
    }
}

impl Claim<'_> {
    /// How many units it holds.
    pub(crate) fn units(&self) -> usize {
        self.units
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.budget.0.fetch_add(self.units, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_gives_whole_steps_while_it_lasts_and_takes_them_back() {
        const STEP: usize = 1000;
        let budget = Budget::new(3 * STEP + 100);
        let first = budget.take(2 * STEP, STEP);
        assert_eq!(first.units(), 2 * STEP);
        let second = budget.take(2 * STEP, STEP);
        assert_eq!(second.units(), STEP, "what is left, in whole steps");
        let third = budget.take(STEP, STEP);
        assert_eq!(third.units(), 0, "100 units are no step");
        drop(first);
        drop(third);
        assert_eq!(budget.0.load(Ordering::Acquire), 2 * STEP + 100);
        drop(second);
        assert_eq!(budget.0.load(Ordering::Acquire), 3 * STEP + 100);
    }
}
