//! `leaker`: keeps every register it can full of a recognisable pattern while the time slice
//! preempts it, over and over. If the kernel's world switch leaked any of them, `checker`
//! would find the pattern in its own registers.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_guests::registers::PATTERN;
use exo_libos::{ExitCode, Info, println, registers};

exo_libos::entry!(main);

/// Rounds of spinning with the pattern loaded.
const ROUNDS: u64 = 40;
/// Loop iterations per round (a few time slices' worth under QEMU).
const SPINS: u64 = 2_000_000;

fn main(_info: &Info) -> ExitCode {
    println!("spinning with {PATTERN:#x} in every register");
    for _ in 0..ROUNDS {
        registers::spin_with_pattern(PATTERN, SPINS);
    }
    println!("done");
    ExitCode::SUCCESS
}
