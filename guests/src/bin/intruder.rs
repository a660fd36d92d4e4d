//! `intruder`: owns SPI 51 only, and tries to take SPI 50, which `irqowner` owns and raises
//! meanwhile. Every round (yielding between rounds, so the owner's interrupts are in flight)
//! it checks that enabling, disabling, prioritising, targeting and raising SPI 50 are all
//! `NotOwner`, so is the kernel console's SPI 33, that INTIDs 1020 and 1023 are
//! `InvalidParameter`, and that its own SPI 51 still works. With IRQs unmasked throughout, a
//! handler on SPI 50 and a catch-all would see any interrupt that leaked: there must be none.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use exo_guests::{Failure, refused_with};
use exo_libos::time::Duration;
use exo_libos::{Error, ExitCode, Info, hypercall, irq, println, timer};

exo_libos::entry!(main);

/// The other partition's SPI.
const FOREIGN: u32 = 50;
/// This partition's own SPI.
const OWN: u32 = 51;
/// The kernel console UART's interrupt on QEMU virt (SPI 1): nobody's.
const CONSOLE: u32 = 33;
/// Rounds of attempts.
const ROUNDS: u64 = 30;

static OWN_RECEIVED: AtomicU64 = AtomicU64::new(0);
static FOREIGN_RECEIVED: AtomicU64 = AtomicU64::new(0);
static STRAY: AtomicU64 = AtomicU64::new(0);

fn on_own(_intid: u32) {
    OWN_RECEIVED.fetch_add(1, Ordering::Relaxed);
}

fn on_foreign(intid: u32) {
    println!("took interrupt {intid}, which belongs to another partition");
    FOREIGN_RECEIVED.fetch_add(1, Ordering::Relaxed);
}

fn on_stray(intid: u32) {
    println!("took interrupt {intid}, which nobody gave this partition");
    STRAY.fetch_add(1, Ordering::Relaxed);
}

fn main(info: &Info) -> Result<ExitCode, Failure> {
    irq::init(info)?;
    if info.owned_interrupts().any(|intid| intid == FOREIGN) {
        println!("the configuration must not give this partition SPI {FOREIGN}");
        return Ok(ExitCode::FAILURE);
    }
    irq::set_fallback(Some(on_stray));
    irq::register(FOREIGN, on_foreign)?;
    irq::bind(OWN, on_own)?;
    irq::enable()?;
    println!("trying SPI {FOREIGN} for {ROUNDS} rounds while its owner raises it");

    for round in 1..=ROUNDS {
        if !refusals() {
            println!("round {round}: a call that should have been refused was not");
            return Ok(ExitCode::FAILURE);
        }
        hypercall::irq_raise(OWN)?;
        if !timer::wait_for(Duration::from_secs(1), || {
            OWN_RECEIVED.load(Ordering::Relaxed) >= round
        })? {
            println!("round {round}: own SPI {OWN} did not arrive");
            return Ok(ExitCode::FAILURE);
        }
        hypercall::yield_now()?;
    }

    timer::sleep(Duration::from_millis(20))?;
    irq::disable();
    let own = OWN_RECEIVED.load(Ordering::Relaxed);
    let foreign = FOREIGN_RECEIVED.load(Ordering::Relaxed);
    let stray = STRAY.load(Ordering::Relaxed);
    if foreign != 0 || stray != 0 || own != ROUNDS {
        println!(
            "received SPI {FOREIGN} {foreign} times, other interrupts {stray} times, own SPI \
             {OWN} {own} times (expected {ROUNDS})"
        );
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "{ROUNDS} rounds: enable, disable, priority, target and raise of SPI {FOREIGN} and \
         SPI {CONSOLE} all NotOwner; INTIDs 1020 and 1023 InvalidParameter"
    );
    println!("own SPI {OWN} received {own} times; SPI {FOREIGN} never");
    Ok(ExitCode::SUCCESS)
}

/// Every call on an interrupt this partition does not own; `true` if each was refused as it
/// should be.
fn refusals() -> bool {
    let mut all = true;
    for intid in [FOREIGN, CONSOLE] {
        all &= refused_with(
            format_args!("irq_enable({intid})"),
            hypercall::irq_enable(intid),
            Error::NotOwner,
        );
        all &= refused_with(
            format_args!("irq_disable({intid})"),
            hypercall::irq_disable(intid),
            Error::NotOwner,
        );
        all &= refused_with(
            format_args!("irq_set_priority({intid})"),
            hypercall::irq_set_priority(intid, 0),
            Error::NotOwner,
        );
        all &= refused_with(
            format_args!("irq_set_target({intid})"),
            hypercall::irq_set_target(intid, 0),
            Error::NotOwner,
        );
        all &= refused_with(
            format_args!("irq_raise({intid})"),
            hypercall::irq_raise(intid),
            Error::NotOwner,
        );
    }
    for intid in [1020, 1023] {
        all &= refused_with(
            format_args!("irq_enable({intid})"),
            hypercall::irq_enable(intid),
            Error::InvalidParameter,
        );
        all &= refused_with(
            format_args!("irq_raise({intid})"),
            hypercall::irq_raise(intid),
            Error::InvalidParameter,
        );
    }
    all
}
