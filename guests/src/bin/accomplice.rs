//! `accomplice`: the other half of `colluder`. Finds the frame `hostile` granted it, reads
//! the holder's IPA from it, binds it read-write at that same IPA, marks it, unbinds it,
//! and acknowledges by granting a frame of its own back.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::abi::{BindAttributes, Rights};
use exo_libos::mem::{self, call};
use exo_libos::time::Deadline;
use exo_libos::{Error, ExitCode, Info, Ipa, println, probe};

exo_libos::entry!(main);

/// Where the frame is bound first, to read the holder's IPA out of it.
const LOOK_IPA: Ipa = Ipa::new(0x71_0000_0000);
/// What `colluder` waits for at its IPA + 8.
const MARK: u64 = 0xACC0_411C_E000_0001;
/// How long to wait for the grant.
const WAIT_MS: u64 = 40_000;

fn main(_info: &Info) -> Result<ExitCode, Error> {
    let holder = call::partition_lookup("hostile")?;
    let deadline = Deadline::after_millis(WAIT_MS);
    let grant = loop {
        match call::grant_query(0) {
            Ok(grant) if grant.owner == holder => break grant,
            _ if deadline.passed() => {
                println!("no grant arrived");
                return Ok(ExitCode::FAILURE);
            }
            _ => mem::yield_now()?,
        };
    };
    call::bind(grant.phys, LOOK_IPA, BindAttributes::READ)?;
    let Ok(held_at) = probe::read_u64(LOOK_IPA) else {
        println!("cannot read the granted frame");
        return Ok(ExitCode::FAILURE);
    };
    call::unbind(LOOK_IPA)?;
    let held_at = Ipa::new(held_at);
    call::bind(grant.phys, held_at, BindAttributes::READ_WRITE)?;
    let _ = probe::write_u64(held_at.add(8), MARK);
    if call::unbind(held_at)? != grant.phys {
        println!("unbinding {held_at} returned another frame");
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "bound {} at the holder's IPA {held_at}, marked it, unbound it",
        grant.phys
    );
    let (ack, _) = mem::alloc_mapped(BindAttributes::READ_WRITE)?;
    call::grant(ack, holder, Rights::READ)?;
    // Stay until the holder has finished: the grant dies with this partition's frames. A
    // second grant to it is refused with `UnknownPartition` once it has.
    let (probe_frame, _) = mem::alloc_mapped(BindAttributes::READ_WRITE)?;
    let deadline = Deadline::after_millis(WAIT_MS);
    loop {
        mem::yield_now()?;
        match call::grant(probe_frame, holder, Rights::READ) {
            Ok(()) => call::grant_revoke(probe_frame, holder)?,
            Err(Error::UnknownPartition) => return Ok(ExitCode::SUCCESS),
            Err(error) => return Err(error),
        }
        if deadline.passed() {
            println!("the holder is still running");
            return Ok(ExitCode::FAILURE);
        }
    }
}
