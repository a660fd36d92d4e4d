//! `ticker`: takes interrupts from its own EL1 virtual timer. Sets up the virtual CPU
//! interface the info page names (GICv3 or GICv2), arms a 5 ms periodic timer and spins, with
//! no hypercall and no yield, until 20 timer interrupts have arrived (or 2 s have passed),
//! while the other partitions spin too. The kernel injects the interrupts through its list
//! registers whenever this partition runs.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::time::{self, Deadline};
use exo_libos::{ExitCode, Info, irq, println, timer};

exo_libos::entry!(main);

/// The timer period.
const PERIOD_MS: u64 = 5;
/// Interrupts to wait for.
const WANTED: u64 = 20;
/// How long to wait for them.
const LIMIT_MS: u64 = 2000;

fn main(info: &Info) -> ExitCode {
    if let Err(why) = irq::init(info) {
        println!("no interrupts: {why}");
        return ExitCode::FAILURE;
    }
    let start = time::ticks();
    let ticker = match timer::periodic(time::ticks_from_millis(PERIOD_MS), || {}) {
        Ok(ticker) => ticker,
        Err(error) => {
            println!("cannot start the timer: {error:?}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = irq::enable() {
        println!("cannot enable interrupts: {error}");
        return ExitCode::FAILURE;
    }
    let deadline = Deadline::after_millis(LIMIT_MS);
    let mut spins: u64 = 0;
    while ticker.interrupts() < WANTED && !deadline.passed() {
        spins = spins.wrapping_add(1);
        core::hint::spin_loop();
    }
    irq::disable();
    let missed = ticker.missed();
    let interrupts = ticker.stop();
    let elapsed = time::millis_from_ticks(time::ticks() - start);
    let others = info.partition_count().saturating_sub(1);
    let (handled, unhandled) = irq::counts();
    if interrupts < WANTED {
        println!(
            "only {interrupts} timer interrupts in {elapsed} ms (wanted {WANTED}; \
             {handled} handled, {unhandled} without a handler)"
        );
        return ExitCode::FAILURE;
    }
    println!(
        "{interrupts} timer interrupts in {elapsed} ms while {others} other partition(s) spun \
         ({missed} periods missed, {spins} spins)"
    );
    ExitCode::SUCCESS
}
