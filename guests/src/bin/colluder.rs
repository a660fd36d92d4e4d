//! `colluder`: one of a pair of colluding partitions (run as `hostile`, with `accomplice`)
//! that try to make the kernel forget a binding. It binds a frame of its own at
//! [`HELD_IPA`], writes that IPA into the frame and grants the frame read-write to
//! `accomplice`, which binds it at the same IPA and unbinds it there. If that unbind
//! cleared the holder's record, `EXO_FRAME_FREE` would succeed on a frame still mapped
//! read-write here, and the next allocation would hand another partition memory this one
//! can read and write. The kernel must refuse (`Busy`), and its self-check must pass.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::abi::{BindAttributes, Rights};
use exo_libos::mem::{self, call};
use exo_libos::time::Deadline;
use exo_libos::{Error, ExitCode, Info, Ipa, PhysAddr, println, probe};

exo_libos::entry!(main);

/// Where both partitions bind the frame: far from the library OS's own frame window.
pub const HELD_IPA: Ipa = Ipa::new(0x70_0000_0000);
/// Written by the accomplice at [`HELD_IPA`] + 8 once bound there.
const MARK: u64 = 0xACC0_411C_E000_0001;
/// How long to wait for each step.
const WAIT_MS: u64 = 40_000;

fn main(_info: &Info) -> Result<ExitCode, Error> {
    let accomplice = call::partition_lookup("accomplice")?;
    let mut frame = [PhysAddr::new(0)];
    call::frame_alloc(&mut frame)?;
    let [frame] = frame;
    call::bind(frame, HELD_IPA, BindAttributes::READ_WRITE)?;
    let _ = probe::write_u64(HELD_IPA, HELD_IPA.raw());
    call::grant(frame, accomplice, Rights::READ_WRITE)?;
    println!("bound {frame} at {HELD_IPA} and granted it to accomplice");

    // The accomplice marks the frame while it has it bound, then grants a frame back once
    // it has unbound it: the only channel there is.
    let deadline = Deadline::after_millis(WAIT_MS);
    loop {
        let marked = probe::read_u64(HELD_IPA.add(8)).is_ok_and(|w| w == MARK);
        if marked && call::grant_query(0).is_ok_and(|g| g.owner == accomplice) {
            break;
        }
        if deadline.passed() {
            println!("the accomplice never finished");
            return Ok(ExitCode::FAILURE);
        }
        mem::yield_now()?;
    }
    println!("accomplice bound the frame at my IPA and unbound it");

    match call::frame_free(frame) {
        Err(Error::Busy) => println!("freeing the frame I still map: refused (Busy)"),
        other => {
            println!("freeing a frame still mapped here returned {other:?}, expected Busy");
            return Ok(ExitCode::FAILURE);
        }
    }
    if probe::read_u64(HELD_IPA) != Ok(HELD_IPA.raw()) {
        println!("my binding at {HELD_IPA} is gone");
        return Ok(ExitCode::FAILURE);
    }
    // Done properly: the grant ends with the frame, after an unbind.
    if call::unbind(HELD_IPA)? != frame {
        println!("unbinding {HELD_IPA} returned another frame");
        return Ok(ExitCode::FAILURE);
    }
    call::frame_free(frame)?;
    let frames = call::self_check()?;
    println!("unbound and freed properly; kernel self-check passed over {frames} frames");
    Ok(ExitCode::SUCCESS)
}
