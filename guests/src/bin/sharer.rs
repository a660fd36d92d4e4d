//! `sharer`: shares a frame read-only with the partition `reader`, waits for the reader to
//! acknowledge (it grants a frame back: the only channel there is), then withdraws the grant.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::abi::{BindAttributes, Rights};
use exo_libos::mem::{self, call};
use exo_libos::time::Deadline;
use exo_libos::{Error, ExitCode, Info, println, probe};

exo_libos::entry!(main);

/// The message, NUL-padded to 32 bytes.
const MESSAGE: &[u8; 32] = b"hello from sharer, read-only\0\0\0\0";
/// How long to wait for the reader.
const WAIT_MS: u64 = 40_000;

fn main(_info: &Info) -> Result<ExitCode, Error> {
    let reader = call::partition_lookup("reader")?;
    let (phys, ipa) = mem::alloc_mapped(BindAttributes::READ_WRITE)?;
    for (index, word) in MESSAGE.chunks_exact(8).enumerate() {
        let value = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let _ = probe::write_u64(ipa.add(index as u64 * 8), value);
    }
    call::grant(phys, reader, Rights::READ)?;
    println!("granted {phys} read-only to reader (id {})", reader.0);
    let deadline = Deadline::after_millis(WAIT_MS);
    let acknowledged = loop {
        match call::grant_query(0) {
            Ok(grant) if grant.owner == reader => break true,
            _ if deadline.passed() => break false,
            _ => mem::yield_now()?,
        };
    };
    if !acknowledged {
        println!("the reader never acknowledged");
        return Ok(ExitCode::FAILURE);
    }
    call::grant_revoke(phys, reader)?;
    match call::grant_revoke(phys, reader) {
        Err(Error::BadAddress) => {}
        // The reader may have seen its fault and ended already (time slices can preempt us
        // between the two calls): then it is gone, and its grants with it.
        Err(Error::UnknownPartition) => {}
        other => {
            println!("revoking twice returned {other:?}, expected BadAddress");
            return Ok(ExitCode::FAILURE);
        }
    }
    println!("reader acknowledged; grant revoked");
    mem::release(phys)?;
    Ok(ExitCode::SUCCESS)
}
