//! `checker`: yields over and over while `leaker` spins with its registers full of a pattern,
//! and checks after every return that none of its own registers (general, SIMD, thread
//! registers) holds that pattern.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_guests::registers::is_pattern;
use exo_libos::registers::Snapshot;
use exo_libos::{ExitCode, Info, println};

exo_libos::entry!(main);

/// Switches to observe.
const SNAPSHOTS: u32 = 200;

fn main(_info: &Info) -> ExitCode {
    for round in 0..SNAPSHOTS {
        let snapshot = Snapshot::after_yield();
        let mut leaked = snapshot.holding(is_pattern).peekable();
        if leaked.peek().is_some() {
            for register in leaked {
                println!("after switch {round}: {register} holds the other partition's pattern");
            }
            return ExitCode::FAILURE;
        }
    }
    println!("no register of another partition leaked in {SNAPSHOTS} switches");
    ExitCode::SUCCESS
}
