//! Time from the system counter, for programs that wait for something with a limit.

use crate::arch;

/// The system counter now, in ticks.
pub fn ticks() -> u64 {
    arch::ticks()
}

/// The counter's frequency in ticks per second (`CNTFRQ_EL0`).
pub fn frequency() -> u64 {
    arch::tick_frequency()
}

/// `millis` milliseconds in counter ticks (rounded down).
pub fn ticks_from_millis(millis: u64) -> u64 {
    arch::tick_frequency().saturating_mul(millis) / 1000
}

/// `ticks` counter ticks in whole milliseconds (rounded down).
pub fn millis_from_ticks(ticks: u64) -> u64 {
    match arch::tick_frequency() {
        0 => 0,
        frequency => (u128::from(ticks) * 1000 / u128::from(frequency)) as u64,
    }
}

/// A point in time a wait should not pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    at: u64,
}

impl Deadline {
    /// `millis` milliseconds from now.
    pub fn after_millis(millis: u64) -> Self {
        let ticks = ticks_from_millis(millis);
        Self {
            at: arch::ticks().saturating_add(ticks),
        }
    }

    /// Whether it has passed.
    pub fn passed(&self) -> bool {
        arch::ticks() >= self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_and_ticks_convert_both_ways() {
        // The host stand-in's counter runs at 1 MHz.
        assert_eq!(ticks_from_millis(5), 5_000);
        assert_eq!(millis_from_ticks(5_000), 5);
        assert_eq!(millis_from_ticks(u64::MAX), u64::MAX / 1000);
    }
}
