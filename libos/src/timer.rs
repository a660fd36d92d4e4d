//! A periodic interrupt from the EL1 virtual timer (`CNTV_*_EL0`), which the kernel injects
//! as INTID [`VIRTUAL_TIMER_INTID`] through the GICv3 list registers.
//!
//! [`periodic`] arms the timer `period` counter ticks ahead and registers [`crate::irq`]
//! handler that, on every interrupt, moves the deadline to the next multiple of the period
//! after now (so the level-sensitive interrupt deasserts before it is ended), counts it and
//! calls the program's handler. Periods that ended while the partition was not running (the
//! kernel saves the timer with the rest of the partition) are counted as missed rather than
//! delivered as a burst. There is one virtual timer, so one [`Ticker`] at a time.
//!
//! ```ignore
//! exo_libos::irq::init()?;
//! let ticker = exo_libos::timer::periodic(time::ticks_from_millis(5), || {})?;
//! exo_libos::irq::enable()?;
//! while ticker.interrupts() < 20 {}
//! ticker.stop();
//! ```

use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use crate::{arch, irq};

/// The EL1 virtual timer's interrupt: PPI 11, INTID 27 (Arm Base System Architecture; the
/// `virt` board's device tree says the same).
pub const VIRTUAL_TIMER_INTID: u32 = 27;

/// Why a periodic timer cannot start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A period of zero ticks.
    ZeroPeriod,
    /// A [`Ticker`] is already running.
    Busy,
    /// Interrupts cannot be used; see the inner error.
    Irq(irq::Error),
}

impl From<irq::Error> for Error {
    fn from(error: irq::Error) -> Self {
        Error::Irq(error)
    }
}

/// The period in ticks; 0 while no ticker runs.
static PERIOD: AtomicU64 = AtomicU64::new(0);
static INTERRUPTS: AtomicU64 = AtomicU64::new(0);
static MISSED: AtomicU64 = AtomicU64::new(0);
static ON_TICK: Mutex<Option<irq::Handler>> = Mutex::new(None);

/// A running periodic timer; [`Ticker::stop`] or dropping it disables the timer.
#[derive(Debug)]
pub struct Ticker {
    period: u64,
}

/// Starts the virtual timer interrupting every `period` counter ticks, calling `on_tick` in
/// each interrupt (see [`crate::irq`] for what handlers may do). Needs [`irq::init`]; the
/// interrupts arrive once [`irq::enable`] unmasks them.
pub fn periodic(period: u64, on_tick: irq::Handler) -> Result<Ticker, Error> {
    if period == 0 {
        return Err(Error::ZeroPeriod);
    }
    if !irq::is_initialised() {
        return Err(Error::Irq(irq::Error::NotInitialised));
    }
    irq::without_interrupts(|| {
        if PERIOD.load(Ordering::Relaxed) != 0 {
            return Err(Error::Busy);
        }
        irq::register(VIRTUAL_TIMER_INTID, on_interrupt)?;
        *ON_TICK.lock() = Some(on_tick);
        INTERRUPTS.store(0, Ordering::Relaxed);
        MISSED.store(0, Ordering::Relaxed);
        PERIOD.store(period, Ordering::Relaxed);
        arch::virtual_timer_arm(arch::ticks().saturating_add(period));
        Ok(Ticker { period })
    })
}

impl Ticker {
    /// The period in counter ticks.
    pub fn period(&self) -> u64 {
        self.period
    }

    /// Timer interrupts taken so far.
    pub fn interrupts(&self) -> u64 {
        INTERRUPTS.load(Ordering::Relaxed)
    }

    /// Periods that ended without an interrupt of their own (the partition was not running,
    /// or a handler ran too long).
    pub fn missed(&self) -> u64 {
        MISSED.load(Ordering::Relaxed)
    }

    /// Disables the timer; returns the number of interrupts taken.
    pub fn stop(self) -> u64 {
        self.interrupts()
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        irq::without_interrupts(|| {
            arch::virtual_timer_disable();
            PERIOD.store(0, Ordering::Relaxed);
            *ON_TICK.lock() = None;
        });
    }
}

/// The virtual timer's interrupt handler.
fn on_interrupt() {
    let period = PERIOD.load(Ordering::Relaxed);
    if period == 0 {
        // Stopped while the interrupt was pending: make sure it stays quiet.
        arch::virtual_timer_disable();
        return;
    }
    let (next, ended) = next_deadline(arch::virtual_timer_deadline(), period, arch::ticks());
    arch::virtual_timer_arm(next);
    INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    MISSED.fetch_add(ended - 1, Ordering::Relaxed);
    let on_tick = *ON_TICK.lock();
    if let Some(on_tick) = on_tick {
        on_tick();
    }
}

/// After the deadline `fired` passed, with the counter at `now`: the first deadline
/// `fired + k * period` after `now`, and `k`, the number of periods that ended (at least 1).
fn next_deadline(fired: u64, period: u64, now: u64) -> (u64, u64) {
    let ended = if now < fired {
        1
    } else {
        (now - fired) / period + 1
    };
    (fired.saturating_add(ended.saturating_mul(period)), ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_deadline_is_one_period_on_when_on_time() {
        assert_eq!(next_deadline(100, 10, 100), (110, 1));
        assert_eq!(next_deadline(100, 10, 109), (110, 1));
        assert_eq!(next_deadline(100, 10, 95), (110, 1));
    }

    #[test]
    fn next_deadline_skips_missed_periods() {
        assert_eq!(next_deadline(100, 10, 110), (120, 2));
        assert_eq!(next_deadline(100, 10, 135), (140, 4));
    }

    #[test]
    fn next_deadline_is_always_after_now() {
        for fired in [0, 7, 1000] {
            for period in [1, 3, 50] {
                for now in fired..fired + 200 {
                    let (next, ended) = next_deadline(fired, period, now);
                    assert!(next > now && ended >= 1);
                    assert_eq!(next, fired + ended * period);
                    assert!(next - period <= now);
                }
            }
        }
    }

    #[test]
    fn periodic_needs_a_period_and_interrupts() {
        assert_eq!(periodic(0, || {}).unwrap_err(), Error::ZeroPeriod);
        assert_eq!(
            periodic(10, || {}).unwrap_err(),
            Error::Irq(irq::Error::NotInitialised)
        );
    }
}
