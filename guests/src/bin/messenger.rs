//! `messenger`: sends `listener` the words 1..=20 with `EXO_SEND`, yielding after each and
//! retrying while the previous one has not been taken (`Busy`).

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::ipc;
use exo_libos::mem::call::partition_lookup;
use exo_libos::{Error, ExitCode, Info, hypercall, println};

exo_libos::entry!(main);

/// Words to send.
const MESSAGES: u64 = 20;
/// Attempts per word before giving up.
const ATTEMPTS: u32 = 10_000;

fn main(_info: &Info) -> Result<ExitCode, Error> {
    let listener = partition_lookup("listener")?;
    let mut busy = 0u64;
    for word in 1..=MESSAGES {
        let mut sent = false;
        for _ in 0..ATTEMPTS {
            match ipc::send(listener, word) {
                Ok(()) => {
                    sent = true;
                    break;
                }
                Err(Error::Busy) => busy += 1,
                Err(error) => return Err(error),
            }
            hypercall::yield_now()?;
        }
        if !sent {
            println!("word {word} was never taken");
            return Ok(ExitCode::FAILURE);
        }
        hypercall::yield_now()?;
    }
    println!("{MESSAGES} messages sent ({busy} times busy)");
    Ok(ExitCode::SUCCESS)
}
