//! `leaker`: keeps every register it can full of a recognisable pattern while the time slice
//! preempts it, over and over, for as long as `checker` runs. If the kernel's world switch
//! leaked any of them, `checker` would find the pattern in its own registers.
//!
//! It knows `checker` has finished when a grant to it is refused with `UnknownPartition`
//! (the kernel grants only to live partitions); it asks between rounds.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_guests::registers::PATTERN;
use exo_libos::abi::Rights;
use exo_libos::mem::{self, call};
use exo_libos::time::Deadline;
use exo_libos::{Error, ExitCode, Info, println, registers};

exo_libos::entry!(main);

/// Loop iterations per round (about half a time slice under QEMU).
const SPINS: u64 = 2_000_000;
/// How long to wait for `checker` to finish.
const WAIT_MS: u64 = 60_000;

fn main(_info: &Info) -> Result<ExitCode, Error> {
    let checker = call::partition_lookup("checker")?;
    let probe = mem::alloc_one()?;
    println!("spinning with {PATTERN:#x} in every register");
    let deadline = Deadline::after_millis(WAIT_MS);
    let mut rounds = 0u64;
    loop {
        registers::spin_with_pattern(PATTERN, SPINS);
        rounds += 1;
        match call::grant(probe, checker, Rights::READ) {
            Ok(()) => call::grant_revoke(probe, checker)?,
            Err(Error::UnknownPartition) => break,
            Err(error) => return Err(error),
        }
        if deadline.passed() {
            println!("checker still running after {rounds} rounds");
            return Ok(ExitCode::FAILURE);
        }
    }
    println!("done: {rounds} rounds, until the checker finished");
    Ok(ExitCode::SUCCESS)
}
