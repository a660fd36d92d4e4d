//! `revgrantee`: the partition a `revborrower` named `...-grant` shares frames with, for the
//! revocation benchmark's grant point (`guests/configs/bench-revoke-grant.toml`). It binds
//! every frame granted to it (`EXO_GRANT_QUERY`, then `EXO_BIND` read-only) and keeps
//! binding the new ones, so a revoked frame is also bound in another partition: the kernel
//! must withdraw the grant and break that binding before the frame can go. It stops when
//! `revdriver` says it is done, and reports how many grants were withdrawn.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::abi::BindAttributes;
use exo_libos::abi::PAGE_SIZE;
use exo_libos::mem::{call, revocation};
use exo_libos::time::Deadline;
use exo_libos::{Error, ExitCode, Info, Ipa, ipc, mem, println, upcall};

exo_libos::entry!(main);

/// Where granted frames are bound, one page each, never reused.
const GRANT_WINDOW: Ipa = Ipa::new(0x60_0000_0000);
/// The word `revdriver` sends when it is done.
const DONE: u64 = 0xD0E;
/// Longest the benchmark may take.
const WAIT_MS: u64 = 600_000;

fn main(_info: &Info) -> Result<ExitCode, Error> {
    upcall::register()?;
    let deadline = Deadline::after_millis(WAIT_MS);
    let mut next = 0;
    let mut bound = 0u64;
    loop {
        let mut index = 0;
        while let Ok(grant) = call::grant_query(index) {
            index += 1;
            let ipa = GRANT_WINDOW.add(next * PAGE_SIZE);
            // An error: bound already (at an earlier IPA), or withdrawn since the query.
            if call::bind(grant.phys, ipa, BindAttributes::READ).is_ok() {
                next += 1;
                bound += 1;
            }
        }
        mem::yield_now()?;
        if matches!(ipc::take_message(), Some((_, DONE))) {
            break;
        }
        if deadline.passed() {
            println!("the driver never said it was done");
            return Ok(ExitCode::FAILURE);
        }
    }
    let withdrawn = revocation::stats().repossessed;
    println!("bound {bound} granted frames; {withdrawn} grants withdrawn");
    if withdrawn == 0 {
        println!("no grant was withdrawn: the benchmark did not revoke a shared frame");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
