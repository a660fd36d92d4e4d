//! The EL1 virtual timer (`CNTV_*_EL0`), which the kernel injects as INTID
//! [`VIRTUAL_TIMER_INTID`] with the hardware bit on both GIC versions, shared between a
//! periodic interrupt ([`periodic`]) and timed waits ([`sleep`], [`wait_for`]).
//!
//! There is one virtual timer, so the library OS multiplexes it: the hardware deadline is
//! always the earlier of the next period's end and the pending wait's deadline. Its interrupt
//! handler moves the period on (so the level-sensitive interrupt deasserts before it is
//! ended), notes an expired wait, and re-arms the timer for what remains, or disables it.
//!
//! A periodic interrupt counts the periods that ended while the partition was not running
//! (the kernel saves the timer with the rest of the partition) as missed rather than
//! delivering them as a burst. There is one [`Ticker`] at a time.
//!
//! A timed wait gives the CPU away: it blocks in `EXO_WAIT_EVENT` ([`crate::irq::wait_until`]),
//! and the kernel wakes the partition when the deadline passes, even while it is not
//! scheduled.
//!
//! ```ignore
//! exo_libos::irq::init(info)?;
//! timer::sleep(Duration::from_millis(5))?;
//! let ticker = timer::periodic(time::ticks_from_millis(5), || {})?;
//! exo_libos::irq::enable()?;
//! while ticker.interrupts() < 20 {}
//! ticker.stop();
//! ```

use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use crate::time::{self, Duration, Instant};
use crate::{arch, irq};

/// The EL1 virtual timer's interrupt: PPI 11, INTID 27 (Arm Base System Architecture; the
/// `virt` board's device tree says the same).
pub const VIRTUAL_TIMER_INTID: u32 = exo_abi::call::VIRTUAL_TIMER_INTID;

/// What a periodic timer calls on every period.
pub type TickHandler = fn();

/// Why the timer cannot be used.
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

/// A periodic interrupt's state.
#[derive(Clone, Copy)]
struct Periodic {
    period: u64,
    /// The end of the current period: the deadline it needs.
    next: u64,
    on_tick: TickHandler,
}

/// What the virtual timer is multiplexed between.
struct State {
    periodic: Option<Periodic>,
    /// The deadline of the wait in progress (there is at most one: waits do not nest).
    wait: Option<u64>,
}

impl State {
    /// The deadline the hardware needs: the earliest of the two.
    fn deadline(&self) -> Option<u64> {
        match (self.periodic.map(|p| p.next), self.wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

static STATE: Mutex<State> = Mutex::new(State {
    periodic: None,
    wait: None,
});
static INTERRUPTS: AtomicU64 = AtomicU64::new(0);
static MISSED: AtomicU64 = AtomicU64::new(0);
static WAKE_UPS: AtomicU64 = AtomicU64::new(0);
/// Counter ticks from the end of the last period served to its handler's first reading.
static LATENESS: AtomicU64 = AtomicU64::new(0);

/// Arms the hardware for `state` (or disables it). Call with IRQs masked.
fn program(state: &State) {
    match state.deadline() {
        Some(deadline) => arch::virtual_timer_arm(deadline),
        None => arch::virtual_timer_disable(),
    }
}

/// Registers the timer's interrupt handler (needs [`irq::init`]).
fn claim_interrupt() -> Result<(), Error> {
    if !irq::is_initialised() {
        return Err(Error::Irq(irq::Error::NotInitialised));
    }
    irq::register(VIRTUAL_TIMER_INTID, on_interrupt)?;
    Ok(())
}

/// A running periodic timer; [`Ticker::stop`] or dropping it stops the periods.
#[derive(Debug)]
pub struct Ticker {
    period: u64,
}

/// Starts the virtual timer interrupting every `period` counter ticks, calling `on_tick` in
/// each interrupt (see [`crate::irq`] for what handlers may do). Needs [`irq::init`]; the
/// interrupts arrive once [`irq::enable`] unmasks them (or inside a wait).
pub fn periodic(period: u64, on_tick: TickHandler) -> Result<Ticker, Error> {
    if period == 0 {
        return Err(Error::ZeroPeriod);
    }
    claim_interrupt()?;
    irq::without_interrupts(|| {
        let mut state = STATE.lock();
        if state.periodic.is_some() {
            return Err(Error::Busy);
        }
        INTERRUPTS.store(0, Ordering::Relaxed);
        MISSED.store(0, Ordering::Relaxed);
        state.periodic = Some(Periodic {
            period,
            next: time::ticks().saturating_add(period),
            on_tick,
        });
        program(&state);
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

    /// Stops the periods; returns the number of interrupts taken.
    pub fn stop(self) -> u64 {
        self.interrupts()
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        irq::without_interrupts(|| {
            let mut state = STATE.lock();
            state.periodic = None;
            program(&state);
        });
    }
}

/// Sleeps for at least `duration`, giving the CPU away meanwhile: arms the virtual timer
/// and waits in `EXO_WAIT_EVENT` until the counter passes the deadline. Other interrupts are
/// handled while it sleeps. Needs [`irq::init`]; not for interrupt handlers or upcalls.
pub fn sleep(duration: Duration) -> Result<(), Error> {
    wait_until_instant(Instant::now().saturating_add(duration), || false).map(drop)
}

/// Waits until `condition` holds or `timeout` has passed, whichever is first, giving the CPU
/// away meanwhile (see [`irq::wait_until`]; `condition` is checked with IRQs masked and
/// should turn true from an interrupt handler). Returns whether the condition held.
pub fn wait_for(timeout: Duration, condition: impl FnMut() -> bool) -> Result<bool, Error> {
    wait_until_instant(Instant::now().saturating_add(timeout), condition)
}

/// Waits until `condition` holds or the counter reaches `deadline`; whether it held.
pub fn wait_until_instant(
    deadline: Instant,
    mut condition: impl FnMut() -> bool,
) -> Result<bool, Error> {
    claim_interrupt()?;
    let deadline = deadline.ticks();
    irq::without_interrupts(|| {
        let mut state = STATE.lock();
        state.wait = Some(deadline);
        program(&state);
    });
    let mut held = false;
    let result = irq::wait_until(|| {
        held = condition();
        held || time::ticks() >= deadline
    });
    irq::without_interrupts(|| {
        let mut state = STATE.lock();
        state.wait = None;
        program(&state);
    });
    result?;
    Ok(held)
}

/// Timed waits the timer interrupt ended so far.
pub fn wake_ups() -> u64 {
    WAKE_UPS.load(Ordering::Relaxed)
}

/// How late the last periodic interrupt was: counter ticks from the end of its period (the
/// deadline the hardware had) to the moment the library OS's timer handler read the
/// counter. Read it from the `on_tick` handler for the period just served.
pub fn last_lateness() -> u64 {
    LATENESS.load(Ordering::Relaxed)
}

/// The virtual timer's interrupt handler.
fn on_interrupt(_intid: u32) {
    let now = time::ticks();
    let on_tick = {
        let mut state = STATE.lock();
        let on_tick = match &mut state.periodic {
            Some(periodic) if now >= periodic.next => {
                LATENESS.store(now - periodic.next, Ordering::Relaxed);
                let (next, ended) = next_deadline(periodic.next, periodic.period, now);
                periodic.next = next;
                INTERRUPTS.fetch_add(1, Ordering::Relaxed);
                MISSED.fetch_add(ended - 1, Ordering::Relaxed);
                Some(periodic.on_tick)
            }
            _ => None,
        };
        if state.wait.is_some_and(|deadline| now >= deadline) {
            // The waiter sees the counter past its deadline; the hardware need not keep
            // interrupting for it.
            state.wait = None;
            WAKE_UPS.fetch_add(1, Ordering::Relaxed);
        }
        // Moves the deadline past `now` (or disables the timer), so the level-sensitive
        // interrupt deasserts before the dispatcher ends it.
        program(&state);
        on_tick
    };
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
    fn the_hardware_gets_the_earliest_deadline() {
        let periodic = Periodic {
            period: 10,
            next: 50,
            on_tick: || {},
        };
        let state = |periodic, wait| State { periodic, wait };
        assert_eq!(state(None, None).deadline(), None);
        assert_eq!(state(Some(periodic), None).deadline(), Some(50));
        assert_eq!(state(None, Some(70)).deadline(), Some(70));
        assert_eq!(state(Some(periodic), Some(70)).deadline(), Some(50));
        assert_eq!(state(Some(periodic), Some(20)).deadline(), Some(20));
    }

    #[test]
    fn the_timer_needs_a_period_and_interrupts() {
        assert_eq!(periodic(0, || {}).unwrap_err(), Error::ZeroPeriod);
        assert_eq!(
            periodic(10, || {}).unwrap_err(),
            Error::Irq(irq::Error::NotInitialised)
        );
        assert_eq!(
            sleep(Duration::from_millis(1)),
            Err(Error::Irq(irq::Error::NotInitialised))
        );
    }
}
