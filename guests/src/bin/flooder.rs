//! `flooder`: floods itself with its own interrupts. It owns 16 SPIs (48..=63); with IRQs
//! masked it raises all of them (`EXO_IRQ_RAISE`), which is more pending at once than the
//! four list registers QEMU's GIC has, then waits for them with IRQs let in, and checks that
//! every one was handled exactly once. 200 rounds; a short quiet wait at the end catches late
//! duplicates. Exits 1 at the first INTID lost or delivered twice.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use exo_guests::Failure;
use exo_libos::time::{Duration, Instant};
use exo_libos::{ExitCode, Info, hypercall, irq, println, timer};

exo_libos::entry!(main);

/// The first SPI owned.
const FIRST: u32 = 48;
/// How many, from [`FIRST`].
const COUNT: usize = 16;
/// Rounds of raising all of them.
const ROUNDS: u64 = 200;
/// How long one round may take before it counts as lost.
const ROUND_LIMIT: Duration = Duration::from_secs(2);

/// Interrupts taken, per INTID from [`FIRST`].
static RECEIVED: [AtomicU64; COUNT] = [const { AtomicU64::new(0) }; COUNT];
static TOTAL: AtomicU64 = AtomicU64::new(0);
/// Interrupts of any other INTID.
static STRAY: AtomicU64 = AtomicU64::new(0);

fn on_spi(intid: u32) {
    match intid.checked_sub(FIRST).map(|i| i as usize) {
        Some(index) if index < COUNT => {
            RECEIVED[index].fetch_add(1, Ordering::Relaxed);
            TOTAL.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            STRAY.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn on_stray(intid: u32) {
    println!("interrupt {intid} has no handler");
    STRAY.fetch_add(1, Ordering::Relaxed);
}

fn spis() -> impl Iterator<Item = u32> {
    FIRST..FIRST + COUNT as u32
}

fn main(info: &Info) -> Result<ExitCode, Failure> {
    let kind = irq::init(info)?;
    let owned = info.owned_interrupts().filter(|i| spis().any(|s| s == *i));
    if owned.count() != COUNT {
        println!(
            "the configuration must give this partition SPIs {FIRST}..={}",
            FIRST + COUNT as u32 - 1
        );
        return Ok(ExitCode::FAILURE);
    }
    irq::set_fallback(Some(on_stray));
    for (i, intid) in spis().enumerate() {
        irq::bind(intid, on_spi)?;
        // Four priority levels, so the interrupts also overtake each other in the list.
        hypercall::irq_set_priority(intid, 0x80 + 0x10 * (i % 4) as u8)?;
        hypercall::irq_set_target(intid, 0)?;
    }
    println!(
        "{kind:?} CPU interface; raising SPIs {FIRST}..={} {ROUNDS} times",
        FIRST + COUNT as u32 - 1
    );

    let start = Instant::now();
    for round in 1..=ROUNDS {
        // IRQs are masked here: all 16 become pending before any is taken.
        for intid in spis() {
            hypercall::irq_raise(intid)?;
        }
        let expected = round * COUNT as u64;
        let arrived = timer::wait_for(ROUND_LIMIT, || TOTAL.load(Ordering::Relaxed) >= expected)?;
        if !arrived || !each_received(round) {
            return Ok(ExitCode::FAILURE);
        }
    }
    let elapsed = start.elapsed();

    // Anything still to come is a duplicate.
    timer::sleep(Duration::from_millis(20))?;
    if !each_received(ROUNDS) {
        return Ok(ExitCode::FAILURE);
    }
    let stray = STRAY.load(Ordering::Relaxed);
    if stray != 0 {
        println!("{stray} interrupts of other INTIDs arrived");
        return Ok(ExitCode::FAILURE);
    }
    let total = TOTAL.load(Ordering::Relaxed);
    println!(
        "{total} interrupts in {ROUNDS} rounds of {COUNT}, each INTID handled once per round: \
         none lost, none duplicated ({} ms)",
        elapsed.as_millis()
    );
    Ok(ExitCode::SUCCESS)
}

/// Whether every SPI was taken exactly `times` times; prints the first that was not.
fn each_received(times: u64) -> bool {
    for (intid, received) in spis().zip(RECEIVED.iter()) {
        let received = received.load(Ordering::Relaxed);
        if received != times {
            let what = if received < times {
                "lost"
            } else {
                "duplicated"
            };
            println!(
                "round {times}: SPI {intid} taken {received} times, expected {times} ({what})"
            );
            return false;
        }
    }
    true
}
