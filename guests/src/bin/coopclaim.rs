//! `coopclaim`: measures cooperative revocation end to end, from the claim to the claimant
//! resumed with its frames, for a claim of the frames its guarantee leaves.
//!
//! It waits (yielding) until the borrowers have taken every free frame, then claims with
//! `EXO_FRAME_ALLOC` in calls of at most `FRAME_ALLOC_MAX` frames, and prints
//! `bench coop_claim_ticks=<ticks> coop_claim_frames=<frames>` (counter ticks from the
//! first call to the return of the last), and with several calls the first's and the
//! last's.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::abi::call::FRAME_ALLOC_MAX;
use exo_libos::mem::{self, call};
use exo_libos::time::{self, Deadline};
use exo_libos::{Error, ExitCode, Info, PhysAddr, println};

exo_libos::entry!(main);

/// How long to wait for the borrowers to grow.
const WAIT_MS: u64 = 40_000;

fn main(_info: &Info) -> Result<ExitCode, Error> {
    let usage = call::mem_info()?;
    let want = usage.guaranteed.saturating_sub(usage.held);
    if want == 0 {
        println!("nothing to claim");
        return Ok(ExitCode::FAILURE);
    }
    let deadline = Deadline::after_millis(WAIT_MS);
    while call::mem_info()?.free > 0 && !deadline.passed() {
        mem::yield_now()?;
    }
    let mut batch = [PhysAddr::new(0); 512];
    let start = time::ticks();
    let mut claimed = 0;
    let (mut calls, mut first_call, mut last_call) = (0, 0, 0);
    while claimed < want {
        let count = (want - claimed)
            .min(FRAME_ALLOC_MAX)
            .min(batch.len() as u64) as usize;
        let call_start = time::ticks();
        claimed += call::frame_alloc(&mut batch[..count])? as u64;
        last_call = time::ticks() - call_start;
        if calls == 0 {
            first_call = last_call;
        }
        calls += 1;
    }
    let ticks = time::ticks() - start;
    println!("bench coop_claim_ticks={ticks} coop_claim_frames={claimed}");
    if calls > 1 {
        println!(
            "bench coop_claim_calls={calls} coop_first_call_ticks={first_call} \
             coop_last_call_ticks={last_call}"
        );
    }
    Ok(ExitCode::SUCCESS)
}
