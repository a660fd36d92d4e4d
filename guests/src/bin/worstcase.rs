//! `worstcase`: constructs the longest stretches a library OS can keep the kernel busy with
//! interrupts masked, for `exo bench` (guests/configs/bench-worstcase.toml; under QEMU
//! `-icount` the counts are deterministic). Run two: partition 0 (`worst`) holds almost all
//! of RAM, partition 1 (`watch`) times what it cannot time itself.
//!
//! Measured, in counter ticks (16 instructions each):
//! - `self_check_ticks`: `EXO_SELF_CHECK` (a capability) over every frame and stage 2;
//! - `alloc_max_ticks`: the slowest `EXO_FRAME_ALLOC` of [`FRAME_ALLOC_MAX`] frames (each
//!   zeroed and cleaned to the point of coherency) while `worst` takes all it may hold;
//! - `exit_ticks`: `worst` ending while it holds all that (every frame scrubbed and freed),
//!   timed by `watch` across one yield: a round trip and the exit.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::abi::call::FRAME_ALLOC_MAX;
use exo_libos::abi::{BindAttributes, Rights};
use exo_libos::mem::{self, call};
use exo_libos::time::{self, Deadline};
use exo_libos::{Error, ExitCode, Info, PhysAddr, hypercall, println};

exo_libos::entry!(main);

/// How long `watch` waits for `worst` to be ready.
const WAIT_MS: u64 = 600_000;

fn main(info: &Info) -> Result<ExitCode, Error> {
    if info.partition_id() == 0 {
        worst()
    } else {
        watch()
    }
}

fn worst() -> Result<ExitCode, Error> {
    // The frame whose grant tells `watch` this partition is ready, taken while it can be.
    let (flag, _) = mem::alloc_mapped(BindAttributes::READ_WRITE)?;
    let start = time::ticks();
    let frames = call::self_check()?;
    let self_check = time::ticks() - start;
    let mut names = [PhysAddr::new(0); FRAME_ALLOC_MAX as usize];
    let mut slowest = 0;
    let mut held = 0u64;
    loop {
        let start = time::ticks();
        match call::frame_alloc(&mut names) {
            Ok(count) => held += count as u64,
            Err(Error::QuotaExhausted | Error::OutOfMemory) => break,
            Err(error) => return Err(error),
        }
        slowest = slowest.max(time::ticks() - start);
    }
    println!(
        "bench self_check_ticks={self_check} self_check_frames={frames} \
         alloc_max_ticks={slowest} worst_held_frames={held}"
    );
    // Ready: a grant tells `watch`; its next yield to this partition times the exit.
    let watch = call::partition_lookup("watch")?;
    call::grant(flag, watch, Rights::READ)?;
    hypercall::yield_now()?;
    Ok(ExitCode::SUCCESS)
}

fn watch() -> Result<ExitCode, Error> {
    let deadline = Deadline::after_millis(WAIT_MS);
    while call::grant_query(0).is_err() {
        if deadline.passed() {
            println!("worst never got ready");
            return Ok(ExitCode::FAILURE);
        }
        hypercall::yield_now()?;
    }
    let start = time::ticks();
    hypercall::yield_now()?;
    let exit = time::ticks() - start;
    if call::grant_query(0).is_ok() {
        println!("worst did not end within one yield");
        return Ok(ExitCode::FAILURE);
    }
    println!("bench exit_ticks={exit}");
    Ok(ExitCode::SUCCESS)
}
