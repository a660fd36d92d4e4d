//! Time from the system counter: a monotonic clock ([`Instant`], [`monotonic`]) and
//! conversions between counter ticks and [`Duration`]s, for programs that measure or wait for
//! something with a limit. To wait without spinning, see [`crate::timer`].
//!
//! The counter is `CNTVCT_EL0`, the EL1 virtual count (the kernel sets `CNTVOFF_EL2` to 0 at
//! boot, so every partition counts from the same origin); its frequency is the one the info
//! page gives, read at start-up (`CNTFRQ_EL0` if the page gave none).

pub use core::time::Duration;

use crate::arch;

/// Nanoseconds in a second.
const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// The system counter now, in ticks.
pub fn ticks() -> u64 {
    arch::ticks()
}

/// The counter's frequency in ticks per second: the info page's, else `CNTFRQ_EL0`.
pub fn frequency() -> u64 {
    crate::runtime::counter_frequency().unwrap_or_else(arch::tick_frequency)
}

/// `millis` milliseconds in counter ticks (rounded down).
pub fn ticks_from_millis(millis: u64) -> u64 {
    frequency().saturating_mul(millis) / 1000
}

/// `ticks` counter ticks in whole milliseconds (rounded down).
pub fn millis_from_ticks(ticks: u64) -> u64 {
    match frequency() {
        0 => 0,
        frequency => (u128::from(ticks) * 1000 / u128::from(frequency)) as u64,
    }
}

/// `duration` in counter ticks, rounded up (so a wait of that many ticks lasts at least
/// `duration`); saturates at `u64::MAX`.
pub fn ticks_from_duration(duration: Duration) -> u64 {
    let ticks = duration.as_nanos() * u128::from(frequency());
    u64::try_from(ticks.div_ceil(NANOS_PER_SECOND)).unwrap_or(u64::MAX)
}

/// `ticks` counter ticks as a [`Duration`] (rounded down to the nanosecond).
pub fn duration_from_ticks(ticks: u64) -> Duration {
    match frequency() {
        0 => Duration::ZERO,
        frequency => {
            let nanos = u128::from(ticks) * NANOS_PER_SECOND / u128::from(frequency);
            Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
        }
    }
}

/// Time since the counter started (system reset), from the monotonic counter.
pub fn monotonic() -> Duration {
    duration_from_ticks(ticks())
}

/// [`monotonic`] in nanoseconds.
pub fn nanos() -> u64 {
    u64::try_from(monotonic().as_nanos()).unwrap_or(u64::MAX)
}

/// [`monotonic`] in microseconds.
pub fn micros() -> u64 {
    u64::try_from(monotonic().as_micros()).unwrap_or(u64::MAX)
}

/// A reading of the monotonic counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    ticks: u64,
}

impl Instant {
    /// Now.
    pub fn now() -> Self {
        Self { ticks: ticks() }
    }

    /// The instant the counter read `ticks`.
    pub const fn from_ticks(ticks: u64) -> Self {
        Self { ticks }
    }

    /// The counter value.
    pub const fn ticks(self) -> u64 {
        self.ticks
    }

    /// Time from `earlier` to this instant; zero if `earlier` is later.
    pub fn duration_since(self, earlier: Instant) -> Duration {
        duration_from_ticks(self.ticks.saturating_sub(earlier.ticks))
    }

    /// Time since this instant.
    pub fn elapsed(self) -> Duration {
        Instant::now().duration_since(self)
    }

    /// This instant plus `duration` (rounded up to a tick), saturating.
    pub fn saturating_add(self, duration: Duration) -> Instant {
        Instant {
            ticks: self.ticks.saturating_add(ticks_from_duration(duration)),
        }
    }

    /// Whether the counter has reached this instant.
    pub fn has_passed(self) -> bool {
        ticks() >= self.ticks
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

    /// `duration` from now.
    pub fn after(duration: Duration) -> Self {
        Self {
            at: Instant::now().saturating_add(duration).ticks(),
        }
    }

    /// The instant it passes.
    pub fn instant(&self) -> Instant {
        Instant::from_ticks(self.at)
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

    #[test]
    fn durations_round_up_to_whole_ticks() {
        // 1 MHz: a tick is a microsecond.
        assert_eq!(ticks_from_duration(Duration::from_millis(5)), 5_000);
        assert_eq!(ticks_from_duration(Duration::from_nanos(1)), 1);
        assert_eq!(ticks_from_duration(Duration::from_nanos(1_001)), 2);
        assert_eq!(ticks_from_duration(Duration::ZERO), 0);
        assert_eq!(ticks_from_duration(Duration::MAX), u64::MAX);
        assert_eq!(duration_from_ticks(1_500), Duration::from_micros(1_500));
    }

    #[test]
    fn instants_measure_and_add() {
        let start = Instant::from_ticks(1_000);
        let later = start.saturating_add(Duration::from_millis(2));
        assert_eq!(later.ticks(), 3_000);
        assert_eq!(later.duration_since(start), Duration::from_millis(2));
        assert_eq!(start.duration_since(later), Duration::ZERO);
        // The host counter stands at 0.
        assert!(Instant::from_ticks(0).has_passed());
        assert!(!later.has_passed());
        assert_eq!(monotonic(), Duration::ZERO);
        assert_eq!((nanos(), micros()), (0, 0));
    }
}
