//! `spinner`: computes for 300 ms without a single hypercall. Under cooperative scheduling
//! it would hold the CPU all that time; with time slices the other partitions keep running.
//!
//! When a partition named `ticker` exists, it first grants it, read-only, a frame where it
//! then keeps its loop count (plain stores, no hypercall), so the ticker can watch it spin.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::abi::{BindAttributes, Rights};
use exo_libos::mem::{self, call};
use exo_libos::time::Deadline;
use exo_libos::{ExitCode, Info, Ipa, println, probe};

exo_libos::entry!(main);

/// How long to spin.
const SPIN_MS: u64 = 300;

/// Grants the ticker a frame for the loop count; where it is bound here.
fn share_progress() -> Option<Ipa> {
    let ticker = call::partition_lookup("ticker").ok()?;
    let (phys, ipa) = mem::alloc_mapped(BindAttributes::READ_WRITE).ok()?;
    call::grant(phys, ticker, Rights::READ).ok()?;
    Some(ipa)
}

fn main(_info: &Info) -> ExitCode {
    let progress = share_progress();
    println!(
        "spinning for {SPIN_MS} ms without a hypercall{}",
        if progress.is_some() {
            " (loop count shared with ticker)"
        } else {
            ""
        }
    );
    let deadline = Deadline::after_millis(SPIN_MS);
    let mut spins: u64 = 0;
    while !deadline.passed() {
        spins = spins.wrapping_add(1);
        if let Some(ipa) = progress {
            let _ = probe::write_u64(ipa, spins);
        }
        core::hint::spin_loop();
    }
    println!("done spinning ({spins} iterations)");
    ExitCode::SUCCESS
}
