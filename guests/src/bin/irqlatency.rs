//! `irqlatency`: measures how long an interrupt takes to reach the library OS, for
//! `exo bench` (deterministic under QEMU `-icount`):
//!
//! - `spi_raise_to_handler_ticks`: from `EXO_IRQ_RAISE` on an SPI it owns to its handler:
//!   the hypercall, the physical interrupt taken at EL2, the list-register write, the
//!   virtual interrupt taken at EL1, the dispatcher;
//! - `signal_raise_to_handler_ticks`: the same for a virtual-only interrupt (the MESSAGE
//!   signal raised on itself), which has no physical interrupt on the way;
//! - `vtimer_to_handler_ticks`: from a virtual-timer deadline to the library OS's timer
//!   handler while the partition spins (the physical PPI taken at EL2, the list-register
//!   write with the hardware bit, the virtual interrupt taken at EL1, the dispatcher);
//! - `sleep_wake_late_ticks`: how long after its deadline a sleep on the virtual timer
//!   returns (`EXO_WAIT_EVENT`; the CPU idles in the kernel meanwhile).
//!
//! Each is a mean over many samples with IRQs unmasked, printed as a `bench` line.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use exo_guests::Failure;
use exo_libos::abi::call::signal;
use exo_libos::time::Duration;
use exo_libos::{ExitCode, Info, hypercall, irq, println, time, timer};

exo_libos::entry!(main);

/// The SPI it owns (the configuration must give it).
const SPI: u32 = 60;
/// Samples per measurement.
const SAMPLES: u64 = 500;

/// Counter value when the last interrupt's handler ran.
static TAKEN_AT: AtomicU64 = AtomicU64::new(0);
/// Interrupts taken.
static TAKEN: AtomicU64 = AtomicU64::new(0);

fn on_interrupt(_intid: u32) {
    TAKEN_AT.store(time::ticks(), Ordering::Relaxed);
    TAKEN.fetch_add(1, Ordering::Relaxed);
}

/// Mean ticks from `raise` to the handler, over [`SAMPLES`] samples.
fn measure(mut raise: impl FnMut() -> Result<u64, Failure>) -> Result<u64, Failure> {
    let mut total = 0;
    for _ in 0..SAMPLES {
        let before = TAKEN.load(Ordering::Relaxed);
        let start = raise()?;
        while TAKEN.load(Ordering::Relaxed) == before {
            core::hint::spin_loop();
        }
        total += TAKEN_AT.load(Ordering::Relaxed).saturating_sub(start);
    }
    Ok(total / SAMPLES)
}

/// Sum of the lateness of every virtual-timer period served.
static VTIMER_LATE: AtomicU64 = AtomicU64::new(0);

fn on_tick() {
    VTIMER_LATE.fetch_add(timer::last_lateness(), Ordering::Relaxed);
}

/// Mean ticks from a virtual-timer deadline to its handler over [`SAMPLES`] periods, the
/// partition spinning meanwhile (IRQs unmasked).
fn measure_vtimer() -> Result<u64, Failure> {
    // 100 µs: far longer than a handler runs, so no period is missed.
    let ticker = timer::periodic(
        time::ticks_from_duration(Duration::from_micros(100)),
        on_tick,
    )?;
    while ticker.interrupts() < SAMPLES {
        core::hint::spin_loop();
    }
    let (taken, missed) = (ticker.interrupts(), ticker.missed());
    drop(ticker);
    if missed != 0 {
        // A missed period would make the mean meaningless; say so in the line instead.
        println!("virtual timer: {missed} periods missed in {taken}");
    }
    Ok(VTIMER_LATE.load(Ordering::Relaxed) / taken)
}

fn main(info: &Info) -> Result<ExitCode, Failure> {
    irq::init(info)?;
    irq::bind(SPI, on_interrupt)?;
    irq::bind(signal::MESSAGE, on_interrupt)?;
    irq::enable()?;
    let spi = measure(|| {
        let start = time::ticks();
        hypercall::irq_raise(SPI)?;
        Ok(start)
    })?;
    let virtual_only = measure(|| {
        let start = time::ticks();
        hypercall::irq_raise(signal::MESSAGE)?;
        Ok(start)
    })?;
    let vtimer = measure_vtimer()?;
    irq::disable();
    // The timer: sleep to a deadline; how late the sleeper is back (with nothing else to
    // run, the CPU idles in the kernel until the virtual timer fires).
    let mut late = 0;
    for _ in 0..SAMPLES {
        let due = time::Instant::now().saturating_add(Duration::from_micros(100));
        timer::wait_until_instant(due, || false)?;
        late += time::ticks().saturating_sub(due.ticks());
    }
    let late = late / SAMPLES;
    println!(
        "bench spi_raise_to_handler_ticks={spi} signal_raise_to_handler_ticks={virtual_only} \
         vtimer_to_handler_ticks={vtimer} sleep_wake_late_ticks={late} samples={SAMPLES}"
    );
    Ok(ExitCode::SUCCESS)
}
