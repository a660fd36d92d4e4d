//! `keeper`: a bystander. Fills its free boot memory and some frames of its own with a
//! pattern, holds some frames unbound, waits until the partition `hostile` has finished,
//! then checks every byte and that the unbound frames are still its own.
//!
//! It knows `hostile` is done when a grant to it is refused with `UnknownPartition` (the
//! kernel grants only to live partitions).

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_guests::{verify_patterns, write_pattern};
use exo_libos::abi::{BindAttributes, Rights};
use exo_libos::mem::{self, call};
use exo_libos::time::Deadline;
use exo_libos::{Error, ExitCode, Info, PhysAddr, memory, println};

exo_libos::entry!(main);

/// Frames allocated beyond boot memory.
const EXTRA_FRAMES: usize = 64;
/// Frames allocated and left unbound: `hostile` must not be able to bind them either.
const UNBOUND_FRAMES: usize = 16;
/// How long to wait for `hostile`.
const WAIT_MS: u64 = 50_000;

/// The byte expected at `index` of boot memory.
fn pattern(index: usize) -> u8 {
    (index as u8) ^ ((index >> 8) as u8).wrapping_mul(31) ^ 0x5A
}

fn main(info: &Info) -> Result<ExitCode, Error> {
    let Some(region) = memory::take_free_memory(info) else {
        println!("no free memory");
        return Ok(ExitCode::FAILURE);
    };
    for (index, byte) in region.iter_mut().enumerate() {
        *byte = pattern(index);
    }
    for _ in 0..EXTRA_FRAMES {
        let (phys, ipa) = mem::alloc_mapped(BindAttributes::READ_WRITE)?;
        write_pattern(phys, ipa);
    }
    let mut unbound = [PhysAddr::new(0); UNBOUND_FRAMES];
    mem::alloc(&mut unbound)?;
    println!(
        "pattern written over {} bytes and {EXTRA_FRAMES} frames; {UNBOUND_FRAMES} frames held \
         unbound",
        region.len()
    );
    let hostile = call::partition_lookup("hostile")?;
    // Granted to `hostile` now and then to see whether it is still alive; patterned too.
    let (probe_frame, probe_ipa) = mem::alloc_mapped(BindAttributes::READ_WRITE)?;
    write_pattern(probe_frame, probe_ipa);
    let deadline = Deadline::after_millis(WAIT_MS);
    let mut yields = 0u64;
    loop {
        mem::yield_now()?;
        yields += 1;
        if yields.is_multiple_of(64) {
            match call::grant(probe_frame, hostile, Rights::READ) {
                Ok(()) => call::grant_revoke(probe_frame, hostile)?,
                Err(Error::UnknownPartition) => break,
                Err(error) => return Err(error),
            }
        }
        if deadline.passed() {
            println!("hostile still running after {yields} yields");
            return Ok(ExitCode::FAILURE);
        }
    }
    println!("hostile finished; checking after {yields} yields");
    if let Some((index, &byte)) = region
        .iter()
        .enumerate()
        .find(|&(index, &byte)| byte != pattern(index))
    {
        println!(
            "data CORRUPTED at offset {index:#x}: {byte:#04x}, expected {:#04x}",
            pattern(index)
        );
        return Ok(ExitCode::FAILURE);
    }
    for &phys in &unbound {
        // Still mine in the kernel's table: asking for it again is `Busy`.
        if call::frame_alloc_at(phys) != Err(Error::Busy) {
            println!("unbound frame {phys} is no longer mine");
            return Ok(ExitCode::FAILURE);
        }
    }
    match verify_patterns() {
        Ok(frames) if frames == EXTRA_FRAMES as u64 + 1 => {
            println!("data intact");
            Ok(ExitCode::SUCCESS)
        }
        Ok(frames) => {
            println!("only {frames} of my frames are still there");
            Ok(ExitCode::FAILURE)
        }
        Err(corrupt) => {
            println!("frame CORRUPTED: {corrupt:?}");
            Ok(ExitCode::FAILURE)
        }
    }
}
