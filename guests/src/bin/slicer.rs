//! `slicer`: spins without a hypercall until the system counter reaches half a second after
//! boot, counting loop iterations, then prints how many: a measure of the CPU time its
//! slots in the time-slice vector gave it. Partitions running it side by side end at the
//! same moment, so their counts compare their shares of the CPU. It also counts how often
//! it lost the CPU (the counter jumped by more than [`GAP_MICROS`] between two iterations):
//! a measure of the time-slice length.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::{Error, ExitCode, Info, println, time};

exo_libos::entry!(main);

/// When every slicer stops: this many milliseconds of counter time after boot.
pub const END_MILLIS: u64 = 500;

/// A jump of the counter longer than this between two iterations is time another partition
/// had: one iteration takes well under a microsecond.
pub const GAP_MICROS: u64 = 50;

fn main(_info: &Info) -> Result<ExitCode, Error> {
    let end = time::ticks_from_millis(END_MILLIS);
    let gap = time::ticks_from_duration(core::time::Duration::from_micros(GAP_MICROS));
    let mut spins: u64 = 0;
    let mut lost: u64 = 0;
    let mut last = time::ticks();
    while last < end {
        let now = time::ticks();
        if now - last > gap {
            lost += 1;
        }
        last = now;
        spins += 1;
    }
    println!("spun {spins} times");
    println!("lost the CPU {lost} times");
    Ok(ExitCode::SUCCESS)
}
