//! `partial`: a borrower whose revocation policy gives back only half of what is owed, so
//! the kernel's abort protocol takes the rest at the deadline.
//!
//! After the abort it checks the repossession vector: exactly the frames still owed after
//! its acknowledgement, all marked `Aborted` with the request's sequence number, all frames
//! it held, none still in the library OS's table. The frames it kept must be intact.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_guests::{grow_until_refused, verify_patterns};
use exo_libos::abi::revocation::{Reason, RequestState};
use exo_libos::mem::{self, HalfPolicy, RepossessionReader, revocation};
use exo_libos::spin::Mutex;
use exo_libos::time::Deadline;
use exo_libos::{Error, ExitCode, Info, println, upcall};

exo_libos::entry!(main);

static HALF: Mutex<HalfPolicy> = Mutex::new(HalfPolicy);

/// How long to wait for the request and then for the abort.
const WAIT_MS: u64 = 40_000;

fn main(_info: &Info) -> Result<ExitCode, Error> {
    mem::set_revocation_policy(&HALF);
    upcall::register()?;
    let (grown, refusal) = grow_until_refused(|_, _| {})?;
    println!("grew by {grown} frames until refused ({refusal})");
    let mut reader = RepossessionReader::from_start();
    let mut taken = 0;
    let mut bad = 0;
    let deadline = Deadline::after_millis(WAIT_MS);
    while taken == 0 {
        mem::yield_now()?;
        let poll = reader.poll(|entry| {
            taken += 1;
            let request = revocation::latest_request();
            let sequence_matches = request.is_some_and(|r| r.sequence == u64::from(entry.sequence));
            if entry.reason != Reason::Aborted
                || !sequence_matches
                || mem::frame(entry.phys).is_some()
            {
                bad += 1;
                println!("unexpected repossession entry {entry:?}");
            }
        });
        if poll.lost > 0 {
            println!("{} repossession entries lost", poll.lost);
            return Ok(ExitCode::FAILURE);
        }
        if deadline.passed() {
            println!("no abort happened");
            return Ok(ExitCode::FAILURE);
        }
    }
    let stats = revocation::stats();
    let Some(request) = revocation::latest_request() else {
        println!("no request on the revocation page");
        return Ok(ExitCode::FAILURE);
    };
    println!(
        "released {} of {} frames asked; the abort took {taken}",
        stats.released, request.frames_requested
    );
    let expected = request.frames_requested - stats.released;
    if request.state != RequestState::Aborted
        || taken != expected
        || bad != 0
        || stats.released == 0
    {
        println!(
            "expected an aborted request with {expected} frames taken: {:?}, {taken} taken, {bad} bad",
            request.state
        );
        return Ok(ExitCode::FAILURE);
    }
    match verify_patterns() {
        Ok(kept) => println!("abort took the rest: {taken} frames; {kept} kept intact"),
        Err(corrupt) => {
            println!("frame CORRUPTED: {corrupt:?}");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
