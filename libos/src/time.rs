//! Time from the system counter, for programs that wait for something with a limit.

use crate::arch;

/// The system counter now, in ticks.
pub fn ticks() -> u64 {
    arch::ticks()
}

/// A point in time a wait should not pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    at: u64,
}

impl Deadline {
    /// `millis` milliseconds from now.
    pub fn after_millis(millis: u64) -> Self {
        let ticks = arch::tick_frequency().saturating_mul(millis) / 1000;
        Self {
            at: arch::ticks().saturating_add(ticks),
        }
    }

    /// Whether it has passed.
    pub fn passed(&self) -> bool {
        arch::ticks() >= self.at
    }
}
