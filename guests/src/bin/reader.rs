//! `reader`: finds the frame `sharer` granted it (`EXO_GRANT_QUERY`), binds it read-only,
//! prints the message in it, acknowledges by granting a frame of its own back, then keeps
//! reading until the access faults (the grant was withdrawn) and checks that the
//! repossession vector reports it.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use exo_libos::abi::revocation::Reason;
use exo_libos::abi::{BindAttributes, Rights};
use exo_libos::mem::{self, RepossessionReader, call};
use exo_libos::time::Deadline;
use exo_libos::upcall::{self, Access, FaultResolution};
use exo_libos::{Error, ExitCode, Info, Ipa, println, probe};

exo_libos::entry!(main);

/// Where the granted frame is bound.
const SHARED_IPA: Ipa = Ipa::new(0x3_0000_0000);
/// How long to wait for each step.
const WAIT_MS: u64 = 40_000;

static LAST_FAULT: AtomicU64 = AtomicU64::new(0);

fn skip_and_record(ipa: Ipa, _access: Access) -> FaultResolution {
    LAST_FAULT.store(ipa.raw(), Ordering::Relaxed);
    FaultResolution::Skip
}

fn main(_info: &Info) -> Result<ExitCode, Error> {
    upcall::set_fault_handler(skip_and_record)?;
    let sharer = call::partition_lookup("sharer")?;
    let deadline = Deadline::after_millis(WAIT_MS);
    let grant = loop {
        match call::grant_query(0) {
            Ok(grant) => break grant,
            Err(_) if deadline.passed() => {
                println!("no grant arrived");
                return Ok(ExitCode::FAILURE);
            }
            Err(_) => mem::yield_now()?,
        };
    };
    if grant.owner != sharer || grant.rights != Rights::READ {
        println!("unexpected grant {grant:?}");
        return Ok(ExitCode::FAILURE);
    }
    match call::bind(grant.phys, SHARED_IPA, BindAttributes::READ_WRITE) {
        Err(Error::Denied) => {}
        other => {
            println!("binding a read-only grant writable returned {other:?}, expected Denied");
            return Ok(ExitCode::FAILURE);
        }
    }
    call::bind(grant.phys, SHARED_IPA, BindAttributes::READ)?;
    let mut bytes = [0u8; 32];
    for (index, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        let word = probe::read_u64(SHARED_IPA.add(index as u64 * 8)).unwrap_or(0);
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    let text = core::str::from_utf8(&bytes).unwrap_or("<not UTF-8>");
    println!("message: {}", text.trim_end_matches('\0'));
    // Start reading the vector before acknowledging: once the sharer sees the ack it may
    // withdraw the grant at once (time slices can preempt us right after `grant`), and an
    // entry appended before `from_now` would be missed.
    let mut reader = RepossessionReader::from_now();
    // Acknowledge: grant one of our own frames to the sharer.
    let (ack, _) = mem::alloc_mapped(BindAttributes::READ_WRITE)?;
    call::grant(ack, sharer, Rights::READ)?;
    let deadline = Deadline::after_millis(WAIT_MS);
    LAST_FAULT.store(0, Ordering::Relaxed);
    while LAST_FAULT.load(Ordering::Relaxed) != SHARED_IPA.raw() {
        if deadline.passed() {
            println!("the shared frame stayed readable");
            return Ok(ExitCode::FAILURE);
        }
        mem::yield_now()?;
        let _ = probe::read_u64(SHARED_IPA);
    }
    println!("reading the shared frame faults now");
    let mut reported = false;
    reader.poll(|entry| {
        reported |= entry.reason == Reason::GrantRevoked
            && entry.phys == grant.phys
            && entry.ipa == Some(SHARED_IPA);
    });
    if !reported {
        println!(
            "no GrantRevoked entry for {} in the repossession vector",
            grant.phys
        );
        return Ok(ExitCode::FAILURE);
    }
    println!("grant revoked and reported");
    Ok(ExitCode::SUCCESS)
}
