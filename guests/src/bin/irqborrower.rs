//! `irqborrower`: like `borrower`, it borrows all the memory it can and gives back what the
//! kernel asks for, but it takes the news as the kernel's `REVOCATION` and `REPOSSESSION`
//! signals (virtual interrupts) instead of upcalls, and answers from its main loop.
//!
//! It registers no upcall entry. [`revocation::by_interrupt`] binds a handler to each signal
//! (INTIDs from the info page) that only notes the news, and IRQs are unmasked. It grows by
//! `EXO_FRAME_ALLOC` until refused (binding each frame and writing a pattern into it), then
//! loops: [`revocation::poll`], the safe point where the library OS's default policy gives
//! frames back, then `EXO_YIELD`. After each request it checks the patterns of the frames it
//! kept. It exits once at least one request was met and no new one came for a while.
//!
//! A partition whose name ends in `late` does not poll until its request's deadline has
//! passed: the news waits, noted, while the kernel's abort protocol takes the frames. Its
//! first poll then applies the repossession vector, and it checks that its frame table
//! agrees with the kernel's count and that every frame still in it is intact.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_guests::{Failure, Serving, grow_until_refused, serve_revocations, verify_patterns};
use exo_libos::abi::revocation::RequestState;
use exo_libos::mem::{self, call, revocation};
use exo_libos::time::Deadline;
use exo_libos::{ExitCode, Info, hypercall, irq, println, upcall};

exo_libos::entry!(main);

/// Yields without a new request, after one was met, before the borrower is done.
const QUIET_YIELDS: u64 = 2000;
/// How long to wait for the first request (or, late, for its abort).
const FIRST_REQUEST_MS: u64 = 40_000;

fn main(info: &Info) -> Result<ExitCode, Failure> {
    irq::init(info)?;
    revocation::by_interrupt(info)?;
    irq::enable()?;
    let boot_frames = call::mem_info()?.held - mem::held() as u64;
    let (grown, refusal) = grow_until_refused(|_, _| {})?;
    println!("grew by {grown} frames until refused ({refusal}); revocation news by interrupt");
    let result = if info.name().ends_with("late") {
        answer_late(boot_frames)?
    } else {
        comply()?
    };
    let upcalls = upcall::counts();
    if upcalls.revocation != 0 || upcalls.repossession != 0 {
        println!("news came as upcalls: {upcalls:?}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(result)
}

/// Answers every request from the main loop, well within the deadline.
fn comply() -> Result<ExitCode, Failure> {
    let serving = Serving {
        first_request_ms: FIRST_REQUEST_MS,
        quiet_yields: QUIET_YIELDS,
    };
    let step = || -> Result<(), Failure> {
        revocation::poll();
        hypercall::yield_now()?;
        Ok(())
    };
    let Some(kept) = serve_revocations(serving, step)? else {
        return Ok(ExitCode::FAILURE);
    };
    let stats = revocation::stats();
    println!(
        "complied with {} revocation requests by interrupt ({} frames released, {} kept \
         intact; REVOCATION signals taken: {})",
        stats.met, stats.released, kept, stats.revocation_signals
    );
    if stats.met != stats.requests || stats.repossessed != 0 || stats.revocation_signals == 0 {
        println!("expected every request met by interrupt and nothing repossessed: {stats:?}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Lets the deadline pass without a safe point, then catches up: the repossessions the
/// signal announced are applied at the first poll.
fn answer_late(boot_frames: u64) -> Result<ExitCode, Failure> {
    let deadline = Deadline::after_millis(FIRST_REQUEST_MS);
    loop {
        // Not `mem::yield_now`, which is a safe point.
        hypercall::yield_now()?;
        let aborted = revocation::latest_request()
            .is_some_and(|request| request.state == RequestState::Aborted);
        if aborted && revocation::stats().repossession_signals > 0 {
            break;
        }
        if deadline.passed() {
            println!("no request was aborted: {:?}", revocation::latest_request());
            return Ok(ExitCode::FAILURE);
        }
    }
    let before = revocation::stats();
    if !revocation::pending() || before.requests != 0 || before.repossessed != 0 {
        println!("the news should wait, noted, for the first poll: {before:?}");
        return Ok(ExitCode::FAILURE);
    }
    revocation::poll();
    let stats = revocation::stats();
    let held = call::mem_info()?.held;
    let recorded = boot_frames + mem::held() as u64;
    let kept = match verify_patterns() {
        Ok(kept) => kept,
        Err(corrupt) => {
            println!("frame CORRUPTED: {corrupt:?}");
            return Ok(ExitCode::FAILURE);
        }
    };
    println!(
        "missed the deadline; the first poll applied {} repossessions by interrupt ({} kept \
         intact, {held} frames held as the kernel counts)",
        stats.repossessed, kept
    );
    if stats.repossessed == 0 || stats.met != 0 || stats.released != 0 || held != recorded {
        println!("expected repossessions only, and {recorded} frames held: {stats:?}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
