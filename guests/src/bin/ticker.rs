//! `ticker`: takes interrupts from its own EL1 virtual timer. Sets up the virtual CPU
//! interface the info page names (GICv3 or GICv2), arms a 5 ms periodic timer and spins, with
//! no hypercall and no yield, until 20 timer interrupts have arrived (or 2 s have passed),
//! while the other partitions spin too. The kernel injects the interrupts through its list
//! registers whenever this partition runs.
//!
//! It watches the spinner spin: the spinner grants it a frame holding its loop count, and at
//! each timer interrupt it reads the count, so it can say in how many timer periods the
//! spinner made progress (it runs in the time slices between the ticker's).

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::abi::BindAttributes;
use exo_libos::mem::call;
use exo_libos::time::{self, Deadline};
use exo_libos::upcall::{self, Access, FaultResolution};
use exo_libos::{ExitCode, Info, Ipa, hypercall, irq, println, probe, timer};

use core::sync::atomic::{AtomicBool, Ordering};

exo_libos::entry!(main);

/// The timer period.
const PERIOD_MS: u64 = 5;
/// Interrupts to wait for.
const WANTED: u64 = 20;
/// How long to wait for them.
const LIMIT_MS: u64 = 2000;
/// Where it binds the spinner's loop count.
const PROGRESS_IPA: Ipa = Ipa::new(0x40_0000_0000);

/// The spinner has ended, taking its grant with it: its count is gone.
static SPINNER_GONE: AtomicBool = AtomicBool::new(false);

fn spinner_gone(_ipa: Ipa, _access: Access) -> FaultResolution {
    SPINNER_GONE.store(true, Ordering::Relaxed);
    FaultResolution::Skip
}

/// Binds the frame the spinner granted (waiting for it, yielding, up to 2 s).
fn spinner_progress() -> Option<Ipa> {
    let deadline = Deadline::after_millis(LIMIT_MS);
    loop {
        if let Ok(grant) = call::grant_query(0) {
            call::bind(grant.phys, PROGRESS_IPA, BindAttributes::READ).ok()?;
            return Some(PROGRESS_IPA);
        }
        if deadline.passed() || hypercall::yield_now().is_err() {
            return None;
        }
    }
}

fn main(info: &Info) -> ExitCode {
    if let Err(why) = irq::init(info) {
        println!("no interrupts: {why}");
        return ExitCode::FAILURE;
    }
    let Some(progress) = spinner_progress() else {
        println!("the spinner granted no frame");
        return ExitCode::FAILURE;
    };
    if upcall::set_fault_handler(spinner_gone).is_err() {
        println!("cannot set a fault handler");
        return ExitCode::FAILURE;
    }
    let count = |last: u64| {
        let value = probe::read_u64(progress).unwrap_or(last);
        if SPINNER_GONE.load(Ordering::Relaxed) {
            last
        } else {
            value
        }
    };
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
    let first_count = count(0);
    let (mut seen, mut last_count, mut periods_spinner_ran) = (0, first_count, 0);
    while ticker.interrupts() < WANTED && !deadline.passed() {
        spins = spins.wrapping_add(1);
        if ticker.interrupts() != seen {
            seen = ticker.interrupts();
            let now = count(last_count);
            if now != last_count {
                periods_spinner_ran += 1;
                last_count = now;
            }
        }
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
    println!(
        "the spinner's count advanced in {periods_spinner_ran} timer periods ({first_count} -> \
         {last_count})"
    );
    ExitCode::SUCCESS
}
