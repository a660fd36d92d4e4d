//! `slicer`: spins without a hypercall until the system counter reaches half a second after
//! boot, counting loop iterations, then prints how many: a measure of the CPU time its
//! slots in the time-slice vector gave it. Partitions running it side by side end at the
//! same moment, so their counts compare their shares of the CPU.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::{Error, ExitCode, Info, println, time};

exo_libos::entry!(main);

/// When every slicer stops: this many milliseconds of counter time after boot.
pub const END_MILLIS: u64 = 500;

fn main(_info: &Info) -> Result<ExitCode, Error> {
    let end = time::ticks_from_millis(END_MILLIS);
    let mut spins: u64 = 0;
    while time::ticks() < end {
        spins += 1;
    }
    println!("spun {spins} times");
    Ok(ExitCode::SUCCESS)
}
