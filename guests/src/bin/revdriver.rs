//! `revdriver`: the claimant of the revocation benchmark (`exo bench`,
//! `guests/configs/bench-revoke*.toml`). Borrowers (`revborrower`) hold every free frame;
//! the driver claims 1, 16, 256 and 4,096 frames, timing each claim from the call to its
//! return, gives them back, waits for the borrowers to grow back, and repeats.
//!
//! Two phases: borrowers holding all they can (`holdings=large`), then, after the driver
//! takes a ballast of frames it keeps (all its guarantee allows but room for the largest
//! claim), borrowers holding less (`holdings=small`), so a policy whose cost scales with
//! holdings shows.
//!
//! Claims go through [`mem::alloc`] in calls of at most [`exo_libos::abi::call::FRAME_ALLOC_MAX`]
//! frames, so a 4,096-frame claim is several calls (and several requests) on a kernel that
//! allows fewer per call. Nothing is printed inside a timed claim: every sample is kept and
//! printed at the end as `sample claim holdings=<large|small> frames=<n> rep=<i>
//! start=<ticks> end=<ticks>` (docs/benchmarks.md). At the end the driver sends every
//! partition it talks to a message ([`DONE`]) so the borrowers print theirs and exit.
//!
//! A partition whose name ends in `quick` repeats each point [`QUICK_REPEATS`] times
//! instead of [`REPEATS`] (`exo bench --quick`).

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::abi::call::FRAME_ALLOC_MAX;
use exo_libos::ipc::{self, PartitionId};
use exo_libos::mem::{self, call};
use exo_libos::spin::Mutex;
use exo_libos::time::{self, Deadline};
use exo_libos::{Error, ExitCode, Info, PhysAddr, println};

exo_libos::entry!(main);

/// Frames claimed at each point of the sweep.
const SIZES: [usize; 4] = [1, 16, 256, 4096];
/// Claims per point, by size (under QEMU a 4,096-frame point takes seconds of host time
/// per claim today).
const REPEATS: [usize; 4] = [11, 11, 11, 5];
/// Claims per point with `--quick`.
const QUICK_REPEATS: [usize; 4] = [3, 3, 3, 1];
/// Most samples of one boot.
const MOST_SAMPLES: usize = 2 * (11 + 11 + 11 + 5);
/// How long to wait for the borrowers to take every free frame.
const WAIT_MS: u64 = 2_000;
/// The word sent to the borrowers when the sweep is over.
pub const DONE: u64 = 0xD0E;
/// Highest partition identifier the driver tells it is done.
const MAX_PARTITIONS: u32 = 16;

/// One timed claim.
#[derive(Clone, Copy)]
struct Sample {
    small: bool,
    frames: usize,
    rep: usize,
    start: u64,
    end: u64,
}

/// Samples kept for printing at the end.
static SAMPLES: Mutex<[Sample; MOST_SAMPLES]> = Mutex::new(
    [Sample {
        small: false,
        frames: 0,
        rep: 0,
        start: 0,
        end: 0,
    }; MOST_SAMPLES],
);

/// The frames of one claim.
static CLAIM: Mutex<[PhysAddr; 4096]> = Mutex::new([PhysAddr::new(0); 4096]);

fn main(info: &Info) -> Result<ExitCode, Error> {
    let repeats = if info.name().ends_with("quick") {
        &QUICK_REPEATS
    } else {
        &REPEATS
    };
    let mut taken = 0;
    for small in [false, true] {
        if small {
            take_ballast()?;
        }
        for (frames, &repeats) in SIZES.into_iter().zip(repeats) {
            for rep in 0..repeats {
                if !wait_until_all_borrowed()? {
                    println!("the borrowers did not take every free frame");
                    return Ok(ExitCode::FAILURE);
                }
                let (start, end) = timed_claim(frames)?;
                SAMPLES.lock()[taken] = Sample {
                    small,
                    frames,
                    rep,
                    start,
                    end,
                };
                taken += 1;
            }
        }
    }
    for id in 0..MAX_PARTITIONS {
        if id != info.partition_id() {
            let _ = ipc::send(PartitionId(id), DONE);
        }
    }
    for s in &SAMPLES.lock()[..taken] {
        println!(
            "sample claim holdings={} frames={} rep={} start={} end={}",
            if s.small { "small" } else { "large" },
            s.frames,
            s.rep,
            s.start,
            s.end
        );
    }
    println!("claimed {taken} times");
    Ok(ExitCode::SUCCESS)
}

/// Yields until no frame is free (the borrowers took them all); false on timeout.
fn wait_until_all_borrowed() -> Result<bool, Error> {
    let deadline = Deadline::after_millis(WAIT_MS);
    while call::mem_info()?.free > 0 {
        if deadline.passed() {
            return Ok(false);
        }
        mem::yield_now()?;
    }
    Ok(true)
}

/// Claims `frames` frames, in calls of at most `FRAME_ALLOC_MAX`, and gives them back;
/// returns the counter before the first call and after the last returned.
fn timed_claim(frames: usize) -> Result<(u64, u64), Error> {
    let mut claim = CLAIM.lock();
    let claim = &mut claim[..frames];
    let start = time::ticks();
    let mut got = 0;
    while got < frames {
        let chunk = (frames - got).min(FRAME_ALLOC_MAX as usize);
        got += mem::alloc(&mut claim[got..got + chunk])?;
    }
    let end = time::ticks();
    for &phys in claim.iter() {
        mem::free(phys)?;
    }
    Ok((start, end))
}

/// Takes and keeps frames (through revocation): all the guarantee allows but room for the
/// largest claim (and a little slack).
fn take_ballast() -> Result<(), Error> {
    if !wait_until_all_borrowed()? {
        return Err(Error::Busy);
    }
    let usage = call::mem_info()?;
    let room = usage.guaranteed.saturating_sub(usage.held);
    let keep_free = SIZES[SIZES.len() - 1] as u64;
    let ballast = room.saturating_sub(keep_free + 64);
    let mut batch = [PhysAddr::new(0); FRAME_ALLOC_MAX as usize];
    let mut taken = 0;
    while taken < ballast {
        let chunk = (ballast - taken).min(FRAME_ALLOC_MAX) as usize;
        taken += mem::alloc(&mut batch[..chunk])? as u64;
    }
    println!("took a ballast of {taken} frames");
    Ok(())
}
