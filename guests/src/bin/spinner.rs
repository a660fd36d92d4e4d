//! `spinner`: computes for 300 ms without a single hypercall. Under cooperative scheduling
//! it would hold the CPU all that time; with time slices the other partitions keep running.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::time::Deadline;
use exo_libos::{ExitCode, Info, println};

exo_libos::entry!(main);

/// How long to spin.
const SPIN_MS: u64 = 300;

fn main(_info: &Info) -> ExitCode {
    println!("spinning for {SPIN_MS} ms without a hypercall");
    let deadline = Deadline::after_millis(SPIN_MS);
    let mut spins: u64 = 0;
    while !deadline.passed() {
        spins = spins.wrapping_add(1);
        core::hint::spin_loop();
    }
    println!("done spinning ({spins} iterations)");
    ExitCode::SUCCESS
}
