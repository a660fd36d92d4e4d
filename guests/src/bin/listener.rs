//! `listener`: takes messages as the `MESSAGE` signal (virtual interrupt 10) instead of
//! upcalls, and sleeps in `EXO_WAIT_EVENT` between them: each message must wake it. Expects
//! the words 1..=20 from `messenger`, in order, none as an upcall.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use exo_guests::Failure;
use exo_libos::ipc::{self, PartitionId};
use exo_libos::time::Duration;
use exo_libos::{ExitCode, Info, irq, println, timer, upcall};

exo_libos::entry!(main);

/// Messages expected.
const MESSAGES: u64 = 20;

static RECEIVED: AtomicU64 = AtomicU64::new(0);
/// Set if a word arrived out of order.
static OUT_OF_ORDER: AtomicU64 = AtomicU64::new(0);

fn on_message(_sender: PartitionId, word: u64) {
    let count = RECEIVED.fetch_add(1, Ordering::Relaxed) + 1;
    if word != count {
        OUT_OF_ORDER.store(word, Ordering::Relaxed);
    }
}

fn main(info: &Info) -> Result<ExitCode, Failure> {
    irq::init(info)?;
    ipc::receive_by_interrupt(on_message)?;
    println!("waiting for {MESSAGES} messages as the MESSAGE signal");
    let mut wake_ups = 0u64;
    while RECEIVED.load(Ordering::Relaxed) < MESSAGES {
        let before = RECEIVED.load(Ordering::Relaxed);
        let arrived = timer::wait_for(Duration::from_secs(5), || {
            RECEIVED.load(Ordering::Relaxed) > before
        })?;
        if !arrived {
            println!("no message for 5 s after {before}");
            return Ok(ExitCode::FAILURE);
        }
        wake_ups += 1;
    }
    let out_of_order = OUT_OF_ORDER.load(Ordering::Relaxed);
    let upcalls = upcall::counts().message;
    if out_of_order != 0 || upcalls != 0 {
        println!("word {out_of_order} out of order; {upcalls} messages came as upcalls");
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "{MESSAGES} messages received in order as the MESSAGE signal ({wake_ups} wake-ups), \
         none as an upcall"
    );
    Ok(ExitCode::SUCCESS)
}
