//! `latency`: measures what the kernel costs a library OS, for `exo bench` (under QEMU
//! `-icount` the counts are deterministic): a null hypercall (`EXO_ABI_VERSION`), and a
//! yield to another partition and back (two world switches), averaged over many rounds.
//! Run two of them: both measure, the first (partition 0) reports `bench <metric>=<ticks>`.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::hypercall;
use exo_libos::{Error, ExitCode, Info, println, time};

exo_libos::entry!(main);

/// Rounds per measurement.
const ROUNDS: u64 = 2000;

fn main(info: &Info) -> Result<ExitCode, Error> {
    let start = time::ticks();
    for _ in 0..ROUNDS {
        hypercall::abi_version()?;
    }
    let null = (time::ticks() - start) / ROUNDS;
    // Both partitions past their first phase before the second starts.
    hypercall::yield_now()?;
    let start = time::ticks();
    for _ in 0..ROUNDS {
        hypercall::yield_now()?;
    }
    let switch = (time::ticks() - start) / ROUNDS;
    if info.partition_id() == 0 {
        println!(
            "bench null_hypercall_ticks={null} yield_round_trip_ticks={switch} rounds={ROUNDS}"
        );
    }
    Ok(ExitCode::SUCCESS)
}
