//! The system counter (Hafnium's `arch/timer.h`).

/// The system counter the kernel measures time slices and deadlines with.
pub trait Clock {
    /// Counter-timer frequency in Hz.
    fn timer_frequency(&self) -> u64;
    /// The system counter now, in ticks of [`Clock::timer_frequency`].
    fn now(&self) -> u64;
}
