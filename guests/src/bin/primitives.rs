//! `primitives`: the distribution, not only the mean, of two kernel paths a library OS uses
//! all the time, for `exo bench` (`guests/configs/bench-primitives.toml`):
//!
//! - `null_hypercall`: one `EXO_ABI_VERSION` call, timed alone;
//! - `stage2_fault_to_handler` and `stage2_fault_round_trip`: a load from an IPA bound to
//!   nothing, reflected by the kernel to the library OS's fault handler (which skips the
//!   load), from the load to the handler running and to the program resumed.
//!
//! Each is sampled [`SAMPLES`] times; the samples are sorted and printed after the timed
//! loops as `bench <name>_{min,median,p99,max}_ticks=<n>` (nearest rank, as the host tool
//! defines them: docs/benchmarks.md). A counter tick is 16 instructions under `-icount`, so
//! the figures are coarse: a null hypercall is about 31 ticks.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use exo_libos::upcall::{self, Access, FaultResolution};
use exo_libos::{Error, ExitCode, Info, Ipa, hypercall, println, probe, time};

exo_libos::entry!(main);

/// Samples per measurement.
const SAMPLES: usize = 1000;
/// An IPA in the frame window that nothing is bound at.
const UNBOUND: Ipa = Ipa::new(0x7F_0000_0000);

/// When the fault handler last ran.
static HANDLED_AT: AtomicU64 = AtomicU64::new(0);

fn skip(_ipa: Ipa, _access: Access) -> FaultResolution {
    HANDLED_AT.store(time::ticks(), Ordering::Relaxed);
    FaultResolution::Skip
}

fn main(_info: &Info) -> Result<ExitCode, Error> {
    upcall::set_fault_handler(skip)?;
    let mut null = [0u64; SAMPLES];
    for sample in null.iter_mut() {
        let start = time::ticks();
        hypercall::abi_version()?;
        *sample = time::ticks() - start;
    }
    let mut to_handler = [0u64; SAMPLES];
    let mut round_trip = [0u64; SAMPLES];
    for (into, back) in to_handler.iter_mut().zip(round_trip.iter_mut()) {
        let start = time::ticks();
        let _ = probe::read_u64(UNBOUND);
        let end = time::ticks();
        *into = HANDLED_AT.load(Ordering::Relaxed).saturating_sub(start);
        *back = end - start;
    }
    report("null_hypercall", &mut null);
    report("stage2_fault_to_handler", &mut to_handler);
    report("stage2_fault_round_trip", &mut round_trip);
    Ok(ExitCode::SUCCESS)
}

/// Prints min, median, p99 and max of `samples` (nearest rank) as one `bench` line.
fn report(name: &str, samples: &mut [u64]) {
    samples.sort_unstable();
    let rank = |percent: usize| samples[(percent * samples.len()).div_ceil(100).max(1) - 1];
    println!(
        "bench {name}_min_ticks={} {name}_median_ticks={} {name}_p99_ticks={} \
         {name}_max_ticks={}",
        samples[0],
        rank(50),
        rank(99),
        samples[samples.len() - 1]
    );
}
