//! `checker`: yields over and over while `leaker` spins with its registers full of a pattern,
//! and checks after every return that none of its own registers (general, SIMD, thread
//! registers) holds that pattern.
//!
//! Its positive control: it times each yield. A yield that comes back after half a time
//! slice or more gave the CPU to the leaker, which spends its time in the loop with the
//! pattern loaded; it prints how many did, so a test can check the leaker was really
//! preempted with the pattern in its registers while the checker watched.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_guests::registers::is_pattern;
use exo_libos::registers::Snapshot;
use exo_libos::{ExitCode, Info, println, time};

exo_libos::entry!(main);

/// Switches to observe.
const SNAPSHOTS: u32 = 200;

fn main(info: &Info) -> ExitCode {
    // Half of the kernel's 10 ms time slice.
    let half_slice = info.timer_frequency() / 200;
    let mut after_leaker = 0;
    for round in 0..SNAPSHOTS {
        let before = time::ticks();
        let snapshot = Snapshot::after_yield();
        if time::ticks().saturating_sub(before) >= half_slice {
            after_leaker += 1;
        }
        let mut leaked = snapshot.holding(is_pattern).peekable();
        if leaked.peek().is_some() {
            for register in leaked {
                println!("after switch {round}: {register} holds the other partition's pattern");
            }
            return ExitCode::FAILURE;
        }
    }
    println!(
        "no register of another partition leaked in {SNAPSHOTS} switches; \
         {after_leaker} came back after a time slice of the leaker"
    );
    ExitCode::SUCCESS
}
