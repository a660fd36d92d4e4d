//! `borrower`: borrows all the memory it can, then gives back whatever the kernel asks for.
//!
//! Registers the upcall entry with the library OS's default revocation policy, grows by
//! `EXO_FRAME_ALLOC` until refused (binding each frame and writing a pattern into it), then
//! waits, yielding, while revocation requests are answered by the library OS. After each
//! request it checks the patterns of the frames it kept. It exits once at least one request
//! was met and no new one came for a while.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_guests::{Serving, grow_until_refused, serve_revocations};
use exo_libos::mem::{self, revocation};
use exo_libos::{Error, ExitCode, Info, println, upcall};

exo_libos::entry!(main);

/// Yields without a new request, after one was met, before the borrower is done.
const QUIET_YIELDS: u64 = 2000;
/// How long to wait for the first request.
const FIRST_REQUEST_MS: u64 = 40_000;

fn main(_info: &Info) -> Result<ExitCode, Error> {
    upcall::register()?;
    let (grown, refusal) = grow_until_refused(|_, _| {})?;
    println!("grew by {grown} frames until refused ({refusal})");
    let serving = Serving {
        first_request_ms: FIRST_REQUEST_MS,
        quiet_yields: QUIET_YIELDS,
    };
    let Some(kept) = serve_revocations(serving, || mem::yield_now().map(drop))? else {
        return Ok(ExitCode::FAILURE);
    };
    let stats = revocation::stats();
    println!(
        "complied with {} revocation requests ({} frames released, {} kept intact)",
        stats.met, stats.released, kept
    );
    if stats.met != stats.requests || stats.repossessed != 0 {
        println!(
            "expected every request met and nothing repossessed: {} requests, {} repossessed",
            stats.requests, stats.repossessed
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
